package soap_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/use-go/onvif/device"

	"github.com/osapgw/osapgw/adapters/onvif/soap"
	sim "github.com/osapgw/osapgw/sim/onvif"
	"github.com/osapgw/osapgw/sim/onvif/onviftest"
)

type info = device.GetDeviceInformationResponse

func TestAuthChosenFromChallenge(t *testing.T) {
	tests := []struct {
		name     string
		auth     sim.Auth
		password string // the client's
		want     soap.Auth
		wantErr  error
	}{
		{name: "digest MD5", auth: sim.AuthDigest, password: "secret", want: soap.AuthDigest},
		{name: "digest SHA-256", auth: sim.AuthDigestSHA256, password: "secret", want: soap.AuthDigest},
		{name: "usernametoken", auth: sim.AuthUsernameToken, password: "secret", want: soap.AuthUsernameToken},
		{name: "none", auth: sim.AuthNone, password: "secret", want: soap.AuthNone},
		{name: "digest wrong password", auth: sim.AuthDigest, password: "nope", wantErr: soap.ErrUnauthorized},
		{name: "usernametoken wrong password", auth: sim.AuthUsernameToken, password: "nope", wantErr: soap.ErrUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cam := onviftest.Start(t, sim.Config{User: "admin", Password: "secret", Auth: tt.auth, Name: "Cam"})
			c := soap.New(soap.Options{Username: "admin", Password: tt.password, Timeout: 5 * time.Second})
			defer c.Close()
			var got info
			err := c.Call(context.Background(), cam.URL(), device.GetDeviceInformation{}, &got)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Call = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Call: %v", err)
			}
			if got.Model != "Cam" || got.Manufacturer == "" {
				t.Errorf("GetDeviceInformation = %+v, want model Cam", got)
			}
			if c.Auth() != tt.want {
				t.Errorf("Auth() = %v, want %v", c.Auth(), tt.want)
			}
			// A second call goes straight through with the same auth.
			if err := c.Call(context.Background(), cam.URL(), device.GetDeviceInformation{}, &got); err != nil {
				t.Fatalf("second Call: %v", err)
			}
		})
	}
}

func TestUsernameTokenUsesClockOffset(t *testing.T) {
	skew := 3 * time.Hour
	cam := onviftest.Start(t, sim.Config{User: "admin", Password: "secret", Auth: sim.AuthUsernameToken, ClockSkew: skew})
	c := soap.New(soap.Options{Username: "admin", Password: "secret"})
	defer c.Close()
	var got info
	if err := c.Call(context.Background(), cam.URL(), device.GetDeviceInformation{}, &got); !errors.Is(err, soap.ErrUnauthorized) {
		t.Fatalf("Call without clock offset = %v, want ErrUnauthorized (the camera is 3h ahead)", err)
	}
	c.SetClockOffset(skew)
	if err := c.Call(context.Background(), cam.URL(), device.GetDeviceInformation{}, &got); err != nil {
		t.Fatalf("Call with clock offset: %v", err)
	}
}

func TestFaultIsAnError(t *testing.T) {
	cam := onviftest.Start(t, sim.Config{Auth: sim.AuthNone})
	cam.SetFaults(sim.Faults{SOAPFault: true})
	c := soap.New(soap.Options{})
	defer c.Close()
	var got info
	err := c.Call(context.Background(), cam.URL(), device.GetDeviceInformation{}, &got)
	var f *soap.Fault
	if !errors.As(err, &f) {
		t.Fatalf("Call = %v (%T), want a *soap.Fault", err, err)
	}
	if f.Code != "env:Receiver" || f.Subcode != "ter:Action" || f.Reason != "simulated failure" {
		t.Errorf("fault = %+v, want Receiver/ter:Action/simulated failure", f)
	}
}

