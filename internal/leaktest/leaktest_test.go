package leaktest

import (
	"strings"
	"sync"
	"testing"
)

// recorder is a testing.TB that records failures and runs its cleanups
// when asked, so that Check's verdict can be examined.
type recorder struct {
	testing.TB
	mu       sync.Mutex
	errors   []string
	cleanups []func()
}

func (r *recorder) Helper()          {}
func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }
func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, format)
}

func (r *recorder) end() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

func TestCheckPassesWhenGoroutinesEnd(t *testing.T) {
	r := &recorder{TB: t}
	Check(r)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { <-stop })
	r.Cleanup(func() { close(stop); wg.Wait() })
	r.end()
	if len(r.errors) != 0 {
		t.Errorf("Check reported %q, want nothing", r.errors)
	}
}

func TestCheckFailsOnLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("waits the whole Settle bound")
	}
	r := &recorder{TB: t}
	Check(r)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// Three leaks, not one: Check counts goroutines, and a goroutine of
	// the test framework still ending from the test before (seen under
	// -race -count=10) would make up for a single one.
	for range 3 {
		wg.Go(func() { <-stop })
	}
	defer wg.Wait()
	defer close(stop)
	r.end()
	if len(r.errors) != 1 || !strings.Contains(r.errors[0], "goroutines at the end") {
		t.Errorf("Check reported %q, want one leak", r.errors)
	}
}
