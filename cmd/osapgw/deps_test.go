package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestDaemonLinksOnlyTheDaemon: osapgw, as `go build ./cmd/osapgw` and
// `go install` build it, links none of the demo's platform emulator and
// MQTT broker, the simulators or the load-test kind; those live in
// cmd/osapgw-demo and behind -tags synthetic. An import that pulls one of
// them back into the daemon fails here, naming it.
func TestDaemonLinksOnlyTheDaemon(t *testing.T) {
	const mod = "github.com/osapgw/osapgw/"
	// The daemon's parts, so that the test fails if go list lists nothing
	// or something else.
	daemon := []string{mod + "gateway", mod + "upstream", mod + "store", mod + "bridge",
		mod + "adapters/modbus", mod + "adapters/onvif", "github.com/eclipse/paho.mqtt.golang", "go.etcd.io/bbolt"}
	tests := []struct {
		name string
		tags string
		// forbidden are packages, each with the packages under it.
		forbidden []string
		want      []string
	}{
		{
			name:      "default",
			forbidden: []string{mod + "osap/platform", "github.com/mochi-mqtt", mod + "sim", mod + "adapters/synthetic"},
			want:      daemon,
		},
		{
			name:      "tags synthetic",
			tags:      "synthetic",
			forbidden: []string{mod + "osap/platform", "github.com/mochi-mqtt", mod + "sim"},
			want:      append(slices.Clone(daemon), mod+"adapters/synthetic"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", "-tags="+tt.tags, ".").Output()
			if err != nil {
				stderr := ""
				if ee, ok := err.(*exec.ExitError); ok {
					stderr = string(ee.Stderr)
				}
				t.Fatalf("go list -deps -tags=%q ./cmd/osapgw: %v\n%s", tt.tags, err, stderr)
			}
			deps := strings.Fields(string(out))
			for _, p := range deps {
				for _, f := range tt.forbidden {
					if p == f || strings.HasPrefix(p, f+"/") {
						t.Errorf("osapgw (-tags=%q) links %s, which is not the daemon's (%s...)", tt.tags, p, f)
					}
				}
			}
			for _, w := range tt.want {
				if !slices.Contains(deps, w) {
					t.Errorf("osapgw (-tags=%q) does not link %s; go list -deps printed:\n%s", tt.tags, w, out)
				}
			}
		})
	}
}
