// Package leaktest checks that a test leaves no goroutine behind: Check
// counts the goroutines when a test starts and, when it ends, waits for
// the count to come back down, failing the test with every goroutine's
// stack if it does not.
//
// It counts rather than matches stacks, so tests using it must not run in
// parallel with other tests of the same package (t.Parallel).
package leaktest

import (
	"runtime"
	"testing"
	"time"
)

// Settle bounds how long Check waits, at the end of a test, for the
// goroutines the test started to end. It is a bound for a failure, not a
// speed check.
const Settle = 20 * time.Second

// Check records how many goroutines run now and registers a t.Cleanup
// that waits (up to Settle) for the count to come back to at most that.
// If it does not, the test fails with t.Errorf, showing the count and the
// stacks of all goroutines. Call it before anything that registers a
// cleanup (cleanups run last registered first), so that it runs after the
// cleanups that stop what the test started.
func Check(t testing.TB) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(Settle)
		n := runtime.NumGoroutine()
		for n > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			n = runtime.NumGoroutine()
		}
		if n > before {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("leaktest: %d goroutines at the end, want at most %d as at the start:\n%s", n, before, buf)
		}
	})
}
