package platform

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/osapgw/osapgw/internal/leaktest"
	"github.com/osapgw/osapgw/osap"
)

// testClock is a clock tests set and move.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// startEmulator runs an emulator with its API (and so its picture
// service) and returns a function that stops it and waits; the test's
// end stops it too.
func startEmulator(t *testing.T, cfg EmulatorConfig) (*Emulator, func()) {
	t.Helper()
	cfg.Logger = testLogger(t)
	if cfg.HTTPListen == "" {
		cfg.HTTPListen = "127.0.0.1:0"
	}
	e, err := NewEmulator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run = %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return e, stop
}

// giveSession makes devID a registered gateway with key as its session
// key, valid until expires.
func giveSession(reg *Registry, serial, devID string, suite osap.Suite, key []byte, expires time.Time) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	e := &entry{Serial: serial, DevID: devID, MasterKey: bytes.Repeat([]byte{1}, osap.KeySize), Suite: suite,
		Sessions: []sessionKey{{Key: key, Expires: expires}}}
	reg.bySerial[serial] = e
	reg.byDevID[devID] = e
	reg.gen++
}

// upload is one picture upload a test sends.
type upload struct {
	url     string
	body    []byte
	header  http.Header
	chunked bool // send without Content-Length
}

// newUpload builds a valid upload of body by devID, its token sealed with
// c at the time at.
func newUpload(t *testing.T, base string, c *osap.Cipher, devID string, at time.Time, body []byte) *upload {
	t.Helper()
	tok, err := c.PictureToken(rand.Reader, devID, at, sha256.Sum256(body))
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("Authorization", osap.PictureAuthScheme+" "+tok)
	h.Set("Content-Type", osap.PictureContentType)
	h.Set(osap.PictureDevHeader, "cam-1")
	return &upload{url: base + osap.PicturePath(devID), body: body, header: h}
}

// uploadAnswer is the service's answer.
type uploadAnswer struct {
	Status     int
	RetryAfter string
	Picture    string `json:"picture"`
	SHA256     string `json:"sha256"`
	Size       int64  `json:"size"`
	Error      string `json:"error"`
}

func (u *upload) send(t *testing.T) uploadAnswer {
	t.Helper()
	var body io.Reader = bytes.NewReader(u.body)
	if u.chunked {
		body = io.MultiReader(body) // hides the length from net/http
	}
	req, err := http.NewRequest(http.MethodPost, u.url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = u.header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", u.url, err)
	}
	defer resp.Body.Close()
	a := uploadAnswer{Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After")}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatalf("POST %s: %d with a body that is not JSON: %v", u.url, resp.StatusCode, err)
	}
	return a
}

