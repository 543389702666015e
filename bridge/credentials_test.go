package bridge

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/adapters/onvif"
	"github.com/osapgw/osapgw/osap"
	sim "github.com/osapgw/osapgw/sim/onvif"
	"github.com/osapgw/osapgw/sim/onvif/onviftest"
)

func TestOfflineReason(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"credentials", fmt.Errorf("camera %q: %w: not authorized (HTTP 401, digest)", "cam-1", adapters.ErrUnauthorized), ReasonCredentials},
		{"timeout", fmt.Errorf("unit 1: %w", adapters.ErrTimeout), ReasonTimeout},
		{"unreachable", fmt.Errorf("link down: %w", adapters.ErrOffline), ReasonUnreachable},
		{"a network error as it comes", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, ReasonUnreachable},
		{"no error", nil, ReasonUnreachable},
		{"anything else", errors.New("SOAP fault env:Receiver"), ReasonProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := offlineReason(tt.err); got != tt.want {
				t.Errorf("offlineReason(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

// TestOfflineForCredentials: a device offline because it refused the
// gateway's credentials answers requests that would reach it with 401
// (not 503: trying later will not help), shows the reason in its status
// and in the offline reason metric, and loses both once it is back.
func TestOfflineForCredentials(t *testing.T) {
	h := newHarness(t, Config{}, "boiler-1")
	h.connect()
	h.b.Status("boiler-1", false, fmt.Errorf("camera %q: %w", "boiler-1", adapters.ErrUnauthorized))
	tests := []struct {
		name     string
		typ      string
		body     string
		wantCode int
	}{
		{"set", osap.TypeAttributeSet, `{"resource":"main","values":{"setpoint":42}}`, osap.CodeUnauthorized},
		{"get", osap.TypeAttributeGet, `{"resource":"main","names":["temperature"]}`, osap.CodeUnauthorized},
		{"invoke", osap.TypeOperationInvoke, `{"resource":"main","operation":"reset","input":{"mode":2}}`, osap.CodeUnauthorized},
		{"unknown resource is still 404", osap.TypeAttributeGet, `{"resource":"aux"}`, osap.CodeNotFound},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("cred-%d", i)
			h.b.Downlink(osap.Message{Header: osap.Header{ID: id, Type: tt.typ, Dev: "boiler-1"}, Body: json.RawMessage(tt.body)})
			if r := h.replyTo(t, id); r.h.Code != tt.wantCode {
				t.Errorf("reply code = %d (%s), want %d", r.h.Code, r.h.Msg, tt.wantCode)
			}
		})
	}
	m := h.b.cfg.Metrics
	checkReasons := func(want string) {
		t.Helper()
		if st := h.b.Devices()[0]; st.OfflineReason != want {
			t.Errorf("status offline_reason = %q, want %q", st.OfflineReason, want)
		}
		for _, r := range offlineReasons {
			want1 := 0.0
			if r == want {
				want1 = 1
			}
			if got := testutil.ToFloat64(m.DeviceOfflineReason.WithLabelValues("boiler-1", r)); got != want1 {
				t.Errorf("osapgw_device_offline_reason{reason=%q} = %v, want %v", r, got, want1)
			}
		}
	}
	checkReasons(ReasonCredentials)
	h.b.Status("boiler-1", false, fmt.Errorf("%w", adapters.ErrTimeout))
	checkReasons(ReasonTimeout)
	h.b.Status("boiler-1", true, nil)
	checkReasons("")
}

// TestCameraRefusingCredentials runs the ONVIF adapter against a
// simulated camera: with a wrong password the platform gets 401 for its
// requests, and the status and metric say why the camera is offline;
// a camera that starts refusing the credentials it took before does the
// same.
func TestCameraRefusingCredentials(t *testing.T) {
	tests := []struct {
		name string
		auth sim.Auth
	}{
		{"digest", sim.AuthDigest},
		{"usernametoken", sim.AuthUsernameToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The harness first: its leak check runs after the camera stops.
			h := newHarness(t, Config{DescribeRetry: 50 * time.Millisecond})
			cam := onviftest.Start(t, sim.Config{User: "admin", Password: "right", Auth: tt.auth})
			h.connect()
			h.b.Apply([]Spec{cameraSpec(t, "cam-1", cam.URL(), "wrong")})
			waitFor(t, "the camera offline for its credentials", func() bool {
				d := h.b.Devices()
				return len(d) == 1 && d[0].State == "offline" && d[0].OfflineReason == ReasonCredentials
			})
			for i, req := range []struct{ typ, body string }{
				{osap.TypeAttributeGet, `{"resource":"device"}`},
				{osap.TypeOperationInvoke, `{"resource":"device","operation":"sync_time"}`},
			} {
				id := fmt.Sprintf("%s-%d", tt.name, i)
				h.b.Downlink(osap.Message{Header: osap.Header{ID: id, Type: req.typ, Dev: "cam-1"}, Body: json.RawMessage(req.body)})
				if r := h.replyTo(t, id); r.h.Code != osap.CodeUnauthorized {
					t.Errorf("%s: reply code = %d (%s), want 401", req.typ, r.h.Code, r.h.Msg)
				}
			}
			if got := testutil.ToFloat64(h.b.cfg.Metrics.DeviceOfflineReason.WithLabelValues("cam-1", ReasonCredentials)); got != 1 {
				t.Errorf("osapgw_device_offline_reason{credentials} = %v, want 1", got)
			}
		})
	}
	t.Run("refused after being online", func(t *testing.T) {
		h := newHarness(t, Config{DescribeRetry: 50 * time.Millisecond})
		cam := onviftest.Start(t, sim.Config{User: "admin", Password: "right"})
		h.connect()
		h.b.Apply([]Spec{cameraSpec(t, "cam-1", cam.URL(), "right")})
		waitFor(t, "the camera online", func() bool {
			d := h.b.Devices()
			return len(d) == 1 && d[0].State == "online"
		})
		cam.SetFaults(sim.Faults{Unauthorized: true})
		h.b.Downlink(osap.Message{Header: osap.Header{ID: "late", Type: osap.TypeAttributeGet, Dev: "cam-1"}, Body: json.RawMessage(`{"resource":"device"}`)})
		if r := h.replyTo(t, "late"); r.h.Code != osap.CodeUnauthorized {
			t.Errorf("reply code = %d (%s), want 401", r.h.Code, r.h.Msg)
		}
	})
}

// cameraSpec is the Spec of an ONVIF camera at url, whose password file
// holds password.
func cameraSpec(t *testing.T, id, url, password string) Spec {
	t.Helper()
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("url = %q\nusername = \"admin\"\npassword_file = %q\ntimeout = \"5s\"\nevents = false\n", url, pw)
	return Spec{ID: id, Kind: onvif.Kind, Hash: "v1", Build: func() (adapters.Adapter, error) {
		return onvif.New(id, adapters.TOMLDecoder(conf), adapters.Env{})
	}}
}
