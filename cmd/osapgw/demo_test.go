//go:build !nodemo

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestDemo runs the demo for a few seconds: the platform emulator and the
// gateway must authenticate, register and report what they did.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole demo for seconds; skipped with -short")
	}
	var out, errOut bytes.Buffer
	code := dispatch(context.Background(), []string{"demo", "-duration", "16s", "-plain"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("demo exit code = %d; stderr:\n%s", code, errOut.String())
	}
	for _, want := range []string{"registered over MQTT as DevID", "upstream connected", "demo stopped.",
		"attribute.set boiler-1 main.setpoint = 23.5 °C → code 0 ok",
		"ptz.goto_preset preset=1 (Home) → code 0 ok",
		"video/1 snapshot → code 0 ok",
		"cam-gate   onvif   online"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q; got:\n%s", want, out.String())
		}
	}
	if !strings.Contains(out.String(), "waiting, 0 dropped") {
		t.Errorf("demo reports dropped events:\n%s", out.String())
	}
}