func TestMalformedAndStatus(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		check  func(error) bool
	}{
		{name: "not XML", status: 200, body: "<<garbage", check: func(err error) bool { return errors.Is(err, soap.ErrMalformed) }},
		{name: "not an envelope", status: 200, body: "<html><body>hi</body></html>", check: func(err error) bool { return errors.Is(err, soap.ErrMalformed) }},
		{name: "truncated", status: 200, body: `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><x>`, check: func(err error) bool { return errors.Is(err, soap.ErrMalformed) }},
		{name: "HTTP 500 without fault", status: 500, body: "oops", check: func(err error) bool {
			var se *soap.StatusError
			return errors.As(err, &se) && se.Status == 500
		}},
		{name: "SOAP 1.1 fault", status: 500, body: `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>bad</faultstring></s:Fault></s:Body></s:Envelope>`, check: func(err error) bool {
			var f *soap.Fault
			return errors.As(err, &f) && f.Code == "s:Client" && f.Reason == "bad"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			c := soap.New(soap.Options{})
			defer c.Close()
			var got info
			err := c.Call(context.Background(), srv.URL, device.GetDeviceInformation{}, &got)
			if !tt.check(err) {
				t.Errorf("Call = %v (%T), not the error expected", err, err)
			}
		})
	}
}

func TestContextEndsSlowCall(t *testing.T) {
	cam := onviftest.Start(t, sim.Config{Auth: sim.AuthNone})
	cam.SetFaults(sim.Faults{Slow: time.Minute})
	c := soap.New(soap.Options{Timeout: time.Minute})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := c.Call(ctx, cam.URL(), device.GetDeviceInformation{}, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Call = %v, want context.DeadlineExceeded", err)
	}
	// The client's own timeout bounds a call whose context has none.
	c2 := soap.New(soap.Options{Timeout: 100 * time.Millisecond})
	defer c2.Close()
	if err := c2.Call(context.Background(), cam.URL(), device.GetDeviceInformation{}, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Call with client timeout = %v, want context.DeadlineExceeded", err)
	}
}

func TestSnapshotGetWithDigest(t *testing.T) {
	cam := onviftest.Start(t, sim.Config{User: "u", Password: "p", Auth: sim.AuthDigestSHA256})
	c := soap.New(soap.Options{Username: "u", Password: "p"})
	defer c.Close()
	url := strings.TrimSuffix(cam.URL(), "/onvif/device_service") + "/snapshot.jpg"
	data, err := c.Get(context.Background(), url, 1<<20)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if string(data) != string(cam.Snapshot()) {
		t.Errorf("Get returned %d bytes, want the camera's %d", len(data), len(cam.Snapshot()))
	}
	if _, err := c.Get(context.Background(), url, 10); err == nil {
		t.Error("Get with a 10-byte limit succeeded, want an error")
	}
}

func TestDecodeEmptyBody(t *testing.T) {
	f, err := soap.Decode([]byte(`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body></s:Body></s:Envelope>`), nil)
	if f != nil || err != nil {
		t.Fatalf("Decode(empty body) = %v, %v, want nil, nil", f, err)
	}
}

// FuzzDecode checks the envelope and fault decoder on every recorded
// camera response (../testdata/recorded) and what the fuzzer makes of
// them: it never gives both a fault and an error; its errors wrap
// ErrMalformed, whether the body is decoded or skipped; a fault's fields
// are trimmed and its detail's whitespace collapsed.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><x><Model>m</Model></x></s:Body></s:Envelope>`), false)
	f.Add([]byte(`<e:Envelope xmlns:e="x"><e:Body><e:Fault><e:Code><e:Value>a</e:Value><e:Subcode><e:Value>b</e:Value></e:Subcode></e:Code></e:Fault></e:Body></e:Envelope>`), false)
	f.Add([]byte(`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring> bad </faultstring><detail><x>one</x>
	two</detail></s:Fault></s:Body></s:Envelope>`), true)
	files, _ := filepath.Glob("../testdata/recorded/*.xml")
	more, _ := filepath.Glob("../testdata/recorded/*/*/*.xml")
	for _, file := range append(files, more...) {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, skip bool) {
		var got info
		var resp any = &got
		if skip {
			resp = nil
		}
		fault, err := soap.Decode(data, resp)
		if fault != nil && err != nil {
			t.Fatalf("Decode returned both a fault and an error")
		}
		if err != nil && !errors.Is(err, soap.ErrMalformed) {
			t.Fatalf("Decode(resp nil: %v) = %v, not wrapping ErrMalformed", skip, err)
		}
		if fault == nil {
			return
		}
		for _, s := range []string{fault.Code, fault.Subcode, fault.Reason, fault.Detail} {
			if strings.TrimSpace(s) != s {
				t.Fatalf("fault %+v: %q not trimmed", fault, s)
			}
		}
		if strings.Join(strings.Fields(fault.Detail), " ") != fault.Detail {
			t.Fatalf("fault detail %q: whitespace not collapsed", fault.Detail)
		}
		_ = fault.Error()
	})
}

