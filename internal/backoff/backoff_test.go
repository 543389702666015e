package backoff

import (
	"context"
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
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
				d := Delay(tt.failures, lo, hi)
				if d < tt.min || d > tt.max {
					t.Fatalf("Delay(%d, %s, %s) = %s, want within [%s, %s]", tt.failures, lo, hi, d, tt.min, tt.max)
				}
				seen[d] = true
			}
			if len(seen) < 100 {
				t.Errorf("Delay(%d) gave %d distinct delays in 200 draws, want jitter", tt.failures, len(seen))
			}
		})
	}
}

func TestBackoffSteady(t *testing.T) {
	b := Backoff{Min: 2 * time.Second, Max: time.Minute}
	want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, time.Minute, time.Minute}
	for i, w := range want {
		if got := b.Next(); got != w {
			t.Fatalf("Next() #%d = %s, want %s", i, got, w)
		}
	}
	for range 100 {
		b.Next()
	}
	if got := b.Next(); got != time.Minute {
		t.Errorf("Next() long past the cap = %s, want %s", got, time.Minute)
	}
	b.Reset()
	if got := b.Next(); got != 2*time.Second {
		t.Errorf("Next() after Reset = %s, want %s", got, 2*time.Second)
	}
}

func TestBackoffJitter(t *testing.T) {
	b := Backoff{Min: 500 * time.Millisecond, Max: time.Minute, Jitter: true}
	bounds := []struct{ min, max time.Duration }{
		{500 * time.Millisecond, time.Second},
		{time.Second, 2 * time.Second},
		{2 * time.Second, 4 * time.Second},
	}
	for i, w := range bounds {
		if got := b.Next(); got < w.min || got > w.max {
			t.Fatalf("Next() #%d = %s, want within [%s, %s]", i, got, w.min, w.max)
		}
	}
	b.Reset()
	if got := b.Next(); got < bounds[0].min || got > bounds[0].max {
		t.Errorf("Next() after Reset = %s, want within [%s, %s]", got, bounds[0].min, bounds[0].max)
	}
}

func TestSleep(t *testing.T) {
	if !Sleep(context.Background(), time.Millisecond) {
		t.Error("Sleep(live context, 1ms) = false, want true")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Error("Sleep(ended context, 1h) = true, want false")
	}
}
