package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

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

func TestEventsBufferedWhileOfflineThenDeliveredInOrder(t *testing.T) {
	h := newHarness(t, Config{}, "boiler-1")
	sink := h.b
	t0 := time.UnixMilli(time.Now().Add(-time.Hour).UnixMilli())
	for i := range 10 {
		sink.Event("boiler-1", model.EventOccurrence{Resource: "main", Event: "overheat", Params: map[string]any{"n": i}, At: t0.Add(time.Duration(i) * time.Second)})
	}
	if got := len(h.up.messages(osap.TypeEventReport)); got != 0 {
		t.Fatalf("%d events published while offline, want 0", got)
	}
	recs, err := h.st.Pending(0, 100)
	if err != nil || len(recs) != 10 {
		t.Fatalf("outbox holds %d events (%v), want 10", len(recs), err)
	}
	h.connect()
	waitFor(t, "10 event reports", func() bool { return len(h.up.messages(osap.TypeEventReport)) >= 10 })
	evs := h.up.messages(osap.TypeEventReport)
	ids := eventIDs(evs)
	if !slices.IsSorted(ids) || len(ids) != 10 {
		t.Fatalf("event ids = %v, want 10 increasing", ids)
	}
	for i, m := range evs {
		var rep osap.EventReport
		if err := json.Unmarshal(m.body, &rep); err != nil {
			t.Fatal(err)
		}
		ev, err := rep.Occurrence()
		if err != nil {
			t.Fatal(err)
		}
		if want := t0.Add(time.Duration(i) * time.Second); !ev.At.Equal(want) || m.h.TS != want.UnixMilli() {
			t.Errorf("event %d captured at %v (header ts %d), want %v", i, ev.At, m.h.TS, want)
		}
		if m.h.Dev != "boiler-1" || m.qos != 1 || m.kind != osap.KindEvent {
			t.Errorf("event %d sent as %+v qos %d on %q", i, m.h, m.qos, m.kind)
		}
	}
	waitFor(t, "the outbox to empty", func() bool {
		recs, _ := h.st.Pending(0, 100)
		return len(recs) == 0
	})
}

func TestTopologyBatches(t *testing.T) {
	var ids []string
	for i := range 40 {
		ids = append(ids, fmt.Sprintf("dev-%02d", i))
	}
	h := newHarness(t, Config{}, ids...)
	h.connect()
	adds := h.up.messages(osap.TypeTopoAdd)
	if len(adds) != 2 {
		t.Fatalf("%d topo.add messages for 40 devices, want 2 (batches of 30)", len(adds))
	}
	var n int
	for _, m := range adds {
		var body osap.TopoAdd
		if err := json.Unmarshal(m.body, &body); err != nil {
			t.Fatal(err)
		}
		if len(body.Devices) > 30 {
			t.Errorf("a topo.add carries %d devices, over 30", len(body.Devices))
		}
		n += len(body.Devices)
		if body.Devices[0].Resources[0].Areas[0].Attributes[1].Name != "setpoint" {
			t.Errorf("topo.add lacks the model: %s", m.body)
		}
	}
	if n != 40 {
		t.Errorf("topo.add announced %d devices, want 40", n)
	}
	online := h.up.messages(osap.TypeSubOnline)
	if len(online) != 1 {
		t.Fatalf("%d sub.online messages, want 1", len(online))
	}
}

func TestAttributesKeptWhileOfflineSentOnce(t *testing.T) {
	h := newHarness(t, Config{}, "boiler-1")
	for i := range 5 {
		h.b.Attributes("boiler-1", "main", map[string]model.Value{"temperature": {V: float64(20 + i), At: time.UnixMilli(int64(1000 + i))}})
	}
	h.connect()
	reps := h.up.messages(osap.TypeAttributeReport)
	if len(reps) != 1 {
		t.Fatalf("%d attribute reports after reconnect, want 1 (the newest only)", len(reps))
	}
	var body osap.AttributeReport
	if err := json.Unmarshal(reps[0].body, &body); err != nil {
		t.Fatal(err)
	}
	if v := body.Values["temperature"]; v.V != int64(24) && v.V != 24.0 {
		t.Fatalf("reported %v, want the newest value 24", v.V)
	}
	// Live values go straight up, through the report queue.
	h.b.Attributes("boiler-1", "main", map[string]model.Value{"temperature": {V: 30.0, At: time.UnixMilli(2000)}})
	waitFor(t, "the live report", func() bool { return len(h.up.messages(osap.TypeAttributeReport)) >= 2 })
	if got := len(h.up.messages(osap.TypeAttributeReport)); got != 2 {
		t.Fatalf("%d attribute reports, want 2", got)
	}
	h.up.setConnected(false)
	h.b.Disconnected(nil)
	h.connect()
	if got := len(h.up.messages(osap.TypeAttributeReport)); got != 2 {
		t.Fatalf("%d attribute reports after an idle reconnect, want still 2 (nothing kept twice)", got)
	}
}