// A camera that answers 401 without any challenge gets UsernameToken.
func TestUnauthorizedWithoutChallenge(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !strings.Contains(string(body), "<wsse:Username>admin</wsse:Username>") {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, `<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body><GetDeviceInformationResponse><Model>M</Model></GetDeviceInformationResponse></e:Body></e:Envelope>`)
	}))
	defer srv.Close()
	c := soap.New(soap.Options{Username: "admin", Password: "pw"})
	defer c.Close()
	var got info
	if err := c.Call(context.Background(), srv.URL, device.GetDeviceInformation{}, &got); err != nil || got.Model != "M" {
		t.Fatalf("Call = %v, model %q", err, got.Model)
	}
	if c.Auth() != soap.AuthUsernameToken {
		t.Errorf("Auth() = %v, want usernametoken", c.Auth())
	}
}

func TestParseChallengeHeaders(t *testing.T) {
	// Exercised through a server: several challenges in one header, the
	// SHA-256 one preferred, quoted commas kept.
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := r.Header.Get("Authorization"); a != "" {
			seen = append(seen, a)
			p := soap.ParseAuthorization(a)
			want := soap.DigestResponse(p["algorithm"], "admin", "a, b", "pw", r.Method, p["uri"], p["nonce"], p["nc"], p["cnonce"], p["qop"])
			if p["response"] == want {
				_, _ = io.WriteString(w, `<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>`)
				return
			}
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="x", Digest realm="a, b", nonce="n1", qop="auth-int,auth", algorithm=MD5, Digest realm="a, b", nonce="n2", qop="auth", algorithm=SHA-256, opaque="o"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	c := soap.New(soap.Options{Username: "admin", Password: "pw"})
	defer c.Close()
	if err := c.Call(context.Background(), srv.URL, device.GetDeviceInformation{}, nil); err != nil {
		t.Fatalf("Call: %v (sent %q)", err, seen)
	}
	if len(seen) != 1 || !strings.Contains(seen[0], "algorithm=SHA-256") || !strings.Contains(seen[0], `nonce="n2"`) || !strings.Contains(seen[0], `opaque="o"`) {
		t.Errorf("Authorization sent = %q, want the SHA-256 challenge answered", seen)
	}
}

func TestDecodeFault(t *testing.T) {
	const env12 = `<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:ter="http://www.onvif.org/ver10/error"><env:Body><env:Fault>`
	const end12 = `</env:Fault></env:Body></env:Envelope>`
	tests := []struct {
		name    string
		body    string
		want    soap.Fault
		wantErr string // the fault's message
	}{
		{
			name: "SOAP 1.2 with a subcode chain and a Detail Text",
			body: env12 + `<env:Code><env:Value>env:Sender</env:Value><env:Subcode><env:Value>ter:InvalidArgVal</env:Value><env:Subcode><env:Value>ter:NoProfile</env:Value></env:Subcode></env:Subcode></env:Code>` +
				`<env:Reason><env:Text xml:lang="en">Invalid argument</env:Text></env:Reason><env:Detail><env:Text>profile "p9" does not exist</env:Text></env:Detail>` + end12,
			want:    soap.Fault{Code: "env:Sender", Subcode: "ter:InvalidArgVal/ter:NoProfile", Reason: "Invalid argument", Detail: `profile "p9" does not exist`},
			wantErr: `SOAP fault env:Sender (ter:InvalidArgVal/ter:NoProfile): Invalid argument: detail: profile "p9" does not exist`,
		},
		{
			name: "SOAP 1.2 with a vendor element in Detail",
			body: env12 + `<env:Code><env:Value>env:Receiver</env:Value></env:Code><env:Reason><env:Text>Action failed</env:Text></env:Reason>` +
				`<env:Detail><ter:ErrorDetail>
				   encoder busy</ter:ErrorDetail><ter:Code>17</ter:Code></env:Detail>` + end12,
			want:    soap.Fault{Code: "env:Receiver", Reason: "Action failed", Detail: "encoder busy 17"},
			wantErr: "SOAP fault env:Receiver: Action failed: detail: encoder busy 17",
		},
		{
			name:    "a Detail that repeats the reason is not said twice",
			body:    env12 + `<env:Code><env:Value>env:Receiver</env:Value></env:Code><env:Reason><env:Text>busy</env:Text></env:Reason><env:Detail>busy</env:Detail>` + end12,
			want:    soap.Fault{Code: "env:Receiver", Reason: "busy", Detail: "busy"},
			wantErr: "SOAP fault env:Receiver: busy",
		},
		{
			name:    "SOAP 1.1 detail",
			body:    `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>bad</faultstring><detail><reason>token expired</reason></detail></s:Fault></s:Body></s:Envelope>`,
			want:    soap.Fault{Code: "s:Client", Reason: "bad", Detail: "token expired"},
			wantErr: "SOAP fault s:Client: bad: detail: token expired",
		},
		{
			name:    "no detail",
			body:    env12 + `<env:Code><env:Value>env:Receiver</env:Value></env:Code><env:Reason><env:Text>simulated failure</env:Text></env:Reason>` + end12,
			want:    soap.Fault{Code: "env:Receiver", Reason: "simulated failure"},
			wantErr: "SOAP fault env:Receiver: simulated failure",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := soap.Decode([]byte(tt.body), nil)
			if err != nil || f == nil {
				t.Fatalf("Decode = %v, %v, want a fault", f, err)
			}
			if *f != tt.want {
				t.Errorf("Decode = %+v, want %+v", *f, tt.want)
			}
			if got := f.Error(); got != tt.wantErr {
				t.Errorf("Error() = %q, want %q", got, tt.wantErr)
			}
		})
	}
}

