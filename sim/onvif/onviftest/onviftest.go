// Package onviftest runs simulated ONVIF cameras (package sim/onvif) for
// tests, on 127.0.0.1, for the length of one test.
package onviftest

import (
	"context"
	"net"
	"sync"
	"testing"

	sim "github.com/osapgw/osapgw/sim/onvif"
)

// Start serves a simulated camera configured by cfg on a free port of
// 127.0.0.1 until the test ends; a t.Cleanup stops it and waits for it.
// It ends the test with t.Fatal if no port can be had.
func Start(t testing.TB, cfg sim.Config) *sim.Camera {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("onviftest: listen: %v", err)
	}
	cam := sim.New(cfg)
	cam.SetBase("http://" + ln.Addr().String())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = cam.Serve(ctx, ln) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return cam
}
