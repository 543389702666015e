package bridge

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/model"
	"github.com/osapgw/osapgw/osap"
)

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