func TestAttributesWaitInMemoryThenInTheStore(t *testing.T) {
	h := newHarness(t, Config{KeepValuesAfter: 50 * time.Millisecond}, "boiler-1")
	// Offline: the report waits in the queue, and no sooner than
	// KeepValuesAfter its values are written to the store.
	h.b.Attributes("boiler-1", "main", map[string]model.Value{"temperature": {V: 21.5, At: time.UnixMilli(1000)}})
	waitFor(t, "the value in the store", func() bool {
		vals, err := h.st.LastValues("boiler-1")
		if err != nil {
			t.Fatal(err)
		}
		v, ok := vals["main"]["temperature"]
		return ok && v.V == 21.5
	})
	if n := len(h.b.reports.take()); n != 0 {
		t.Fatalf("%d reports still queued after they were kept in the store, want 0", n)
	}
	// Connected: the store's values go up, once.
	h.connect()
	waitFor(t, "the kept report", func() bool { return len(h.up.messages(osap.TypeAttributeReport)) == 1 })
	var body osap.AttributeReport
	if err := json.Unmarshal(h.up.messages(osap.TypeAttributeReport)[0].body, &body); err != nil {
		t.Fatal(err)
	}
	if v := body.Values["temperature"]; v.V != 21.5 {
		t.Fatalf("reported %v, want 21.5", v.V)
	}
}

// TestKeptValuesGoUpBeforeQueuedOnes: the session is up before Connected
// runs; a report queued then waits for Connected, which sends what the
// store kept first and the newer queued values after, all before it
// returns.
func TestKeptValuesGoUpBeforeQueuedOnes(t *testing.T) {
	h := newHarness(t, Config{KeepValuesAfter: 50 * time.Millisecond}, "boiler-1")
	h.b.Attributes("boiler-1", "main", map[string]model.Value{"temperature": {V: 21.0, At: time.UnixMilli(1000)}})
	waitFor(t, "the value in the store", func() bool {
		vals, err := h.st.LastValues("boiler-1")
		if err != nil {
			t.Fatal(err)
		}
		_, ok := vals["main"]["temperature"]
		return ok
	})
	h.up.setConnected(true)
	h.b.Attributes("boiler-1", "main", map[string]model.Value{"temperature": {V: 22.0, At: time.UnixMilli(2000)}})
	h.b.Connected(context.Background())
	var got []any
	for _, m := range h.up.messages(osap.TypeAttributeReport) {
		var body osap.AttributeReport
		if err := json.Unmarshal(m.body, &body); err != nil {
			t.Fatal(err)
		}
		v, err := model.Coerce(model.TypeFloat, body.Values["temperature"].V, nil, nil)
		if err != nil {
			t.Fatalf("reported temperature %v: %v", body.Values["temperature"].V, err)
		}
		got = append(got, v)
	}
	if want := []any{21.0, 22.0}; !slices.Equal(got, want) {
		t.Fatalf("temperatures reported once Connected returned = %v, want %v (the kept value, then the newer queued one)", got, want)
	}
}

