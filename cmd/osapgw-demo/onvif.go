package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/osapgw/osapgw/osap"
	simonvif "github.com/osapgw/osapgw/sim/onvif"
)

// The demo's camera: one simulated ONVIF camera with Digest auth, a PTZ
// head and motion that toggles every few seconds.
func init() {
	demoParts = append(demoParts, demoPart{
		name:  "onvif",
		start: startDemoCamera,
		actions: []demoAction{
			{title: "operation.invoke cam-gate ptz/1 ptz.goto_preset preset=1 (Home)", dev: "cam-gate", typ: osap.TypeOperationInvoke,
				body: osap.OperationInvoke{Resource: "ptz/1", Operation: "ptz.goto_preset", Input: map[string]any{"preset": "1"}}},
			{title: "operation.invoke cam-gate video/1 snapshot", dev: "cam-gate", typ: osap.TypeOperationInvoke,
				body: osap.OperationInvoke{Resource: "video/1", Operation: "snapshot"}},
		},
	})
}

const demoCameraPassword = "demo-camera-pass"

func startDemoCamera(ctx context.Context, wg *sync.WaitGroup, log *slog.Logger) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	cam := simonvif.New(simonvif.Config{Name: "DemoCam PTZ", Serial: "CAM-DEMO-01", UniqueSnapshots: true, User: "admin", Password: demoCameraPassword,
		Auth: simonvif.AuthDigest, MotionEvery: 4 * time.Second})
	// Set the address now: Serve sets it too, but on its own goroutine,
	// which may not have run when the configuration below is written.
	cam.SetBase("http://" + ln.Addr().String())
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := cam.Serve(ctx, ln); err != nil && ctx.Err() == nil {
			log.Error("simulated camera stopped", "err", err)
		}
	}()
	dir, err := os.MkdirTemp("", "osapgw-demo-cam-")
	if err != nil {
		return "", err
	}
	context.AfterFunc(ctx, func() { os.RemoveAll(dir) })
	pw := filepath.Join(dir, "cam-gate.password")
	if err := os.WriteFile(pw, []byte(demoCameraPassword), 0o600); err != nil {
		return "", err
	}
	return fmt.Sprintf(`
[[device]]
id = "cam-gate"
kind = "onvif"
name = "Gate camera"
url = %q
username = "admin"
password_file = %q
timeout = "5s"
poll = "5s"
events = true
snapshot_on = ["motion"]
`, cam.URL(), pw), nil
}
