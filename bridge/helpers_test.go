package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/delivery"
	"github.com/osapgw/osapgw/internal/leaktest"
	"github.com/osapgw/osapgw/model"
	"github.com/osapgw/osapgw/osap"
	"github.com/osapgw/osapgw/store"
)

// sent is one message the bridge handed to the upstream.
type sent struct {
	kind string
	h    osap.Header
	body json.RawMessage
	qos  byte
}

// fakeUpstream records what is published. With hold set it keeps QoS 1
// completions until release is called, like a platform slow to PUBACK.
type fakeUpstream struct {
	mu        sync.Mutex
	connected bool
	hold      bool
	msgs      []sent
	pending   []func(error)
	changed   chan struct{}
	// stall, when set, holds attribute reports in Publish until closed,
	// as paho's Publish does when its write queue is full; stalled counts
	// the calls it holds now.
	stall   chan struct{}
	stalled int
}

func newFakeUpstream() *fakeUpstream { return &fakeUpstream{changed: make(chan struct{}, 1)} }

var errNotConnected = errors.New("not connected")

func (u *fakeUpstream) Publish(kind string, h osap.Header, body any, qos byte, done func(error)) error {
	u.mu.Lock()
	stall := u.stall
	u.mu.Unlock()
	if stall != nil && h.Type == osap.TypeAttributeReport {
		u.mu.Lock()
		u.stalled++
		u.mu.Unlock()
		<-stall
		u.mu.Lock()
		u.stalled--
		u.mu.Unlock()
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	u.mu.Lock()
	if !u.connected {
		u.mu.Unlock()
		return errNotConnected
	}
	u.msgs = append(u.msgs, sent{kind, h, b, qos})
	hold := u.hold && qos == 1
	if hold {
		u.pending = append(u.pending, done)
	}
	u.mu.Unlock()
	select {
	case u.changed <- struct{}{}:
	default:
	}
	if !hold {
		done(nil)
	}
	return nil
}

func (u *fakeUpstream) Connected() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.connected
}

func (u *fakeUpstream) setConnected(c bool) {
	u.mu.Lock()
	u.connected = c
	u.mu.Unlock()
}

// stalledReports returns how many attribute reports stall holds in Publish.
func (u *fakeUpstream) stalledReports() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.stalled
}

func (u *fakeUpstream) release() {
	u.mu.Lock()
	p := u.pending
	u.pending = nil
	u.mu.Unlock()
	for _, done := range p {
		done(nil)
	}
}

func (u *fakeUpstream) messages(typ string) []sent {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []sent
	for _, m := range u.msgs {
		if typ == "" || m.h.Type == typ {
			out = append(out, m)
		}
	}
	return out
}

// waitFor polls cond until it holds or the test's patience ends. It is a
// synchronisation helper, not a timing assertion.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fakeAdapter is a sub-device with a writable setpoint, a read-only
// temperature and a reset operation.
type fakeAdapter struct {
	id     string
	mu     sync.Mutex
	sink   adapters.Sink
	set    map[string]model.Value
	setErr error
	block  bool // Set blocks until its context ends
	// getBad: Get answers these attributes bad, with these reasons.
	getBad  map[string]string
	sets    int // calls of Set
	gets    int // calls of Get
	running chan struct{}
	// stopDelay is how long Run takes to return once its context ends;
	// startedAt and returnedAt record when Run started and returned.
	stopDelay             time.Duration
	startedAt, returnedAt time.Time
}

func newFakeAdapter(id string) *fakeAdapter {
	return &fakeAdapter{id: id, running: make(chan struct{})}
}

func ptr(f float64) *float64 { return &f }

func (a *fakeAdapter) Describe(context.Context) (model.Device, error) {
	return model.Device{ID: a.id, Kind: "fake", Resources: []model.Resource{{Name: "main", Areas: []model.Area{{
		Name: "environment",
		Attributes: []model.Attribute{
			{Name: "temperature", Type: model.TypeFloat, Unit: "°C"},
			{Name: "setpoint", Type: model.TypeFloat, Writable: true, Min: ptr(0), Max: ptr(100)},
		},
		Operations: []model.Operation{{Name: "reset", Inputs: []model.Param{{Name: "mode", Type: model.TypeInt, Required: true}}, Outputs: []model.Param{{Name: "ok", Type: model.TypeBool}}}},
		Events:     []model.EventType{{Name: "overheat"}},
	}}}}}, nil
}