func TestAttributesRequeuedWhenTheSessionDrops(t *testing.T) {
	h := newHarness(t, Config{KeepValuesAfter: time.Hour}, "boiler-1")
	h.connect()
	stall := make(chan struct{})
	h.up.mu.Lock()
	h.up.stall = stall
	h.up.mu.Unlock()
	h.b.Attributes("boiler-1", "main", map[string]model.Value{"temperature": {V: 21.5, At: time.UnixMilli(1000)}, "humidity": {V: 40.0, At: time.UnixMilli(1000)}})
	waitFor(t, "the report loop to take the report and stall in Publish", func() bool { return h.up.stalledReports() == 1 })
	// The session drops while the report is being published; a newer
	// temperature comes in meanwhile.
	h.up.setConnected(false)
	h.b.Attributes("boiler-1", "main", map[string]model.Value{"temperature": {V: 22.0, At: time.UnixMilli(2000)}})
	h.up.mu.Lock()
	h.up.stall = nil
	h.up.mu.Unlock()
	close(stall)
	waitFor(t, "the failed report back in the queue", func() bool {
		h.b.reports.mu.Lock()
		defer h.b.reports.mu.Unlock()
		return len(h.b.reports.reports) == 1 && len(h.b.reports.reports[0].values) == 2
	})
	if vals, err := h.st.LastValues("boiler-1"); err != nil || len(vals) != 0 {
		t.Fatalf("store holds %v, %v; want nothing (the report waits in memory)", vals, err)
	}
	h.connect()
	waitFor(t, "the report", func() bool { return len(h.up.messages(osap.TypeAttributeReport)) == 1 })
	var body osap.AttributeReport
	if err := json.Unmarshal(h.up.messages(osap.TypeAttributeReport)[0].body, &body); err != nil {
		t.Fatal(err)
	}
	temp, err1 := model.Coerce(model.TypeFloat, body.Values["temperature"].V, nil, nil)
	hum, err2 := model.Coerce(model.TypeFloat, body.Values["humidity"].V, nil, nil)
	if err1 != nil || err2 != nil || temp != 22.0 || hum != 40.0 {
		t.Fatalf("reported %v, want the newer temperature 22 and the requeued humidity 40", body.Values)
	}
}

func TestAttributesNeverWaitForTheUpstream(t *testing.T) {
	h := newHarness(t, Config{}, "boiler-1")
	h.connect()
	stall := make(chan struct{})
	h.up.mu.Lock()
	h.up.stall = stall
	h.up.mu.Unlock()
	// The first report is taken by the report loop, which then waits in
	// Publish; the next ones must not wait with it.
	report := func(res string, v float64) {
		h.b.Attributes("boiler-1", res, map[string]model.Value{"t": {V: v, At: time.UnixMilli(int64(v))}, res: {V: v}})
	}
	first := make(chan struct{})
	go func() {
		defer close(first)
		report("main", 1)
	}()
	waitFor(t, "the first report to stall in Publish", func() bool { return h.up.stalledReports() == 1 })
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-first
		for i := 2; i <= 200; i++ {
			report([]string{"main", "aux"}[i%2], float64(i))
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		close(stall)
		t.Fatal("Attributes waited for a stalled upstream")
	}
	close(stall)
	// Queued reports of one resource were merged: the newest values of
	// each resource arrive, in one report each (plus the one that stalled).
	newest := map[string]float64{}
	waitFor(t, "the newest values", func() bool {
		for _, m := range h.up.messages(osap.TypeAttributeReport) {
			var body osap.AttributeReport
			if err := json.Unmarshal(m.body, &body); err != nil {
				t.Fatal(err)
			}
			f, err := model.Coerce(model.TypeFloat, body.Values["t"].V, nil, nil)
			if err != nil {
				t.Fatalf("reported t = %v: %v", body.Values["t"].V, err)
			}
			newest[body.Resource] = max(newest[body.Resource], f.(float64))
		}
		return newest["main"] == 200 && newest["aux"] == 199
	})
	if n := len(h.up.messages(osap.TypeAttributeReport)); n > 3 {
		t.Errorf("%d attribute reports for 2 resources after a stall, want at most 3 (queued reports merged)", n)
	}
}

