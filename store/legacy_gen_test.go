//go:build legacygen

// This file made testdata/outbox-v1.db and testdata/outbox-v1.json: a
// store written by the code of commit b74d438, whose outbox records are
// format 1 (the protocol body of event.report, as the bridge marshalled
// it). It is kept as the record of how the fixture was made; it compiles
// only against the API of that commit (store.Event with Body), so it sits
// behind the legacygen build tag. See testdata/README.md to run it again.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/osapgw/osapgw/model"
)

// legacyFixture is the layout of testdata/outbox-v1.json.
type legacyFixture struct {
	Commit      string          `json:"commit"`
	Now         time.Time       `json:"now"` // the store's clock (Options.Now) while generating
	Events      []legacyEvent   `json:"events"`
	Credentials Credentials     `json:"credentials"`
	Values      []legacyValue   `json:"values"`
	Announced   []string        `json:"announced"`
	Stats       legacyStatsJSON `json:"stats"`
}

type legacyEvent struct {
	ID    uint64    `json:"id"`
	Dev   string    `json:"dev"`
	Body  string    `json:"body"`
	At    time.Time `json:"at"`
	Acked bool      `json:"acked"`
}

type legacyValue struct {
	Dev      string    `json:"dev"`
	Resource string    `json:"resource"`
	Attr     string    `json:"attr"`
	Kind     string    `json:"kind"` // null, bool, int, float, string, json
	V        any       `json:"v"`
	At       time.Time `json:"at"`
	Quality  string    `json:"quality"`
	Pending  bool      `json:"pending"`
}

type legacyStatsJSON struct {
	Count int   `json:"count"`
	Bytes int64 `json:"bytes"`
}

