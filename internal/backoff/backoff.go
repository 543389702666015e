// Package backoff paces retries: Sleep waits for a delay unless a context
// ends first, Delay computes an exponential delay with jitter, and Backoff
// counts consecutive failures and yields the delay before each next attempt.
package backoff

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// Sleep waits d or until ctx ends, whichever comes first, and reports
// whether the whole of d passed: false means ctx ended first.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Delay returns the delay before the next attempt after n consecutive
// failures (n ≥ 0): the ceiling doubles from 2·lo up to hi, and the delay
// is drawn uniformly from [ceiling/2, ceiling], so it always lies within
// [lo, hi] and peers that failed together do not come back in step.
// It never fails; lo must be positive and at most hi.
func Delay(n int, lo, hi time.Duration) time.Duration {
	ceiling := hi
	if n < 40 {
		if c := lo << (n + 1); c > 0 && c < hi {
			ceiling = c
		}
	}
	half := ceiling / 2
	d := half + rand.N(half+1)
	return min(max(d, lo), hi)
}

// steady is the delay after n consecutive failures without jitter:
// lo·2ⁿ, capped at hi.
func steady(n int, lo, hi time.Duration) time.Duration {
	if n < 40 {
		if c := lo << n; c > 0 && c < hi {
			return c
		}
	}
	return hi
}

// Backoff counts consecutive failures and yields the delay before each
// next attempt: Min, then doubling up to Max. With Jitter each delay is
// drawn as Delay does (within [Min·2ⁿ, Min·2ⁿ⁺¹], capped at Max), so that
// peers failing together spread out; without it the delays are exactly
// Min·2ⁿ capped at Max. Min must be positive and at most Max.
//
// A Backoff is safe for concurrent use; it must not be copied after first
// use.
type Backoff struct {
	// Min is the first delay, Max the longest.
	Min, Max time.Duration
	// Jitter draws each delay at random, as Delay does.
	Jitter bool

	mu sync.Mutex
	n  int // failures counted since the last Reset
}

// Next counts one more failure and returns the delay to wait before the
// next attempt. It never fails.
func (b *Backoff) Next() time.Duration {
	b.mu.Lock()
	n := b.n
	if b.n < 64 { // past the cap already; do not count for ever
		b.n++
	}
	b.mu.Unlock()
	if b.Jitter {
		return Delay(n, b.Min, b.Max)
	}
	return steady(n, b.Min, b.Max)
}

// Reset forgets the failures counted so far: the next delay is the first
// one again. Call it after an attempt that succeeded.
func (b *Backoff) Reset() {
	b.mu.Lock()
	b.n = 0
	b.mu.Unlock()
}