func (a *fakeAdapter) Run(ctx context.Context, sink adapters.Sink) error {
	a.mu.Lock()
	a.sink = sink
	a.startedAt = time.Now()
	a.mu.Unlock()
	sink.Status(a.id, true, nil)
	close(a.running)
	<-ctx.Done()
	time.Sleep(a.stopDelay)
	a.mu.Lock()
	a.returnedAt = time.Now()
	a.mu.Unlock()
	return nil
}

func (a *fakeAdapter) Set(ctx context.Context, resource string, values map[string]model.Value) error {
	a.mu.Lock()
	a.sets++
	a.mu.Unlock()
	if a.block {
		<-ctx.Done()
		return ctx.Err()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.setErr != nil {
		return a.setErr
	}
	a.set = values
	return nil
}

func (a *fakeAdapter) Get(_ context.Context, resource string, names []string) (map[string]model.Value, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.gets++
	if len(names) == 0 {
		names = []string{"temperature", "setpoint"}
	}
	at := time.UnixMilli(1000)
	out := map[string]model.Value{}
	for _, n := range names {
		switch {
		case a.getBad[n] != "":
			out[n] = model.BadValue(at, a.getBad[n])
		case n == "temperature":
			out[n] = model.Value{V: 21.5, At: at}
		default:
			out[n] = model.Value{V: 42.0, At: at}
		}
	}
	return out, nil
}

func (a *fakeAdapter) Invoke(_ context.Context, resource, op string, in map[string]any) (map[string]any, error) {
	return map[string]any{"ok": true, "mode": in["mode"]}, nil
}

type harness struct {
	b      *Bridge
	up     *fakeUpstream
	st     *store.Store
	cancel context.CancelFunc
	done   chan error
	devs   map[string]*fakeAdapter

	stopOnce sync.Once
	runErr   error // what Run returned, once stop returned
}

// stop ends Run and waits for it to return; the test's cleanup calls it
// too, so a test may stop the bridge early.
func (h *harness) stop() error {
	h.stopOnce.Do(func() {
		h.cancel()
		h.runErr = <-h.done
	})
	return h.runErr
}

func spec(a *fakeAdapter, hash string) Spec {
	return Spec{ID: a.id, Kind: "fake", Hash: hash, Build: func() (adapters.Adapter, error) { return a, nil }}
}

func newHarness(t *testing.T, cfg Config, ids ...string) *harness {
	t.Helper()
	leaktest.Check(t)
	st, err := store.Open(filepath.Join(t.TempDir(), "state", "osapgw.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{up: newFakeUpstream(), st: st, done: make(chan error, 1), devs: map[string]*fakeAdapter{}}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 2 * time.Second
	}
	h.b = New(cfg, delivery.New(delivery.Config{}, st), st)
	h.b.SetUpstream(h.up)
	var specs []Spec
	for _, id := range ids {
		a := newFakeAdapter(id)
		h.devs[id] = a
		specs = append(specs, spec(a, "v1"))
	}
	h.b.Apply(specs)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.b.Run(ctx) }()
	for _, a := range h.devs {
		<-a.running
	}
	t.Cleanup(func() {
		if err := h.stop(); err != nil {
			t.Errorf("Run() = %v", err)
		}
		if err := st.Close(); err != nil {
			t.Errorf("store Close() = %v", err)
		}
	})
	return h
}

// replyTo waits for the reply to the downlink request id and returns it.
func (h *harness) replyTo(t *testing.T, id string) sent {
	t.Helper()
	var reply sent
	waitFor(t, "the reply to "+id, func() bool {
		for _, m := range h.up.messages(osap.TypeReply) {
			if m.h.ID == id {
				reply = m
				return true
			}
		}
		return false
	})
	return reply
}

func (h *harness) connect() {
	h.up.setConnected(true)
	h.b.Connected(context.Background())
}

func eventIDs(msgs []sent) []uint64 {
	var ids []uint64
	for _, m := range msgs {
		id, _ := strconv.ParseUint(m.h.ID, 10, 64)
		ids = append(ids, id)
	}
	return ids
}
