package platform

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/osapgw/osapgw/osap"
)

// benchLBS runs an LBS with a file-backed registry on 127.0.0.1 for the
// benchmark and returns a client of device GW1.
func benchLBS(b *testing.B) *osap.Client {
	b.Helper()
	reg, err := NewRegistry(filepath.Join(b.TempDir(), "state.json"))
	if err != nil {
		b.Fatal(err)
	}
	reg.Add("GW1", "ABCDEF")
	quiet := slog.New(slog.DiscardHandler)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := NewLBS(LBSConfig{Registry: reg, Logger: quiet, DAS: []AccessService{&fakeDAS{url: "mqtt://127.0.0.1:1883"}}})
	done := make(chan error, 1)
	go func() { done <- l.Serve(ctx, ln) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("Serve = %v", err)
		}
	})
	c, err := osap.NewClient(osap.ClientConfig{Addr: ln.Addr().String(), Serial: "GW1", VerificationCode: "ABCDEF", Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "auths/s")
}

// benchParallelism is how many gateways per CPU authenticate at once: a
// fleet, not one device in a loop, is what loads an LBS.
const benchParallelism = 4

// BenchmarkFirstAuth measures full first authentications (0x1/0x2,
// 0x7/0x8/0x9, 0xA/0xB, a new TCP connection each, the registry synced to
// disk for each), client and LBS in one process sharing the CPUs.
func BenchmarkFirstAuth(b *testing.B) {
	c := benchLBS(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Authenticate(ctx, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportRate(b)
}

// BenchmarkReauth measures re-authentications (0x4/0x6, 0xA/0xB on a new
// TCP connection), each refreshing the session key in the state file.
func BenchmarkReauth(b *testing.B) {
	c := benchLBS(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cr, err := c.Authenticate(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Authenticate(ctx, &cr); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportRate(b)
}