func TestDownlinkReplyCodes(t *testing.T) {
	h := newHarness(t, Config{RequestTimeout: 100 * time.Millisecond}, "boiler-1", "slow", "broken")
	h.devs["slow"].block = true
	h.devs["broken"].setErr = errors.New("illegal data address (register 40010)")
	h.devs["broken"].getBad = map[string]string{"temperature": "exception 2 (illegal data address)"}
	h.connect()
	tests := []struct {
		name     string
		typ      string
		dev      string
		body     string
		wantCode int
		wantBody string
	}{
		{"set ok", osap.TypeAttributeSet, "boiler-1", `{"resource":"main","values":{"setpoint":42}}`, 0, ""},
		{"unknown device", osap.TypeAttributeSet, "nope", `{"resource":"main","values":{"setpoint":42}}`, 404, ""},
		{"unknown resource", osap.TypeAttributeSet, "boiler-1", `{"resource":"aux","values":{"setpoint":42}}`, 404, ""},
		{"unknown attribute", osap.TypeAttributeSet, "boiler-1", `{"resource":"main","values":{"colour":1}}`, 404, ""},
		{"not writable", osap.TypeAttributeSet, "boiler-1", `{"resource":"main","values":{"temperature":1}}`, 409, ""},
		{"wrong type", osap.TypeAttributeSet, "boiler-1", `{"resource":"main","values":{"setpoint":"hot"}}`, 400, ""},
		{"out of range", osap.TypeAttributeSet, "boiler-1", `{"resource":"main","values":{"setpoint":400}}`, 400, ""},
		{"malformed body", osap.TypeAttributeSet, "boiler-1", `{"resource":"main","valeurs":{}}`, 400, ""},
		{"device timeout", osap.TypeAttributeSet, "slow", `{"resource":"main","values":{"setpoint":1}}`, 408, ""},
		{"device error", osap.TypeAttributeSet, "broken", `{"resource":"main","values":{"setpoint":1}}`, 500, ""},
		{"get", osap.TypeAttributeGet, "boiler-1", `{"resource":"main","names":["temperature"]}`, 0, `{"values":{"temperature":{"v":21.5,"ts":1000,"q":"good"}}}`},
		{"get unknown", osap.TypeAttributeGet, "boiler-1", `{"resource":"main","names":["colour"]}`, 404, ""},
		{"get a bad point", osap.TypeAttributeGet, "broken", `{"resource":"main","names":["temperature"]}`, 500,
			`{"values":{"temperature":{"ts":1000,"q":"bad","err":"exception 2 (illegal data address)"}}}`},
		{"get all with a bad point", osap.TypeAttributeGet, "broken", `{"resource":"main"}`, 500,
			`{"values":{"setpoint":{"v":42,"ts":1000,"q":"good"},"temperature":{"ts":1000,"q":"bad","err":"exception 2 (illegal data address)"}}}`},
		{"get a good point beside a bad one", osap.TypeAttributeGet, "broken", `{"resource":"main","names":["setpoint"]}`, 0, `{"values":{"setpoint":{"v":42,"ts":1000,"q":"good"}}}`},
		{"invoke", osap.TypeOperationInvoke, "boiler-1", `{"resource":"main","operation":"reset","input":{"mode":2}}`, 0, `{"output":{"mode":2,"ok":true}}`},
		{"invoke missing input", osap.TypeOperationInvoke, "boiler-1", `{"resource":"main","operation":"reset"}`, 400, ""},
		{"invoke unknown op", osap.TypeOperationInvoke, "boiler-1", `{"resource":"main","operation":"explode"}`, 404, ""},
		{"unknown type", "attribute.frobnicate", "boiler-1", `{}`, 400, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("req-%d", i)
			h.b.Downlink(osap.Message{Header: osap.Header{ID: id, Type: tt.typ, Dev: tt.dev}, Body: json.RawMessage(tt.body)})
			reply := h.replyTo(t, id)
			if reply.h.Code != tt.wantCode {
				t.Errorf("reply code = %d (%s), want %d", reply.h.Code, reply.h.Msg, tt.wantCode)
			}
			if tt.wantCode != 0 && reply.h.Msg == "" {
				t.Errorf("error reply has no message")
			}
			if tt.wantCode == 500 && tt.typ == osap.TypeAttributeGet && reply.h.Msg != `attribute "temperature": exception 2 (illegal data address)` {
				t.Errorf("reply msg = %q, want the bad attribute and its reason", reply.h.Msg)
			}
			if tt.wantBody != "" && string(reply.body) != tt.wantBody {
				t.Errorf("reply body = %s, want %s", reply.body, tt.wantBody)
			}
			if reply.kind != osap.KindReply || reply.h.Dev != tt.dev {
				t.Errorf("reply sent on %q for dev %q", reply.kind, reply.h.Dev)
			}
		})
	}
	h.devs["boiler-1"].mu.Lock()
	got := h.devs["boiler-1"].set["setpoint"].V
	h.devs["boiler-1"].mu.Unlock()
	if got != 42.0 {
		t.Errorf("adapter got setpoint %v (%T), want 42.0", got, got)
	}
	// An offline device answers 503 without being asked.
	h.b.Status("boiler-1", false, errors.New("no answer"))
	h.b.Downlink(osap.Message{Header: osap.Header{ID: "off", Type: osap.TypeAttributeGet, Dev: "boiler-1"}, Body: json.RawMessage(`{"resource":"main"}`)})
	if r := h.replyTo(t, "off"); r.h.Code != 503 {
		t.Errorf("offline device reply code = %d, want 503", r.h.Code)
	}
}