// TestOpenStreamsWithinLimit: Open gives the snapshot as a stream that
// fails past its limit, after the same authentication as Get.
func TestOpenStreamsWithinLimit(t *testing.T) {
	body := strings.Repeat("j", 1000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "admin" || p != "secret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="cam"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.URL.Path == "/missing.jpg" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, body)
	}))
	defer srv.Close()
	tests := []struct {
		name    string
		path    string
		limit   int64
		want    string
		wantErr string
	}{
		{name: "under the limit", path: "/s.jpg", limit: 2000, want: body},
		{name: "exactly the limit", path: "/s.jpg", limit: 1000, want: body},
		{name: "over the limit", path: "/s.jpg", limit: 999, wantErr: "larger than 999 bytes"},
		{name: "not found", path: "/missing.jpg", limit: 2000, wantErr: "404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := soap.New(soap.Options{Username: "admin", Password: "secret", Timeout: 5 * time.Second})
			defer c.Close()
			rc, err := c.Open(context.Background(), srv.URL+tt.path, tt.limit)
			var got []byte
			if err == nil {
				got, err = io.ReadAll(rc)
				rc.Close()
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Open and read = %d bytes, %v, want an error with %q", len(got), err, tt.wantErr)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("Open and read = %d bytes, %v, want %d bytes", len(got), err, len(tt.want))
			}
		})
	}
	c := soap.New(soap.Options{Username: "admin", Password: "wrong", Timeout: 5 * time.Second})
	defer c.Close()
	if _, err := c.Open(context.Background(), srv.URL+"/s.jpg", 2000); !errors.Is(err, soap.ErrUnauthorized) {
		t.Fatalf("Open with a wrong password = %v, want ErrUnauthorized", err)
	}
}

// TestDecodeTruncatedSkippedBody is the regression test of what FuzzDecode
// found: a body cut short in a response whose content is not wanted (resp
// nil) gave the XML error alone, which the adapter took for a camera
// offline; it wraps ErrMalformed like every other.
func TestDecodeTruncatedSkippedBody(t *testing.T) {
	data := []byte(`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><SystemRebootResponse><Message>rebooting`)
	f, err := soap.Decode(data, nil)
	if f != nil || !errors.Is(err, soap.ErrMalformed) {
		t.Fatalf("Decode(truncated body, nil) = %v, %v, want an error wrapping ErrMalformed", f, err)
	}
}
