package modbus

import (
	"strings"
	"testing"
	"time"

	"github.com/osapgw/osapgw/adapters"
)

// TestProbeDelay: the waits before the probes of an offline unit, for the
// default skip_for, an old configuration's skip_for = "60s", and a
// skip_for under FirstProbe.
func TestProbeDelay(t *testing.T) {
	tests := []struct {
		name  string
		limit time.Duration
		n     int
		want  time.Duration
	}{
		{name: "default: first probe", limit: DefaultSkipFor, n: 0, want: time.Second},
		{name: "default: second", limit: DefaultSkipFor, n: 1, want: 2 * time.Second},
		{name: "default: third at the cap", limit: DefaultSkipFor, n: 2, want: 4 * time.Second},
		{name: "default: stays at the cap", limit: DefaultSkipFor, n: 3, want: 4 * time.Second},
		{name: "default: long outage", limit: DefaultSkipFor, n: 10_000, want: 4 * time.Second},
		{name: "default: negative count", limit: DefaultSkipFor, n: -1, want: time.Second},
		{name: "60s: first", limit: time.Minute, n: 0, want: time.Second},
		{name: "60s: fifth", limit: time.Minute, n: 4, want: 16 * time.Second},
		{name: "60s: seventh capped", limit: time.Minute, n: 6, want: time.Minute},
		{name: "under FirstProbe", limit: 200 * time.Millisecond, n: 0, want: 200 * time.Millisecond},
		{name: "under FirstProbe later", limit: 200 * time.Millisecond, n: 5, want: 200 * time.Millisecond},
		{name: "odd cap", limit: 3 * time.Second, n: 2, want: 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := probeDelay(tt.n, tt.limit); got != tt.want {
				t.Errorf("probeDelay(%d, %v) = %v, want %v", tt.n, tt.limit, got, tt.want)
			}
		})
	}
}

// TestProbeSchedule: with the defaults, a unit that comes back on the wire
// at any moment of a long outage is probed within skip_for of its return
// (probes start at most skip_for apart), and a dead unit is probed at
// most once per FirstProbe.
func TestProbeSchedule(t *testing.T) {
	var starts []time.Duration // since the unit went offline
	at := time.Duration(0)
	for n := 0; at < 2*time.Minute; n++ {
		at += probeDelay(n, DefaultSkipFor)
		starts = append(starts, at)
	}
	want := []time.Duration{1 * time.Second, 3 * time.Second, 7 * time.Second, 11 * time.Second}
	for i, w := range want {
		if starts[i] != w {
			t.Errorf("probe %d starts at %v after offline, want %v", i, starts[i], w)
		}
	}
	for i := 1; i < len(starts); i++ {
		gap := starts[i] - starts[i-1]
		if gap > DefaultSkipFor || gap < FirstProbe {
			t.Errorf("probes %d and %d are %v apart, want %v to %v", i-1, i, gap, FirstProbe, DefaultSkipFor)
		}
	}
}

// TestProbeSettings: skip_for and point_retry as a block gives them, or
// not; an old block's skip_for = "60s" keeps its points' retry.
func TestProbeSettings(t *testing.T) {
	tests := []struct {
		name           string
		keys           string
		wantSkipFor    time.Duration
		wantPointRetry time.Duration
		wantErr        string
	}{
		{name: "defaults", wantSkipFor: 4 * time.Second, wantPointRetry: time.Minute},
		{name: "old skip_for", keys: `skip_for = "60s"`, wantSkipFor: time.Minute, wantPointRetry: time.Minute},
		{name: "short skip_for sets the point retry too", keys: `skip_for = "2s"`, wantSkipFor: 2 * time.Second, wantPointRetry: 2 * time.Second},
		{name: "both", keys: "skip_for = \"10s\"\npoint_retry = \"5m\"", wantSkipFor: 10 * time.Second, wantPointRetry: 5 * time.Minute},
		{name: "point_retry alone", keys: `point_retry = "30s"`, wantSkipFor: 4 * time.Second, wantPointRetry: 30 * time.Second},
		{name: "negative point_retry", keys: `point_retry = "-1s"`, wantErr: "point_retry: -1s is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf := "url = \"rtu:///dev/ttyUSB0\"\nunit = 1\n" + tt.keys + `
[[attribute]]
name = "temperature"
table = "input"
address = 0
`
			a, err := New("d", adaptersTOML(conf), adapters.Env{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New(%s) = %v, want an error containing %q", tt.keys, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%s) = %v", tt.keys, err)
			}
			if a.dev.skipFor != tt.wantSkipFor || a.dev.pointRetry != tt.wantPointRetry {
				t.Errorf("New(%s): skip_for %v, point_retry %v, want %v, %v", tt.keys, a.dev.skipFor, a.dev.pointRetry, tt.wantSkipFor, tt.wantPointRetry)
			}
		})
	}
}
