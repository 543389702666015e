package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/osapgw/osapgw/internal/leaktest"
	"github.com/osapgw/osapgw/model"
	"github.com/osapgw/osapgw/osap"
	"github.com/osapgw/osapgw/store"
)

func TestBufferedWhileOfflineThenDeliveredInOrder(t *testing.T) {
	leaktest.Check(t)
	st := openStore(t, store.Options{})
	h := newHarness(t, Config{}, st, nil)
	h.run()
	t0 := time.UnixMilli(time.Now().Add(-time.Hour).UnixMilli())
	for i := range 10 {
		if n, err := h.s.Append("boiler-1", []model.EventOccurrence{tick(i, t0.Add(time.Duration(i)*time.Second))}); n != 1 || err != nil {
			t.Fatalf("Append = %d, %v, want 1, nil", n, err)
		}
	}
	if got := h.pending(t); got != 10 {
		t.Fatalf("outbox holds %d events, want 10", got)
	}
	if got := len(h.up.sent()); got != 0 {
		t.Fatalf("%d events published while offline, want 0", got)
	}
	h.up.set(true, false)
	h.s.Connected()
	waitFor(t, "10 events", func() bool { return len(h.up.sent()) >= 10 })
	waitFor(t, "the outbox to empty", func() bool { return h.pending(t) == 0 })
	got := h.up.sent()
	if ids := ids(got); len(ids) != 10 || !slices.IsSorted(ids) {
		t.Fatalf("event ids = %v, want 10 increasing", ids)
	}
	for i, p := range got {
		at := t0.Add(time.Duration(i) * time.Second).UnixMilli()
		want := `{"resource":"main","event":"overheat","params":{"n":` + strconv.Itoa(i) + `},"ts":` + strconv.FormatInt(at, 10) + `}`
		if string(p.body) != want {
			t.Errorf("event %d body = %s, want %s", i, p.body, want)
		}
		if p.h.Type != osap.TypeEventReport || p.h.Dev != "boiler-1" || p.h.TS != at || p.qos != 1 || p.kind != osap.KindEvent {
			t.Errorf("event %d sent as %+v qos %d on %q", i, p.h, p.qos, p.kind)
		}
	}
	if got := testutil.ToFloat64(h.s.cfg.Metrics.Delivered); got != 10 {
		t.Errorf("delivered = %v, want 10", got)
	}
	if got := testutil.ToFloat64(h.s.cfg.Metrics.Captured); got != 10 {
		t.Errorf("captured = %v, want 10", got)
	}
}

func TestWindowBoundsInFlight(t *testing.T) {
	leaktest.Check(t)
	st := openStore(t, store.Options{})
	h := newHarness(t, Config{Window: 8}, st, nil)
	h.up.set(true, true)
	h.run()
	h.s.Connected()
	var evs []model.EventOccurrence
	for i := range 20 {
		evs = append(evs, tick(i, time.Time{}))
	}
	if n, err := h.s.Append("boiler-1", evs); n != 20 || err != nil {
		t.Fatalf("Append = %d, %v", n, err)
	}
	waitFor(t, "8 events in flight", func() bool { return len(h.up.sent()) >= 8 })
	// A round of the send loop, run here to the end, finds no room.
	h.s.sendSome(context.Background(), h.up)
	if got := len(h.up.sent()); got != 8 {
		t.Fatalf("%d events in flight without PUBACK, want the window of 8", got)
	}
	for len(h.up.sent()) < 20 {
		before := len(h.up.sent())
		h.up.complete(nil)
		waitFor(t, "the window to move", func() bool { return len(h.up.sent()) > before || before == 20 })
	}
	h.up.complete(nil)
	if ids := ids(h.up.sent()); len(ids) != 20 || !slices.IsSorted(ids) {
		t.Fatalf("event ids = %v, want 20 increasing", ids)
	}
	waitFor(t, "the outbox to empty", func() bool { return h.pending(t) == 0 })
}

func TestResendAfterDisconnect(t *testing.T) {
	leaktest.Check(t)
	st := openStore(t, store.Options{})
	h := newHarness(t, Config{Window: 4}, st, nil)
	h.up.set(true, true)
	h.run()
	h.s.Connected()
	var evs []model.EventOccurrence
	for i := range 6 {
		evs = append(evs, tick(i, time.Time{}))
	}
	if _, err := h.s.Append("boiler-1", evs); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "4 events in flight", func() bool { return len(h.up.sent()) >= 4 })
	first := ids(h.up.sent())[0]
	// The connection drops before any PUBACK: the unacknowledged events
	// go again, oldest first. The old epoch's completions come late, with
	// an error, and change nothing.
	h.up.set(false, false)
	h.s.Disconnected()
	late := h.up.pending
	h.up.pending = nil
	h.up.forget()
	h.up.set(true, false)
	h.s.Connected()
	waitFor(t, "6 events resent", func() bool { return len(h.up.sent()) >= 6 })
	for _, done := range late {
		done(errNotConnected)
	}
	waitFor(t, "the outbox to empty", func() bool { return h.pending(t) == 0 })
	got := ids(h.up.sent())
	if got[0] != first || !slices.IsSorted(got) || len(got) != 6 {
		t.Fatalf("resent ids = %v, want 6 from %d in order", got, first)
	}
}