func TestGenerateOutboxV1(t *testing.T) {
	now := time.Date(2025, 11, 26, 9, 40, 0, 123456789, time.UTC)
	clock := &fakeClock{now: now}
	dir := t.TempDir()
	path := filepath.Join(dir, "state", "outbox-v1.db")
	s, err := Open(path, Options{Now: clock.Now, Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	fx := legacyFixture{Commit: "b74d438", Now: now}

	type occ struct {
		dev   string
		ev    model.EventOccurrence
		acked bool
	}
	at := func(ms int, ns int) time.Time {
		return now.Add(time.Duration(ms)*time.Millisecond + time.Duration(ns))
	}
	occs := []occ{
		// The gateway itself, as bridge.reportOverflow made it (n is uint64).
		{dev: "", ev: model.EventOccurrence{Resource: "outbox", Event: "outbox.overflow", Params: map[string]any{"dropped": uint64(3)}, At: at(-5000, 1)}, acked: true},
		{dev: "cam-1", ev: model.EventOccurrence{Resource: "video/1", Event: "motion", Params: map[string]any{
			"state": true,
			"region": map[string]any{
				"x": 1.5, "y": 1e21, "tiny": 1e-7, "tenth": 0.1, "negzero": math.Copysign(0, -1),
				"nested": map[string]any{"deep": []any{int64(1), "two", nil, false, map[string]any{}}},
			},
		}, At: at(-4000, 999_999)}},
		{dev: "cam-1", ev: model.EventOccurrence{Resource: "video/1", Event: "tamper", At: at(-3990, 0)}},
		{dev: "pump-2", ev: model.EventOccurrence{Resource: "main", Event: "high_pressure", Params: map[string]any{
			"value": 1.5, "big": int64(9007199254740993), "min": int64(-9223372036854775808),
			"max": uint64(18446744073709551615), "f32": float32(0.1),
		}, At: at(-3000, 500_001)}, acked: true},
		{dev: "pump-2", ev: model.EventOccurrence{Resource: "main", Event: "text", Params: map[string]any{
			"html":    `<script>alert("x") & 'y'</script>`,
			"unicode": "温度 ✓ é \u2028\u2029 😀",
			"control": "tab\tnl\ncr\rnul\x00bell\x07esc\x1bdel\x7f",
			"bad":     "\xff\xfeok",
			"slash":   `back\slash /fwd`,
			"k<>&\"":  "key needs escaping",
			"":        "empty key",
		}, At: at(-2000, 3)}},
		// Names needing escaping too.
		{dev: "modbus/boiler_1.x", ev: model.EventOccurrence{Resource: `r<1>&"q"`, Event: "ev\u2028\\/\t", Params: map[string]any{"value": 1e21}, At: at(-1500, 0)}},
		// Empty params are omitted by the old body, like nil ones.
		{dev: "modbus/boiler_1.x", ev: model.EventOccurrence{Resource: "main", Event: "empty_params", Params: map[string]any{}, At: at(-1400, 0)}},
		{dev: "", ev: model.EventOccurrence{Resource: "gateway", Event: "started", At: at(-1300, 42)}, acked: true},
		{dev: "cam-2", ev: model.EventOccurrence{Resource: "device", Event: "digital_input", Params: map[string]any{
			"state": false, "input": "1", "list": []any{1.5, 1e-7, 1e21, int64(-1)},
		}, At: at(-1200, 0)}},
		{dev: "cam-2", ev: model.EventOccurrence{Resource: "video/2", Event: "motion", Params: map[string]any{
			"long": strings.Repeat("0123456789", 30),
		}, At: at(-1100, 0)}, acked: true},
	}
	// A burst as one batch, the way the synthetic adapter reports.
	burst := []occ{
		{dev: "synth-1", ev: model.EventOccurrence{Resource: "main", Event: "tick", Params: map[string]any{"n": int64(1)}, At: at(-1000, 0)}},
		{dev: "synth-1", ev: model.EventOccurrence{Resource: "main", Event: "tick", Params: map[string]any{"n": int64(2)}, At: at(-999, 0)}, acked: true},
		{dev: "synth-1", ev: model.EventOccurrence{Resource: "main", Event: "tick", Params: map[string]any{"n": int64(3)}, At: at(-998, 0)}},
	}

	record := func(o occ) Event {
		body, err := json.Marshal(o.ev)
		if err != nil {
			t.Fatalf("marshal %+v: %v", o.ev, err)
		}
		return Event{Dev: o.dev, Body: body, At: o.ev.At}
	}
	var acks []uint64
	for _, o := range occs {
		ev := record(o)
		id, err := s.Append(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		fx.Events = append(fx.Events, legacyEvent{ID: id, Dev: ev.Dev, Body: string(ev.Body), At: ev.At, Acked: o.acked})
		if o.acked {
			acks = append(acks, id)
		}
	}
	batch := make([]Event, len(burst))
	for i, o := range burst {
		batch[i] = record(o)
	}
	ids, err := s.AppendBatch(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		fx.Events = append(fx.Events, legacyEvent{ID: id, Dev: batch[i].Dev, Body: string(batch[i].Body), At: batch[i].At, Acked: burst[i].acked})
		if burst[i].acked {
			acks = append(acks, id)
		}
	}
	if err := s.Ack(acks...); err != nil {
		t.Fatal(err)
	}

	fx.Credentials = Credentials{
		DevID:         "GW-0001",
		MasterKey:     []byte("0123456789abcdef0123456789abcdef"),
		Suite:         8,
		SessionKey:    []byte("session-key-16by"),
		SessionExpiry: now.Add(time.Hour),
		Lifetime:      time.Hour,
		DASAddress:    "das.example.net:8883",
	}
	if err := s.SaveCredentials(fx.Credentials); err != nil {
		t.Fatal(err)
	}

	vals := []legacyValue{
		{Dev: "cam-1", Resource: "video/1", Attr: "brightness", Kind: "float", V: 0.5, At: at(-900, 7), Quality: "good"},
		{Dev: "cam-1", Resource: "video/1", Attr: "codec", Kind: "string", V: "H.264 <main> & \"high\"", At: at(-900, 7), Quality: ""},
		{Dev: "pump-2", Resource: "main", Attr: "pressure", Kind: "float", V: 2.5, At: at(-800, 0), Quality: "good", Pending: true},
		{Dev: "pump-2", Resource: "main", Attr: "running", Kind: "bool", V: true, At: at(-800, 0), Quality: "good", Pending: true},
		{Dev: "pump-2", Resource: "main", Attr: "count", Kind: "int", V: int64(-9007199254740993), At: at(-800, 0), Quality: "uncertain", Pending: true},
		{Dev: "pump-2", Resource: "main", Attr: "config", Kind: "json", V: map[string]any{"a": []any{1.0, "x"}, "b": nil}, At: at(-800, 0), Quality: "good", Pending: true},
		{Dev: "pump-2", Resource: "main", Attr: "fault", Kind: "null", V: nil, At: at(-800, 0), Quality: "bad", Pending: true},
	}
	byGroup := map[[2]string]map[string]model.Value{}
	for _, v := range vals {
		k := [2]string{v.Dev, v.Resource}
		if byGroup[k] == nil {
			byGroup[k] = map[string]model.Value{}
		}
		byGroup[k][v.Attr] = model.Value{V: v.V, At: v.At, Quality: model.Quality(v.Quality)}
	}
	for k, m := range byGroup {
		if err := s.PutValues(k[0], k[1], m); err != nil {
			t.Fatal(err)
		}
	}
	// Mark cam-1's values sent (the groups come sorted: cam-1 first), and
	// leave pump-2's pending.
	errStop := errors.New("stop")
	err = s.DrainValues(func(dev, resource string, _ map[string]model.Value) error {
		if dev == "cam-1" {
			return nil
		}
		return errStop
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("DrainValues = %v, want the stop", err)
	}
	fx.Values = vals

	fx.Announced = []string{"cam-1", "cam-2", "modbus/boiler_1.x", "pump-2", "synth-1"}
	if err := s.SetAnnounced(fx.Announced); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	fx.Stats = legacyStatsJSON{Count: st.Count, Bytes: st.Bytes}
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path)

	// The old code reads back exactly the pending events.
	s, err = Open(path, Options{Now: clock.Now, Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := s.Pending(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var pending []legacyEvent
	for _, e := range fx.Events {
		if !e.Acked {
			pending = append(pending, e)
		}
	}
	if len(recs) != len(pending) {
		t.Fatalf("Pending = %d records, want %d", len(recs), len(pending))
	}
	for i, r := range recs {
		if w := pending[i]; r.ID != w.ID || r.Dev != w.Dev || string(r.Body) != w.Body || !r.At.Equal(w.At) {
			t.Fatalf("record %d = %d %q %s %v, want %d %q %s %v", i, r.ID, r.Dev, r.Body, r.At, w.ID, w.Dev, w.Body, w.At)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", "outbox-v1.db"), db, 0o644); err != nil {
		t.Fatal(err)
	}
	var js strings.Builder
	enc := json.NewEncoder(&js)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(fx); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", "outbox-v1.json"), []byte(js.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote testdata/outbox-v1.db (%d bytes) and outbox-v1.json: %d events, %d pending", len(db), len(fx.Events), st.Count)
}
