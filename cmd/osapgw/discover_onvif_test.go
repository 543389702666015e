package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// These cases stop at the flags: no probe is sent (the real probe is
// tested in adapters/onvif, inside a private network namespace).
func TestDiscoverONVIFFlags(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{name: "help", args: []string{"discover", "onvif", "-h"}, wantCode: 0, wantStderr: "-iface"},
		{name: "zero timeout", args: []string{"discover", "onvif", "-timeout", "0s"}, wantCode: 2, wantStderr: "usage: osapgw discover onvif"},
		{name: "extra argument", args: []string{"discover", "onvif", "eth0"}, wantCode: 2, wantStderr: "usage: osapgw discover onvif"},
		{name: "unknown interface", args: []string{"discover", "onvif", "-iface", "no-such-if0"}, wantCode: 1, wantStderr: `interface "no-such-if0"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := dispatch(context.Background(), tt.args, &out, &errOut)
			if code != tt.wantCode || !strings.Contains(errOut.String(), tt.wantStderr) {
				t.Errorf("dispatch(%q) = %d, stderr %q; want %d and %q", tt.args, code, errOut.String(), tt.wantCode, tt.wantStderr)
			}
		})
	}
}