func mustCipher(t *testing.T, s osap.Suite, key []byte) *osap.Cipher {
	t.Helper()
	c, err := osap.NewCipher(s, key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustHexKey(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPictureCheckValue uploads the picture of the check value of design
// 2.6 with its token, on an emulator whose clock and session match.
func TestPictureCheckValue(t *testing.T) {
	leaktest.Check(t)
	const (
		devID = "d487060bbc2fe796"
		token = "oKGio6SlpqeoqaqrxfVZy1P5Wmn+DcdlRhKwYDrI6fiTBi+8MQVnjFqUlbOGvlsuB1cJvl7QzcX8qhLmP+BT20xtEsmerbAAkNHfv3STwunLHxb/UnP+hzPA7BWHXAbl"
		id    = "08bde5d3210e2f0153711b3683b41f92"
	)
	clk := &testClock{t: time.Unix(1764150000, 0)}
	e, _ := startEmulator(t, EmulatorConfig{StateDir: t.TempDir(), Now: clk.Now})
	giveSession(e.Registry, "GW-CHECK", devID, osap.SuiteAESGCM, mustHexKey(t, "000102030405060708090a0b0c0d0e0f"), clk.Now().Add(time.Hour))
	body := []byte("osapgw picture check")
	u := &upload{url: e.PictureURL() + osap.PicturePath(devID), body: body, header: http.Header{
		"Authorization": {"OSAP " + token}, "Content-Type": {"image/jpeg"}, "X-Osap-Dev": {""}}}
	sum := sha256.Sum256(body)
	want := uploadAnswer{Status: 201, Picture: id, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(body))}
	if got := u.send(t); got != want {
		t.Fatalf("upload = %+v, want %+v", got, want)
	}
	if got := u.send(t); got.Status != http.StatusUnauthorized {
		t.Fatalf("the same token again = %+v, want 401", got)
	}
	pics := e.Pictures.Pictures(devID)
	wantPics := []Picture{{ID: id, DevID: devID, Dev: "", Size: int64(len(body)), SHA256: want.SHA256, Time: clk.Now().UTC()}}
	if diff := cmp.Diff(wantPics, pics); diff != "" {
		t.Fatalf("Pictures (-want +got):\n%s", diff)
	}
}

func TestPictureUploadChecks(t *testing.T) {
	leaktest.Check(t)
	clk := &testClock{t: time.Unix(1764150000, 0)}
	e, _ := startEmulator(t, EmulatorConfig{StateDir: t.TempDir(), Now: clk.Now})
	const devID, other = "00000000000000a1", "00000000000000b2"
	key := bytes.Repeat([]byte{0x11}, osap.KeySize)
	giveSession(e.Registry, "GW-A", devID, osap.SuiteAESGCM, key, clk.Now().Add(time.Hour))
	giveSession(e.Registry, "GW-B", other, osap.SuiteAESGCM, bytes.Repeat([]byte{0x22}, osap.KeySize), clk.Now().Add(time.Hour))
	c := mustCipher(t, osap.SuiteAESGCM, key)
	base := e.PictureURL()
	now := clk.Now()
	n := 0
	body := func() []byte { n++; return fmt.Appendf(nil, "\xff\xd8 picture %d", n) } // a new picture per case

	tests := []struct {
		name   string
		make   func() *upload
		status int
	}{
		{"good", func() *upload { return newUpload(t, base, c, devID, now, body()) }, 201},
		{"token of the gateway itself (empty X-OSAP-Dev)", func() *upload {
			u := newUpload(t, base, c, devID, now, body())
			u.header.Set(osap.PictureDevHeader, "")
			return u
		}, 201},
		{"without Content-Length", func() *upload {
			u := newUpload(t, base, c, devID, now, body())
			u.chunked = true
			return u
		}, 201},
		{"300 s old", func() *upload { return newUpload(t, base, c, devID, now.Add(-osap.PictureTokenMaxAge), body()) }, 201},
		{"300 s ahead", func() *upload { return newUpload(t, base, c, devID, now.Add(osap.PictureTokenMaxAge), body()) }, 201},
		{"other key", func() *upload {
			return newUpload(t, base, mustCipher(t, osap.SuiteAESGCM, bytes.Repeat([]byte{0x33}, osap.KeySize)), devID, now, body())
		}, 401},
		{"other gateway's key", func() *upload {
			return newUpload(t, base, mustCipher(t, osap.SuiteAESGCM, bytes.Repeat([]byte{0x22}, osap.KeySize)), devID, now, body())
		}, 401},
		{"token for another DevID", func() *upload {
			u := newUpload(t, base, c, other, now, body())
			u.url = base + osap.PicturePath(devID)
			return u
		}, 401},
		{"unknown DevID", func() *upload { return newUpload(t, base, c, "00000000000000ff", now, body()) }, 401},
		{"too old", func() *upload {
			return newUpload(t, base, c, devID, now.Add(-osap.PictureTokenMaxAge-time.Second), body())
		}, 401},
		{"too new", func() *upload {
			return newUpload(t, base, c, devID, now.Add(osap.PictureTokenMaxAge+time.Second), body())
		}, 401},
		{"hash mismatch", func() *upload {
			u := newUpload(t, base, c, devID, now, body())
			u.body = append(u.body, 'x')
			return u
		}, 401},
		{"no Authorization", func() *upload {
			u := newUpload(t, base, c, devID, now, body())
			u.header.Del("Authorization")
			return u
		}, 400},
		{"other scheme", func() *upload {
			u := newUpload(t, base, c, devID, now, body())
			u.header.Set("Authorization", "Bearer "+strings.Fields(u.header.Get("Authorization"))[1])
			return u
		}, 400},
		{"token not base64", func() *upload {
			u := newUpload(t, base, c, devID, now, body())
			u.header.Set("Authorization", "OSAP !!!not-base64!!!")
			return u
		}, 400},
		{"scheme alone", func() *upload {
			u := newUpload(t, base, c, devID, now, body())
			u.header.Set("Authorization", "OSAP")
			return u
		}, 400},
		{"login password as token", func() *upload {
			u := newUpload(t, base, c, devID, now, body())
			pw, err := c.LoginPassword(rand.Reader, devID, now)
			if err != nil {
				t.Fatal(err)
			}
			u.header.Set("Authorization", "OSAP "+pw)
			return u
		}, 401},
		{"wrong Content-Type", func() *upload {
			u := newUpload(t, base, c, devID, now, body())
			u.header.Set("Content-Type", "image/png")
			return u
		}, 400},
		{"no Content-Type", func() *upload {
			u := newUpload(t, base, c, devID, now, body())
			u.header.Del("Content-Type")
			return u
		}, 400},
		{"empty body", func() *upload { return newUpload(t, base, c, devID, now, nil) }, 400},
		{"empty body without Content-Length", func() *upload {
			u := newUpload(t, base, c, devID, now, nil)
			u.chunked = true
			return u
		}, 400},
		{"no X-OSAP-Dev", func() *upload {
			u := newUpload(t, base, c, devID, now, body())
			u.header.Del(osap.PictureDevHeader)
			return u
		}, 400},
		{"unknown path", func() *upload {
			u := newUpload(t, base, c, devID, now, body())
			u.url = base + "/v1/" + devID + "/photos"
			return u
		}, 404},
		{"no version", func() *upload {
			u := newUpload(t, base, c, devID, now, body())
			u.url = base + "/" + devID + "/pictures"
			return u
		}, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := tt.make()
			got := u.send(t)
			if got.Status != tt.status {
				t.Fatalf("upload = %+v, want status %d", got, tt.status)
			}
			if tt.status == 201 {
				sum := sha256.Sum256(u.body)
				if got.Picture != osap.PictureID(sum) || got.SHA256 != hex.EncodeToString(sum[:]) || got.Size != int64(len(u.body)) {
					t.Fatalf("upload = %+v, want the id, hash and size of %q", got, u.body)
				}
			} else if got.Error == "" {
				t.Fatalf("upload = %+v: no error message", got)
			}
		})
	}
}

func TestPictureReplayAndIdempotence(t *testing.T) {
	leaktest.Check(t)
	e, _ := startEmulator(t, EmulatorConfig{StateDir: t.TempDir()})
	const devID = "00000000000000a1"
	key := bytes.Repeat([]byte{0x11}, osap.KeySize)
	giveSession(e.Registry, "GW-A", devID, osap.SuiteAESCBCHMAC, key, time.Now().Add(time.Hour))
	c := mustCipher(t, osap.SuiteAESCBCHMAC, key)
	body := []byte("\xff\xd8 the same picture")
	u := newUpload(t, e.PictureURL(), c, devID, time.Now(), body)
	first := u.send(t)
	if first.Status != 201 {
		t.Fatalf("first upload = %+v", first)
	}
	if got := u.send(t); got.Status != 401 {
		t.Fatalf("replayed token = %+v, want 401", got)
	}
	again := newUpload(t, e.PictureURL(), c, devID, time.Now(), body)
	again.header.Set(osap.PictureDevHeader, "cam-2")
	if got := again.send(t); got != first {
		t.Fatalf("upload of the same picture with a fresh token = %+v, want %+v", got, first)
	}
	if pics := e.Pictures.Pictures(devID); len(pics) != 1 || pics[0].Dev != "cam-1" {
		t.Fatalf("Pictures = %+v, want one, of cam-1 (its first upload)", pics)
	}
}

func TestPictureSizeLimit(t *testing.T) {
	leaktest.Check(t)
	e, _ := startEmulator(t, EmulatorConfig{StateDir: t.TempDir()})
	const devID = "00000000000000a1"
	key := bytes.Repeat([]byte{0x11}, osap.KeySize)
	giveSession(e.Registry, "GW-A", devID, osap.SuiteAESGCM, key, time.Now().Add(time.Hour))
	c := mustCipher(t, osap.SuiteAESGCM, key)
	exact := make([]byte, osap.PictureMaxSize)
	exact[0], exact[1] = 0xff, 0xd8
	over := append(bytes.Clone(exact), 0xd9)
	tests := []struct {
		name    string
		body    []byte
		chunked bool
		status  int
	}{
		{"8 MiB + 1", over, false, 413},
		{"8 MiB + 1 without Content-Length", over, true, 413},
		{"8 MiB", exact, false, 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUpload(t, e.PictureURL(), c, devID, time.Now(), tt.body)
			u.chunked = tt.chunked
			if got := u.send(t); got.Status != tt.status {
				t.Fatalf("upload of %d bytes = %+v, want %d", len(tt.body), got, tt.status)
			}
		})
	}
}

