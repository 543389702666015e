package delivery

import (
	"context"
	"encoding/binary"
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/osapgw/osapgw/model"
	"github.com/osapgw/osapgw/osap"
	"github.com/osapgw/osapgw/store"
)

// published is one event.report handed to the fake session, as the bytes
// the session would seal.
type published struct {
	h    osap.Header
	kind string
	qos  byte
	body []byte // the application payload, as osap.EncodeMessage writes it
}

// fakeSession records what is published, encoded as the real session
// encodes it. With hold set it keeps the completions until release, like
// a platform slow to PUBACK; fail makes the next completion an error.
type fakeSession struct {
	mu        sync.Mutex
	connected bool
	hold      bool
	msgs      []published
	pending   []func(error)
}

var errNotConnected = errors.New("not connected")

func (f *fakeSession) Publish(kind string, h osap.Header, body any, qos byte, done func(error)) error {
	plain, err := osap.EncodeMessage(h, body)
	if err != nil {
		return err
	}
	gen := int(binary.BigEndian.Uint16(plain))
	f.mu.Lock()
	if !f.connected {
		f.mu.Unlock()
		return errNotConnected
	}
	f.msgs = append(f.msgs, published{h: h, kind: kind, qos: qos, body: plain[2+gen:]})
	hold := f.hold
	if hold {
		f.pending = append(f.pending, done)
	}
	f.mu.Unlock()
	if !hold {
		done(nil)
	}
	return nil
}

func (f *fakeSession) Connected() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.connected
}

func (f *fakeSession) set(connected, hold bool) {
	f.mu.Lock()
	f.connected, f.hold = connected, hold
	f.mu.Unlock()
}

// complete calls the held completions with err.
func (f *fakeSession) complete(err error) {
	f.mu.Lock()
	p := f.pending
	f.pending = nil
	f.mu.Unlock()
	for _, done := range p {
		done(err)
	}
}

func (f *fakeSession) sent() []published {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.msgs)
}

func (f *fakeSession) forget() {
	f.mu.Lock()
	f.msgs = nil
	f.mu.Unlock()
}

func ids(ps []published) []uint64 {
	var out []uint64
	for _, p := range ps {
		id, _ := strconv.ParseUint(p.h.ID, 10, 64)
		out = append(out, id)
	}
	return out
}

// waitFor polls cond until it holds, failing the test after a bound. It is
// a synchronisation helper, not a timing assertion.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

type harness struct {
	s   *Stream
	st  *store.Store
	up  *fakeSession
	ob  Outbox // what the stream reads; st unless a test wraps it
	run func() // starts Run; the cleanup stops it
}

func openStore(t *testing.T, opts store.Options) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "state", "osapgw.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("store Close() = %v", err)
		}
	})
	return st
}

// newHarness builds a stream over st (through wrap, when given) and a
// fake session; call h.run to start it.
func newHarness(t *testing.T, cfg Config, st *store.Store, wrap func(Outbox) Outbox) *harness {
	t.Helper()
	h := &harness{st: st, up: &fakeSession{}, ob: Outbox(st)}
	if wrap != nil {
		h.ob = wrap(st)
	}
	h.s = New(cfg, h.ob)
	h.run = func() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- h.s.Run(ctx, h.up) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run() = %v", err)
			}
		})
	}
	return h
}

func (h *harness) pending(t *testing.T) int {
	t.Helper()
	recs, err := h.st.Pending(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return len(recs)
}

func tick(i int, at time.Time) model.EventOccurrence {
	return model.EventOccurrence{Resource: "main", Event: "overheat", Params: map[string]any{"n": i}, At: at}
}