// TestDownlinkToOfflineDevice checks that a request the device model
// refuses gets its own code (400, 404, 409) even while the device is
// offline: only a request that would reach the device gets 503, which
// tells the platform to try again later.
func TestDownlinkToOfflineDevice(t *testing.T) {
	h := newHarness(t, Config{}, "boiler-1")
	h.connect()
	h.b.Status("boiler-1", false, errors.New("no answer"))
	tests := []struct {
		name     string
		typ      string
		body     string
		wantCode int
	}{
		{"unknown resource", osap.TypeAttributeSet, `{"resource":"aux","values":{"setpoint":42}}`, 404},
		{"unknown attribute", osap.TypeAttributeGet, `{"resource":"main","names":["colour"]}`, 404},
		{"unknown operation", osap.TypeOperationInvoke, `{"resource":"main","operation":"explode"}`, 404},
		{"not writable", osap.TypeAttributeSet, `{"resource":"main","values":{"temperature":1}}`, 409},
		{"out of range", osap.TypeAttributeSet, `{"resource":"main","values":{"setpoint":400}}`, 400},
		{"malformed body", osap.TypeAttributeGet, `[1]`, 400},
		{"valid set", osap.TypeAttributeSet, `{"resource":"main","values":{"setpoint":42}}`, 503},
		{"valid get", osap.TypeAttributeGet, `{"resource":"main","names":["temperature"]}`, 503},
		{"valid invoke", osap.TypeOperationInvoke, `{"resource":"main","operation":"reset","input":{"mode":2}}`, 503},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("off-%d", i)
			h.b.Downlink(osap.Message{Header: osap.Header{ID: id, Type: tt.typ, Dev: "boiler-1"}, Body: json.RawMessage(tt.body)})
			reply := h.replyTo(t, id)
			if reply.h.Code != tt.wantCode {
				t.Errorf("reply code = %d (%s), want %d", reply.h.Code, reply.h.Msg, tt.wantCode)
			}
		})
	}
	h.devs["boiler-1"].mu.Lock()
	set := h.devs["boiler-1"].set
	h.devs["boiler-1"].mu.Unlock()
	if set != nil {
		t.Errorf("offline adapter was asked to set %v, want not asked", set)
	}
}

// TestDownlinkAfterRun checks that a downlink arriving after Run returned
// (the session may still deliver one while it drains) is answered 503
// without reaching the device, and starts no goroutine that Run, gone,
// would not wait for.
func TestDownlinkAfterRun(t *testing.T) {
	h := newHarness(t, Config{}, "boiler-1")
	h.connect()
	if err := h.stop(); err != nil {
		t.Fatalf("Run() = %v", err)
	}
	h.b.Downlink(osap.Message{Header: osap.Header{ID: "late", Type: osap.TypeAttributeGet, Dev: "boiler-1"}, Body: json.RawMessage(`{"resource":"main","names":["temperature"]}`)})
	reply := h.replyTo(t, "late")
	if reply.h.Code != osap.CodeOffline {
		t.Errorf("reply code = %d (%s), want %d", reply.h.Code, reply.h.Msg, osap.CodeOffline)
	}
	a := h.devs["boiler-1"]
	a.mu.Lock()
	gets := a.gets
	a.mu.Unlock()
	if gets != 0 {
		t.Errorf("adapter Get called %d times after Run returned, want 0", gets)
	}
}

