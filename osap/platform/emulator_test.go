package platform

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/osapgw/osapgw/internal/leaktest"
)

// TestEmulatorStopStartDAS stops and restarts a DAS through Run, and checks
// that requests after Run has returned do nothing and do not block.
func TestEmulatorStopStartDAS(t *testing.T) {
	leaktest.Check(t)
	emu, err := NewEmulator(EmulatorConfig{StateDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	ran := make(chan error, 1)
	go func() { ran <- emu.Run(runCtx) }()

	addr := emu.DAS[0].Addr()
	serving := func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	waitFor(t, "the DAS to serve", serving)

	if err := emu.StopDAS(ctx, 0); err != nil {
		t.Fatalf("StopDAS(0) = %v, want nil", err)
	}
	if serving() {
		t.Fatalf("DAS at %s accepts connections after StopDAS", addr)
	}
	if err := emu.StopDAS(ctx, 0); err != nil {
		t.Fatalf("StopDAS(0) again = %v, want nil", err)
	}
	if err := emu.StartDAS(ctx, 0); err != nil {
		t.Fatalf("StartDAS(0) = %v, want nil", err)
	}
	waitFor(t, "the DAS to serve again", serving)
	if err := emu.StartDAS(ctx, 1); err == nil {
		t.Errorf("StartDAS(1) with one DAS = nil, want an error")
	}

	stop()
	if err := <-ran; err != nil {
		t.Fatalf("Run() = %v, want nil", err)
	}
	if err := emu.StopDAS(ctx, 0); err != nil {
		t.Errorf("StopDAS(0) after Run returned = %v, want nil", err)
	}
	if err := emu.StartDAS(ctx, 0); err != nil {
		t.Errorf("StartDAS(0) after Run returned = %v, want nil", err)
	}
	if serving() {
		t.Errorf("DAS at %s accepts connections after Run returned", addr)
	}
}
