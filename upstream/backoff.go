package upstream

import (
	"math/rand/v2"
	"time"
)

// backoff returns the delay before the next attempt after n consecutive
// failures (n ≥ 0): the ceiling doubles from 2·lo up to hi, and the delay is
// drawn uniformly from [ceiling/2, ceiling], so it always lies within
// [lo, hi] and gateways that lost the DAS together do not come back in step.
func backoff(n int, lo, hi time.Duration) time.Duration {
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
