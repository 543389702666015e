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
	code := dispatch(context.Background(), []string{"demo", "-duration", "8s", "-plain"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("demo exit code = %d; stderr:\n%s", code, errOut.String())
	}
	for _, want := range []string{"registered over MQTT as DevID", "upstream connected", "demo stopped."} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q; got:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "0 dropped") == false {
		t.Errorf("demo reports dropped events:\n%s", out.String())
	}
}