func TestApplyReload(t *testing.T) {
	h := newHarness(t, Config{}, "a", "b")
	h.connect()
	a := h.devs["a"]
	c := newFakeAdapter("c")
	// b removed, c added, a unchanged.
	h.b.Apply([]Spec{spec(a, "v1"), spec(c, "v1")})
	<-c.running
	waitFor(t, "topo.remove of b", func() bool { return len(h.up.messages(osap.TypeTopoRemove)) == 1 })
	var rm osap.DeviceList
	if err := json.Unmarshal(h.up.messages(osap.TypeTopoRemove)[0].body, &rm); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rm.Devices, []string{"b"}) {
		t.Errorf("topo.remove = %v, want [b]", rm.Devices)
	}
	waitFor(t, "topo.add of c", func() bool {
		for _, m := range h.up.messages(osap.TypeTopoAdd) {
			var body osap.TopoAdd
			_ = json.Unmarshal(m.body, &body)
			if len(body.Devices) == 1 && body.Devices[0].ID == "c" {
				return true
			}
		}
		return false
	})
	var ids []string
	for _, s := range h.b.Devices() {
		ids = append(ids, s.ID)
	}
	if !slices.Equal(ids, []string{"a", "c"}) {
		t.Errorf("running devices = %v, want [a c]", ids)
	}
	// a changed: it restarts with a new adapter.
	a2 := newFakeAdapter("a")
	h.b.Apply([]Spec{spec(a2, "v2"), spec(c, "v1")})
	<-a2.running
}

