package bridge

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/osapgw/osapgw/model"
	"github.com/osapgw/osapgw/osap"
)

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