func TestFailedPublishResendsFromTheOldest(t *testing.T) {
	leaktest.Check(t)
	st := openStore(t, store.Options{})
	h := newHarness(t, Config{Window: 3}, st, nil)
	h.up.set(true, true)
	h.run()
	h.s.Connected()
	var evs []model.EventOccurrence
	for i := range 3 {
		evs = append(evs, tick(i, time.Time{}))
	}
	if _, err := h.s.Append("boiler-1", evs); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "3 events in flight", func() bool { return len(h.up.sent()) >= 3 })
	first := ids(h.up.sent())
	// The session reports the publishes failed (the write broke): the
	// stream starts again from the oldest, without a reconnection.
	h.up.set(true, false)
	h.up.complete(errors.New("write: broken pipe"))
	waitFor(t, "the events sent again", func() bool { return len(h.up.sent()) >= 6 })
	waitFor(t, "the outbox to empty", func() bool { return h.pending(t) == 0 })
	again := ids(h.up.sent())[3:6]
	if !slices.Equal(again, first) {
		t.Fatalf("sent again %v, want %v", again, first)
	}
}

func TestOverflowReportedOnConnect(t *testing.T) {
	leaktest.Check(t)
	st := openStore(t, store.Options{MaxBytes: 4 << 10})
	h := newHarness(t, Config{}, st, nil)
	h.run()
	big := make([]model.EventOccurrence, 60)
	for i := range big {
		big[i] = model.EventOccurrence{Resource: "main", Event: "fill", Params: map[string]any{"pad": string(make([]byte, 100)), "n": i}}
	}
	if _, err := h.s.Append("boiler-1", big); err != nil {
		t.Fatal(err)
	}
	if st.Stats().Dropped == 0 {
		t.Fatal("the 4 KiB outbox dropped nothing; the test needs it to")
	}
	h.up.set(true, false)
	h.s.Connected()
	waitFor(t, "outbox.overflow", func() bool {
		for _, p := range h.up.sent() {
			if p.h.Dev == "" && eventName(p.body) == "outbox.overflow" {
				return true
			}
		}
		return false
	})
}

// eventName returns the event name of an event.report body.
func eventName(body []byte) string {
	var r osap.EventReport
	if err := json.Unmarshal(body, &r); err != nil {
		return ""
	}
	return r.Event
}

func TestBadEventLosesOnlyItself(t *testing.T) {
	leaktest.Check(t)
	st := openStore(t, store.Options{})
	h := newHarness(t, Config{}, st, nil)
	evs := []model.EventOccurrence{tick(0, time.Time{}), {Resource: "main", Event: "bad", Params: map[string]any{"c": make(chan int)}}, tick(2, time.Time{})}
	n, err := h.s.Append("boiler-1", evs)
	if n != 2 || !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("Append = %d, %v, want 2 and an error wrapping store.ErrInvalid", n, err)
	}
	if got := h.pending(t); got != 2 {
		t.Fatalf("outbox holds %d events, want 2", got)
	}
	if got := testutil.ToFloat64(h.s.cfg.Metrics.Lost); got != 1 {
		t.Errorf("lost = %v, want 1", got)
	}
}

// damaging returns outbox records with the params of one id broken, as a
// damaged file could.
type damaging struct {
	Outbox
	id uint64
}

func (d damaging) Pending(after uint64, max int) ([]store.Record, error) {
	recs, err := d.Outbox.Pending(after, max)
	for i := range recs {
		if recs[i].ID == d.id {
			recs[i].Params = []byte(`{"n":`)
		}
	}
	return recs, err
}

func TestDamagedRecordDoesNotBlockTheStream(t *testing.T) {
	leaktest.Check(t)
	st := openStore(t, store.Options{})
	var evs []model.EventOccurrence
	for i := range 3 {
		evs = append(evs, tick(i, time.Time{}))
	}
	pre := New(Config{}, st)
	if _, err := pre.Append("boiler-1", evs); err != nil {
		t.Fatal(err)
	}
	recs, err := st.Pending(0, 3)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, Config{}, st, func(o Outbox) Outbox { return damaging{o, recs[1].ID} })
	h.up.set(true, false)
	h.run()
	h.s.Connected()
	waitFor(t, "the outbox to empty", func() bool { return h.pending(t) == 0 })
	if got, want := ids(h.up.sent()), []uint64{recs[0].ID, recs[2].ID}; !slices.Equal(got, want) {
		t.Fatalf("sent %v, want %v (the damaged one left out)", got, want)
	}
	if got := testutil.ToFloat64(h.s.cfg.Metrics.Lost); got != 1 {
		t.Errorf("lost = %v, want 1", got)
	}
}

