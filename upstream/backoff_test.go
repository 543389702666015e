package upstream

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	const lo, hi = time.Second, 5 * time.Minute
	tests := []struct {
		name     string
		failures int
		min, max time.Duration
	}{
		{name: "first retry", failures: 0, min: 1 * time.Second, max: 2 * time.Second},
		{name: "second retry", failures: 1, min: 2 * time.Second, max: 4 * time.Second},
		{name: "fifth retry", failures: 4, min: 16 * time.Second, max: 32 * time.Second},
		{name: "capped", failures: 8, min: 150 * time.Second, max: hi},
		{name: "far past the cap", failures: 1000, min: 150 * time.Second, max: hi},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen := map[time.Duration]bool{}
			for range 200 {
				d := backoff(tt.failures, lo, hi)
				if d < tt.min || d > tt.max {
					t.Fatalf("backoff(%d, %s, %s) = %s, want within [%s, %s]", tt.failures, lo, hi, d, tt.min, tt.max)
				}
				seen[d] = true
			}
			if len(seen) < 100 {
				t.Errorf("backoff(%d) gave %d distinct delays in 200 draws, want jitter", tt.failures, len(seen))
			}
		})
	}
}
