package onvif

import (
	"context"
	"errors"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/osapgw/osapgw/adapters"
	sim "github.com/osapgw/osapgw/sim/onvif"
	"github.com/osapgw/osapgw/sim/onvif/onviftest"
)

// TestFaultyCameraBesideGoodOne runs two cameras, one of them failing in
// some way: the faulty one is reported offline with an error naming the
// camera and the call, and comes back once healed, while the good one's
// events keep flowing.
func TestFaultyCameraBesideGoodOne(t *testing.T) {
	tests := []struct {
		name     string
		faults   sim.Faults
		offline  bool // nothing listens at all
		wantCall string
		wantErr  error // a sentinel of adapters, or nil
	}{
		{name: "garbage", faults: sim.Faults{Malformed: true}, wantCall: "GetSystemDateAndTime"},
		{name: "SOAP fault", faults: sim.Faults{SOAPFault: true}, wantCall: "GetServices"},
		{name: "slow", faults: sim.Faults{Slow: time.Minute}, wantCall: "GetSystemDateAndTime", wantErr: adapters.ErrTimeout},
		{name: "401", faults: sim.Faults{Unauthorized: true}, wantCall: "GetSystemDateAndTime", wantErr: adapters.ErrUnauthorized},
		{name: "offline", offline: true, wantCall: "GetSystemDateAndTime", wantErr: adapters.ErrOffline},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			good := onviftest.Start(t, sim.Config{User: "admin", Password: "secret"})
			url := ""
			var bad *sim.Camera
			if tt.offline {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				url = "http://" + ln.Addr().String() + "/onvif/device_service"
				ln.Close()
			} else {
				bad = onviftest.Start(t, sim.Config{User: "admin", Password: "secret"})
				bad.SetFaults(tt.faults)
				url = bad.URL()
			}
			rec := newRecorder()
			runAdapter(t, newAdapter(t, "good", good.URL(), ""), rec)
			runAdapter(t, newAdapter(t, "bad", url, `timeout = "300ms"`), rec)

			rec.waitFor(t, "bad offline", func() bool {
				for _, s := range rec.status {
					if s.dev == "bad" && !s.online {
						return true
					}
				}
				return false
			})
			rec.mu.Lock()
			var badErr error
			for _, s := range rec.status {
				if s.dev == "bad" {
					if s.online {
						t.Errorf("bad camera reported online")
					}
					badErr = s.err
					break
				}
			}
			rec.mu.Unlock()
			if badErr == nil || !strings.Contains(badErr.Error(), `camera "bad"`) || !strings.Contains(badErr.Error(), tt.wantCall) {
				t.Errorf("offline error = %v, want it to name camera \"bad\" and call %s", badErr, tt.wantCall)
			}
			if tt.wantErr != nil && !errors.Is(badErr, tt.wantErr) {
				t.Errorf("offline error = %v, want it to wrap %v", badErr, tt.wantErr)
			}
			// The good camera carries on.
			rec.waitFor(t, "good online", func() bool { return len(rec.attrs) > 0 && rec.attrs["good/device"] != nil })
			good.SetMotion(true)
			rec.waitFor(t, "good camera's motion", func() bool { return countEvents(rec.events, "video/1", EventMotion, true) == 1 })
			if bad == nil {
				return
			}
			// Healed, the bad camera comes back after its backoff.
			bad.SetFaults(sim.Faults{})
			rec.waitFor(t, "bad back online", func() bool {
				for _, s := range rec.status {
					if s.dev == "bad" && s.online {
						return true
					}
				}
				return false
			})
		})
	}
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count open files: %v", err)
	}
	return len(ents)
}

// TestNoLeakOnFailedConnects connects 1,000 times to cameras that fail
// (nothing listening; a camera that accepts the connection and then
// answers faults) and checks that goroutines and open files come back to
// where they were.
func TestNoLeakOnFailedConnects(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 100
	}
	faulty := onviftest.Start(t, sim.Config{User: "admin", Password: "secret"})
	faulty.SetFaults(sim.Faults{SOAPFault: true})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/onvif/device_service"
	ln.Close()

	settle := func() (int, int) {
		runtime.GC()
		return runtime.NumGoroutine(), openFDs(t)
	}
	g0, f0 := settle()
	ctx := context.Background()
	for i := range n {
		url := closed
		if i%2 == 1 {
			url = faulty.URL()
		}
		k, err := dial(ctx, &Config{URL: url, Username: "admin", Timeout: 5 * time.Second, Poll: time.Minute}, "secret")
		if err == nil {
			k.close()
			t.Fatalf("dial %d to %s succeeded, want a failure", i, url)
		}
	}
	// The server side of the closed connections ends on its own schedule:
	// wait for it (bounded), then compare.
	var g, f int
	for range 200 {
		if g, f = settle(); g <= g0+2 && f <= f0+2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if g > g0+2 || f > f0+2 {
		t.Errorf("after %d failed connects: %d goroutines (was %d), %d open files (was %d)", n, g, g0, f, f0)
	}
}

// TestWrongPassword: a camera that refuses the gateway's credentials,
// with either authentication, gives errors wrapping
// adapters.ErrUnauthorized from Get and Invoke and in the offline
// status, so that the platform gets 401 and the status says why.
func TestWrongPassword(t *testing.T) {
	for _, auth := range []sim.Auth{sim.AuthDigest, sim.AuthUsernameToken} {
		t.Run(string(auth), func(t *testing.T) {
			cam := onviftest.Start(t, sim.Config{User: "admin", Password: "not-the-one", Auth: auth})
			a := newAdapter(t, "cam1", cam.URL(), "")
			if _, err := a.Get(context.Background(), "device", nil); !errors.Is(err, adapters.ErrUnauthorized) {
				t.Errorf("Get = %v, want an error wrapping adapters.ErrUnauthorized", err)
			}
			if _, err := a.Invoke(context.Background(), "device", OpSyncTime, nil); !errors.Is(err, adapters.ErrUnauthorized) {
				t.Errorf("Invoke = %v, want an error wrapping adapters.ErrUnauthorized", err)
			}
			rec := newRecorder()
			runAdapter(t, a, rec)
			rec.waitFor(t, "offline", func() bool { return len(rec.status) > 0 })
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if s := rec.status[0]; s.online || !errors.Is(s.err, adapters.ErrUnauthorized) {
				t.Errorf("Status(%v, %v), want offline with an error wrapping adapters.ErrUnauthorized", s.online, s.err)
			}
		})
	}
}
