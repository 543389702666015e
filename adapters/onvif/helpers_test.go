package onvif

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/model"
)

// newAdapter builds an adapter for cam through the kind's constructor,
// with the password in a 0600 file.
func newAdapter(t testing.TB, id, url, extra string) *Adapter {
	t.Helper()
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := "url = \"" + url + "\"\nusername = \"admin\"\npassword_file = \"" + pw + "\"\n" + extra
	if !strings.Contains(extra, "timeout") {
		conf += "\ntimeout = \"5s\"\n"
	}
	a, err := New(id, adapters.TOMLDecoder(conf), adapters.Env{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a
}

// recorder is a Sink that keeps what it gets.
type recorder struct {
	mu     sync.Mutex
	events []model.EventOccurrence
	status []statusReport
	attrs  map[string]map[string]model.Value
	wake   chan struct{}
}

type statusReport struct {
	dev    string
	online bool
	err    error
}

func newRecorder() *recorder {
	return &recorder{attrs: map[string]map[string]model.Value{}, wake: make(chan struct{}, 1)}
}

func (r *recorder) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *recorder) Attributes(dev, resource string, values map[string]model.Value) {
	r.mu.Lock()
	r.attrs[dev+"/"+resource] = values
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) Event(dev string, ev model.EventOccurrence) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) Status(dev string, online bool, err error) {
	r.mu.Lock()
	r.status = append(r.status, statusReport{dev, online, err})
	r.mu.Unlock()
	r.poke()
}

// waitFor waits until cond holds (checked on every report), failing the
// test after a generous bound so a broken build does not hang.
func (r *recorder) waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		r.mu.Lock()
		ok := cond()
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.wake:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

// runAdapter runs a until the test ends.
func runAdapter(t testing.TB, a *Adapter, sink adapters.Sink) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, sink) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	})
}

func countEvents(evs []model.EventOccurrence, resource, name string, state any) int {
	n := 0
	for _, e := range evs {
		if e.Resource == resource && e.Event == name && (state == nil || e.Params["state"] == state) {
			n++
		}
	}
	return n
}

// tomlBlock decodes the text of one [[device]] block.
func tomlBlock(text string) adapters.Decoder { return adapters.TOMLDecoder(text) }

var envNone = adapters.Env{}