func TestStopWritesTheAcksThatArrived(t *testing.T) {
	leaktest.Check(t)
	st := openStore(t, store.Options{})
	s := New(Config{}, st)
	if _, err := s.Append("boiler-1", []model.EventOccurrence{tick(0, time.Time{}), tick(1, time.Time{})}); err != nil {
		t.Fatal(err)
	}
	recs, _ := st.Pending(0, 2)
	// The PUBACKs arrived; Run's loops are stopped before the ack loop
	// took them.
	s.acks <- recs[0].ID
	s.acks <- recs[1].ID
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx, &fakeSession{}); err != nil {
		t.Fatal(err)
	}
	if left, _ := st.Pending(0, 2); len(left) != 0 {
		t.Fatalf("%d events left in the outbox after their acks, want 0", len(left))
	}
}

// TestUpgradedOutboxSendsWhatTheOldCodeSent opens a store file written
// before the outbox had its own record format (store/testdata, made by the
// code of b74d438, whose bridge stored the event.report body itself) and
// checks that its pending events go out byte for byte as that code would
// have sent them: the same header and the same application payload.
func TestUpgradedOutboxSendsWhatTheOldCodeSent(t *testing.T) {
	leaktest.Check(t)
	raw, err := os.ReadFile("../store/testdata/outbox-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	var legacy struct {
		Events []struct {
			ID    uint64    `json:"id"`
			Dev   string    `json:"dev"`
			Body  string    `json:"body"`
			At    time.Time `json:"at"`
			Acked bool      `json:"acked"`
		} `json:"events"`
	}
	if err := json.Unmarshal(raw, &legacy); err != nil {
		t.Fatal(err)
	}
	db, err := os.ReadFile("../store/testdata/outbox-v1.db")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "osapgw.db")
	if err := os.WriteFile(path, db, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(path, store.Options{MaxAge: 100 * 365 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	h := newHarness(t, Config{}, st, nil)
	h.up.set(true, false)
	h.run()
	h.s.Connected()
	var want []published
	for _, e := range legacy.Events {
		if e.Acked {
			continue
		}
		want = append(want, published{
			h:    osap.Header{ID: strconv.FormatUint(e.ID, 10), TS: e.At.UnixMilli(), Type: osap.TypeEventReport, Dev: e.Dev},
			kind: osap.KindEvent, qos: 1, body: []byte(e.Body),
		})
	}
	if len(want) == 0 {
		t.Fatal("the legacy file lists no pending event")
	}
	waitFor(t, "the legacy events", func() bool { return len(h.up.sent()) >= len(want) })
	waitFor(t, "the outbox to empty", func() bool { return h.pending(t) == 0 })
	got := h.up.sent()
	if len(got) != len(want) {
		t.Fatalf("sent %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].h != want[i].h || got[i].kind != want[i].kind || got[i].qos != want[i].qos {
			t.Errorf("event %d sent as %+v on %q qos %d, want %+v on %q qos %d", i, got[i].h, got[i].kind, got[i].qos, want[i].h, want[i].kind, want[i].qos)
		}
		if string(got[i].body) != string(want[i].body) {
			t.Errorf("event %s body =\n%s\nwant (as the old code sent it)\n%s", want[i].h.ID, got[i].body, want[i].body)
		}
	}
	// New events follow the old ones.
	if _, err := h.s.Append("cam-1", []model.EventOccurrence{{Resource: "video/1", Event: "motion", At: time.UnixMilli(1764150001000)}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new event", func() bool { return len(h.up.sent()) > len(want) })
	if last := ids(h.up.sent()); last[len(last)-1] <= legacy.Events[len(legacy.Events)-1].ID {
		t.Errorf("new event id %d not after the old ones (%d)", last[len(last)-1], legacy.Events[len(legacy.Events)-1].ID)
	}
}

// TestNothingBeforeConnected: the session may be up before the bridge has
// announced the topology; events wait for Connected, which the bridge
// calls after it.
func TestNothingBeforeConnected(t *testing.T) {
	leaktest.Check(t)
	st := openStore(t, store.Options{})
	h := newHarness(t, Config{}, st, nil)
	h.up.set(true, false)
	h.run()
	if _, err := h.s.Append("boiler-1", []model.EventOccurrence{tick(0, time.Time{})}); err != nil {
		t.Fatal(err)
	}
	h.s.sendSome(context.Background(), h.up) // a round, run to its end here
	if got := len(h.up.sent()); got != 0 {
		t.Fatalf("%d events sent before Connected, want 0", got)
	}
	h.s.Connected()
	waitFor(t, "the event", func() bool { return len(h.up.sent()) == 1 })
	h.s.Disconnected()
	if _, err := h.s.Append("boiler-1", []model.EventOccurrence{tick(1, time.Time{})}); err != nil {
		t.Fatal(err)
	}
	h.s.sendSome(context.Background(), h.up)
	if got := len(h.up.sent()); got != 1 {
		t.Fatalf("%d events sent, want 1: none after Disconnected", got)
	}
}
