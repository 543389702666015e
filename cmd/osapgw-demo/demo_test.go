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
	code := run(context.Background(), []string{"-duration", "16s", "-plain"}, &out, &errOut)
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

func TestRunFlags(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{name: "help", args: []string{"-h"}, wantCode: 0, wantStderr: "usage: osapgw-demo"},
		{name: "unknown flag", args: []string{"-x"}, wantCode: 2, wantStderr: "usage: osapgw-demo"},
		{name: "argument", args: []string{"now"}, wantCode: 2, wantStderr: "usage: osapgw-demo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(context.Background(), tt.args, &out, &errOut)
			if code != tt.wantCode {
				t.Errorf("run(%q) = %d, want %d (stderr %q)", tt.args, code, tt.wantCode, errOut.String())
			}
			if !strings.Contains(errOut.String(), tt.wantStderr) {
				t.Errorf("run(%q) stderr = %q, want it to contain %q", tt.args, errOut.String(), tt.wantStderr)
			}
		})
	}
}