// countingReader is an endless body that counts what is read of it.
type countingReader struct{ n int64 }

func (r *countingReader) Read(p []byte) (int, error) {
	clear(p)
	r.n += int64(len(p))
	return len(p), nil
}

// TestPictureBodyReadBounded: an endless body is read no further than one
// byte past the limit.
func TestPictureBodyReadBounded(t *testing.T) {
	keys := newFakeKeys()
	key := keys.add("gw-1")
	p, err := NewPictureService(PictureServiceConfig{Dir: t.TempDir(), Keys: keys, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	c := mustCipher(t, osap.SuiteAESGCM, key)
	tok, err := c.PictureToken(rand.Reader, "gw-1", time.Now(), [32]byte{})
	if err != nil {
		t.Fatal(err)
	}
	body := &countingReader{}
	req := httptest.NewRequest(http.MethodPost, osap.PicturePath("gw-1"), body)
	req.ContentLength = -1
	req.Header.Set("Authorization", "OSAP "+tok)
	req.Header.Set("Content-Type", "image/jpeg")
	req.Header.Set(osap.PictureDevHeader, "")
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge || body.n > osap.PictureMaxSize+1 {
		t.Fatalf("endless upload = %d after reading %d bytes, want 413 after at most %d", rec.Code, body.n, osap.PictureMaxSize+1)
	}
}

func TestPicturePreviousSessionKey(t *testing.T) {
	leaktest.Check(t)
	clk := &testClock{t: time.Unix(1764150000, 0)}
	e, _ := startEmulator(t, EmulatorConfig{StateDir: t.TempDir(), Now: clk.Now})
	const devID = "00000000000000a1"
	oldKey := bytes.Repeat([]byte{0x11}, osap.KeySize)
	giveSession(e.Registry, "GW-A", devID, osap.SuiteAESGCM, oldKey, clk.Now().Add(time.Hour))
	if err := e.Registry.refresh(devID, bytes.Repeat([]byte{0x12}, osap.KeySize), time.Hour); err != nil {
		t.Fatal(err)
	}
	oldC := mustCipher(t, osap.SuiteAESGCM, oldKey)
	newC := mustCipher(t, osap.SuiteAESGCM, bytes.Repeat([]byte{0x12}, osap.KeySize))
	pic := func() []byte { return fmt.Appendf(nil, "\xff\xd8 %v", clk.Now()) }

	clk.Add(time.Hour - time.Second)
	if got := newUpload(t, e.PictureURL(), oldC, devID, clk.Now(), pic()).send(t); got.Status != 201 {
		t.Fatalf("previous key within its lifetime: upload = %+v, want 201", got)
	}
	clk.Add(time.Second)
	if got := newUpload(t, e.PictureURL(), oldC, devID, clk.Now(), pic()).send(t); got.Status != 401 {
		t.Fatalf("previous key at the end of its lifetime: upload = %+v, want 401", got)
	}
	if got := newUpload(t, e.PictureURL(), newC, devID, clk.Now(), pic()).send(t); got.Status != 201 {
		t.Fatalf("current key: upload = %+v, want 201", got)
	}
}

func getBytes(t *testing.T, url string) (int, string, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

// TestPicturesSurviveRestart stores a picture, restarts the emulator on
// the same state directory, and finds it listed, served and recognised.
func TestPicturesSurviveRestart(t *testing.T) {
	leaktest.Check(t)
	dir := t.TempDir()
	const devID = "00000000000000a1"
	key := bytes.Repeat([]byte{0x11}, osap.KeySize)
	c := mustCipher(t, osap.SuiteAESGCM, key)
	body := []byte("\xff\xd8 kept across a restart")

	e, stop := startEmulator(t, EmulatorConfig{StateDir: dir})
	giveSession(e.Registry, "GW-A", devID, osap.SuiteAESGCM, key, time.Now().Add(time.Hour))
	if err := e.Registry.save(e.Registry.gen, true); err != nil {
		t.Fatal(err)
	}
	first := newUpload(t, e.PictureURL(), c, devID, time.Now(), body).send(t)
	if first.Status != 201 {
		t.Fatalf("upload = %+v", first)
	}
	before := e.Pictures.Pictures(devID)
	stop()

	e2, _ := startEmulator(t, EmulatorConfig{StateDir: dir})
	if diff := cmp.Diff(before, e2.Pictures.Pictures(devID)); diff != "" {
		t.Fatalf("Pictures after restart (-before +after):\n%s", diff)
	}
	for _, url := range []string{
		e2.PictureURL() + osap.PicturePath(devID) + "/" + first.Picture,
		e2.APIURL() + "/api/devices/" + devID + "/pictures/" + first.Picture,
	} {
		status, ct, got := getBytes(t, url)
		if status != 200 || ct != "image/jpeg" || !bytes.Equal(got, body) {
			t.Fatalf("GET %s = %d %q %q, want 200 image/jpeg %q", url, status, ct, got, body)
		}
	}
	var page PicturesPage
	if code := getJSONStatus(t, e2.APIURL()+"/api/devices/"+devID+"/pictures", &page); code != 200 || len(page.Pictures) != 1 || page.Pictures[0].ID != first.Picture {
		t.Fatalf("picture list = %d %+v", code, page)
	}
	if got := newUpload(t, e2.PictureURL(), c, devID, time.Now(), body).send(t); got != first {
		t.Fatalf("upload again after restart = %+v, want %+v", got, first)
	}
	for _, url := range []string{
		e2.PictureURL() + osap.PicturePath(devID) + "/0123456789abcdef0123456789abcdef",
		e2.PictureURL() + osap.PicturePath(devID) + "/..",
		e2.APIURL() + "/api/devices/" + devID + "/pictures/nope",
	} {
		if status, _, _ := getBytes(t, url); status != 404 {
			t.Errorf("GET %s = %d, want 404", url, status)
		}
	}
}

func getJSONStatus(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode
}

func doJSON(t *testing.T, method, url, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestPictureFault refuses and holds uploads through the Go hook and the
// HTTP API.
func TestPictureFault(t *testing.T) {
	leaktest.Check(t)
	e, _ := startEmulator(t, EmulatorConfig{StateDir: t.TempDir()})
	const devID = "00000000000000a1"
	key := bytes.Repeat([]byte{0x11}, osap.KeySize)
	giveSession(e.Registry, "GW-A", devID, osap.SuiteAESGCM, key, time.Now().Add(time.Hour))
	c := mustCipher(t, osap.SuiteAESGCM, key)
	pic := []byte("\xff\xd8 fault")
	send := func() uploadAnswer { return newUpload(t, e.PictureURL(), c, devID, time.Now(), pic).send(t) }

	e.Pictures.SetFault(PictureFault{Status: 503, RetryAfter: 2500 * time.Millisecond, Count: 2})
	for i := range 2 {
		if got := send(); got.Status != 503 || got.RetryAfter != "3" {
			t.Fatalf("upload %d under a 503 fault = %+v, want 503 with Retry-After 3", i, got)
		}
	}
	if got := send(); got.Status != 201 {
		t.Fatalf("upload after the fault's count = %+v, want 201", got)
	}

	api := e.APIURL() + "/api/pictures/fault"
	if code := doJSON(t, http.MethodPut, api, `{"status":401}`); code != 200 {
		t.Fatalf("PUT fault = %d", code)
	}
	if got := send(); got.Status != 401 {
		t.Fatalf("upload under a 401 fault = %+v, want 401", got)
	}
	var fr PictureFaultRequest
	if code := getJSONStatus(t, api, &fr); code != 200 || fr != (PictureFaultRequest{Status: 401}) {
		t.Fatalf("GET fault = %d %+v", code, fr)
	}
	if code := doJSON(t, http.MethodPut, api, `{"delay":"200ms","count":1}`); code != 200 {
		t.Fatalf("PUT delay = %d", code)
	}
	start := time.Now()
	if got := send(); got.Status != 201 || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("held upload = %+v after %v, want 201 after 200ms or more", got, time.Since(start))
	}
	for _, bad := range []string{`{"status":200}`, `{"delay":"forever"}`, `{"count":-1}`, `{"colour":"red"}`} {
		if code := doJSON(t, http.MethodPut, api, bad); code != 400 {
			t.Errorf("PUT fault %s = %d, want 400", bad, code)
		}
	}
	e.Pictures.SetFault(PictureFault{Status: 503})
	if code := doJSON(t, http.MethodDelete, api, ""); code != 200 {
		t.Fatalf("DELETE fault = %d", code)
	}
	if got := send(); got.Status != 201 {
		t.Fatalf("upload after DELETE = %+v, want 201", got)
	}
	if n := e.Pictures.Answered(503); n != 2 {
		t.Errorf("Answered(503) = %d, want 2", n)
	}
}

// TestLBSAnnouncesPictureService: 0xB carries the picture service's URL
// when it is on, and none when it is off.
func TestLBSAnnouncesPictureService(t *testing.T) {
	leaktest.Check(t)
	tests := []struct {
		name string
		cfg  EmulatorConfig
		want func(*Emulator) string
	}{
		{"default", EmulatorConfig{}, func(e *Emulator) string { return e.APIURL() + DefaultPicturePath }},
		{"path", EmulatorConfig{PicturePath: "/pics"}, func(e *Emulator) string { return e.APIURL() + "/pics" }},
		{"off", EmulatorConfig{NoPictures: true}, func(*Emulator) string { return "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.StateDir = t.TempDir()
			e, _ := startEmulator(t, tt.cfg)
			e.Registry.Add("GW1", "ABCDEF")
			c, _ := newClient(t, e.LBSAddr(), nil)
			cr, err := c.Authenticate(testCtx(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.want(e); cr.PictureURL != want || e.PictureURL() != want {
				t.Fatalf("picture URL in 0xB = %q, emulator says %q, want %q", cr.PictureURL, e.PictureURL(), want)
			}
			if tt.cfg.NoPictures && e.Pictures != nil {
				t.Fatal("NoPictures: the emulator has a picture service")
			}
		})
	}
	if _, err := NewEmulator(EmulatorConfig{StateDir: t.TempDir(), HTTPListen: "127.0.0.1:0", PicturePath: "/api/x", Logger: testLogger(t)}); err == nil {
		t.Error("picture path under /api accepted")
	}
}

func FuzzParseAuthorization(f *testing.F) {
	f.Add("OSAP oKGio6SlpqeoqaqrxfVZy1P5Wmn+DcdlRhKwYDrI6fiTBi+8MQVnjFqUlbOGvlsuB1cJvl7QzcX8qhLmP+BT20xtEsmerbAAkNHfv3STwunLHxb/UnP+hzPA7BWHXAbl")
	f.Add("osap  AAAA")
	f.Add("OSAP")
	f.Add("OSAP ")
	f.Add("Bearer AAAA")
	f.Add("OSAP AAA=\x00")
	f.Fuzz(func(t *testing.T, h string) {
		tok, ok := parseAuthorization(h)
		if !ok {
			if tok != "" {
				t.Fatalf("parseAuthorization(%q) = %q, false", h, tok)
			}
			return
		}
		if tok == "" || len(h) > maxAuthorization || !strings.HasSuffix(h, tok) || !strings.EqualFold(h[:len(osap.PictureAuthScheme)], osap.PictureAuthScheme) {
			t.Fatalf("parseAuthorization(%q) = %q, true", h, tok)
		}
		if again, ok := parseAuthorization("OSAP " + tok); !ok || again != tok {
			t.Fatalf("parseAuthorization(OSAP %q) = %q, %v; want it back", tok, again, ok)
		}
	})
}

// TestEventPicturesListed: an event.report's pictures and picture_error
// are kept with the event and shown by the API's event listing.
func TestEventPicturesListed(t *testing.T) {
	leaktest.Check(t)
	keys := newFakeKeys()
	d := serve(t, newDAS(t, DASConfig{Keys: keys}))
	td := newDevice(t, "gw-pic", keys.add("gw-pic"))
	td.login(d.DAS)
	td.publish(osap.KindEvent, osap.Header{ID: "1", Type: osap.TypeEventReport, Dev: "cam-1"},
		osap.EventReport{Resource: "video/1", Event: "motion", TS: 1764150000000, Pictures: []string{"08bde5d3210e2f0153711b3683b41f92"}})
	td.publish(osap.KindEvent, osap.Header{ID: "2", Type: osap.TypeEventReport, Dev: "cam-1"},
		osap.EventReport{Resource: "video/1", Event: "motion", TS: 1764150000001, PictureError: "snapshot timed out"})
	srv := httptest.NewServer(NewAPI([]*DAS{d.DAS}))
	defer srv.Close()
	var page EventsPage
	if code := getJSONStatus(t, srv.URL+"/api/devices/gw-pic/events", &page); code != 200 || len(page.Events) != 2 {
		t.Fatalf("events = %d %+v", code, page)
	}
	got := [][2]any{{page.Events[0].Pictures, page.Events[0].PictureError}, {page.Events[1].Pictures, page.Events[1].PictureError}}
	want := [][2]any{{[]string{"08bde5d3210e2f0153711b3683b41f92"}, ""}, {[]string(nil), "snapshot timed out"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("listed pictures (-want +got):\n%s", diff)
	}
}