func TestPolledMetrics(t *testing.T) {
	h := newHarness(t, Config{}, "boiler-1")
	h.b.Polled("boiler-1", 20*time.Millisecond, nil)
	h.b.Polled("boiler-1", time.Second, errors.New("timeout"))
	h.b.Polled("unknown", time.Second, nil) // ignored
	bad := adapters.PointErrors{{Resource: "main", Attribute: "energy", Reason: "exception 2 (illegal data address)"}}
	h.b.Polled("boiler-1", time.Second, bad)
	h.b.Polled("boiler-1", time.Second, fmt.Errorf("poll: %w", bad))
	m := h.b.cfg.Metrics
	if got := testutil.ToFloat64(m.Polls.WithLabelValues("boiler-1", "ok")); got != 1 {
		t.Errorf("ok polls = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.Polls.WithLabelValues("boiler-1", "error")); got != 1 {
		t.Errorf("failed polls = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.Polls.WithLabelValues("boiler-1", "partial")); got != 2 {
		t.Errorf("partial polls = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.PointErrors.WithLabelValues("boiler-1", "main", "energy")); got != 2 {
		t.Errorf("point errors of main/energy = %v, want 2", got)
	}
	if n := testutil.CollectAndCount(m.PollDuration); n != 1 {
		t.Errorf("poll duration series = %d, want 1 (unknown devices are not counted)", n)
	}
	if st := h.b.Devices()[0]; st.LastPoll.IsZero() {
		t.Errorf("status has no last poll time: %+v", st)
	}
}

// TestBadPoints: a bad value reported by an adapter reaches the platform
// as {ts,q:bad,err}, shows in the device's status and in the gauge of bad
// points, and leaves both when a good value follows.
func TestBadPoints(t *testing.T) {
	h := newHarness(t, Config{}, "meter-1")
	h.connect()
	m := h.b.cfg.Metrics
	t0 := time.UnixMilli(1764150000000)
	const exc2 = "exception 2 (illegal data address)"
	h.b.Attributes("meter-1", "main", map[string]model.Value{"temperature": model.BadValue(t0, exc2), "setpoint": {V: 20.0, At: t0}})
	waitFor(t, "the report", func() bool { return len(h.up.messages(osap.TypeAttributeReport)) == 1 })
	const want = `{"resource":"main","values":{"setpoint":{"v":20,"ts":1764150000000,"q":"good"},"temperature":{"ts":1764150000000,"q":"bad","err":"exception 2 (illegal data address)"}}}`
	if got := string(h.up.messages(osap.TypeAttributeReport)[0].body); got != want {
		t.Errorf("attribute.report = %s, want %s", got, want)
	}
	wantBad := []BadPoint{{Resource: "main", Attribute: "temperature", Err: exc2, Since: t0}}
	if diff := cmp.Diff(wantBad, h.b.Devices()[0].BadPoints); diff != "" {
		t.Errorf("status bad points mismatch (-want +got):\n%s", diff)
	}
	if got := testutil.ToFloat64(m.PointsBad.WithLabelValues("meter-1")); got != 1 {
		t.Errorf("points bad = %v, want 1", got)
	}
	// Another resource's point goes bad; the reason of the first changes.
	t1 := t0.Add(time.Minute)
	h.b.Attributes("meter-1", "aux", map[string]model.Value{"temperature": model.BadValue(t1, "short answer")})
	h.b.Attributes("meter-1", "main", map[string]model.Value{"temperature": model.BadValue(t1, "no answer within 1s")})
	wantBad = []BadPoint{
		{Resource: "aux", Attribute: "temperature", Err: "short answer", Since: t1},
		{Resource: "main", Attribute: "temperature", Err: "no answer within 1s", Since: t1},
	}
	if diff := cmp.Diff(wantBad, h.b.Devices()[0].BadPoints); diff != "" {
		t.Errorf("status bad points mismatch (-want +got):\n%s", diff)
	}
	if got := testutil.ToFloat64(m.PointsBad.WithLabelValues("meter-1")); got != 2 {
		t.Errorf("points bad = %v, want 2", got)
	}
	h.b.Attributes("meter-1", "main", map[string]model.Value{"temperature": {V: 21.0, At: t1}})
	h.b.Attributes("meter-1", "aux", map[string]model.Value{"temperature": {V: 21.0, At: t1}})
	if got := h.b.Devices()[0].BadPoints; got != nil {
		t.Errorf("status bad points = %v after good values, want none", got)
	}
	if got := testutil.ToFloat64(m.PointsBad.WithLabelValues("meter-1")); got != 0 {
		t.Errorf("points bad = %v after good values, want 0", got)
	}
}

// TestRemovedWhileStopped: a device the platform knew from an earlier run
// and that is no longer configured is removed at the next connection.
func TestRemovedWhileStopped(t *testing.T) {
	h := newHarness(t, Config{}, "a")
	if err := h.st.SetAnnounced([]string{"a", "gone"}); err != nil {
		t.Fatal(err)
	}
	h.connect()
	rms := h.up.messages(osap.TypeTopoRemove)
	if len(rms) != 1 {
		t.Fatalf("%d topo.remove messages, want 1", len(rms))
	}
	var body osap.DeviceList
	if err := json.Unmarshal(rms[0].body, &body); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(body.Devices, []string{"gone"}) {
		t.Errorf("topo.remove = %v, want [gone]", body.Devices)
	}
	ids, err := h.st.Announced()
	if err != nil || !slices.Equal(ids, []string{"a"}) {
		t.Errorf("announced after connecting = %v, %v, want [a]", ids, err)
	}
}

// TestReloadWaitsForTheOldAdapter: a device whose configuration changed
// starts its new adapter only once the old one has returned, so the two
// never share the device's link.
func TestReloadWaitsForTheOldAdapter(t *testing.T) {
	h := newHarness(t, Config{}, "a")
	old := h.devs["a"]
	old.stopDelay = 100 * time.Millisecond
	fresh := newFakeAdapter("a")
	h.b.Apply([]Spec{spec(fresh, "v2")})
	<-fresh.running
	old.mu.Lock()
	returned := old.returnedAt
	old.mu.Unlock()
	fresh.mu.Lock()
	started := fresh.startedAt
	fresh.mu.Unlock()
	if returned.IsZero() || started.Before(returned) {
		t.Fatalf("new adapter started at %v, old one returned at %v: want the new one after", started, returned)
	}
}

// TestRequestEndsWithItsDevice: a request in progress on a device that is
// taken out of the configuration is cancelled with it, not left running
// against a stopped adapter until its timeout.
func TestRequestEndsWithItsDevice(t *testing.T) {
	h := newHarness(t, Config{RequestTimeout: time.Minute}, "slow")
	h.devs["slow"].block = true
	h.connect()
	h.b.Downlink(osap.Message{Header: osap.Header{ID: "r1", Type: osap.TypeAttributeSet, Dev: "slow"}, Body: json.RawMessage(`{"resource":"main","values":{"setpoint":1}}`)})
	waitFor(t, "the request to reach the adapter", func() bool {
		a := h.devs["slow"]
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.sets == 1
	})
	h.b.Apply(nil)
	reply := h.replyTo(t, "r1")
	if reply.h.Code != osap.CodeOffline {
		t.Fatalf("request on a removed device answered %d (%s), want 503", reply.h.Code, reply.h.Msg)
	}
}
