package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestAppendPendingAck(t *testing.T) {
	at := time.Unix(1764150000, 123456789)
	s, _ := mustOpen(t, Options{Now: func() time.Time { return at }})
	var ids []uint64
	for i, dev := range []string{"", "cam-1", "pump-2"} {
		id, err := s.Append(context.Background(), Event{Dev: dev, Resource: "main", Name: "tick", Params: map[string]any{"i": i}, At: at})
		if err != nil {
			t.Fatalf("Append = %v", err)
		}
		ids = append(ids, id)
	}
	if !(ids[0] < ids[1] && ids[1] < ids[2]) {
		t.Fatalf("ids = %v, want strictly increasing", ids)
	}
	got, err := s.Pending(0, 10)
	if err != nil {
		t.Fatalf("Pending = %v", err)
	}
	want := []Record{
		{ID: ids[0], Dev: "", Resource: "main", Name: "tick", Params: []byte(`{"i":0}`), At: at},
		{ID: ids[1], Dev: "cam-1", Resource: "main", Name: "tick", Params: []byte(`{"i":1}`), At: at},
		{ID: ids[2], Dev: "pump-2", Resource: "main", Name: "tick", Params: []byte(`{"i":2}`), At: at},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Pending(0, 10) mismatch (-want +got):\n%s", diff)
	}
	if st := s.Stats(); st.Count != 3 || !st.Oldest.Equal(at) || st.Bytes <= 0 {
		t.Errorf("Stats() = %+v, want Count 3, Oldest %v", st, at)
	}
	if err := s.Ack(ids[0], ids[0], 999); err != nil { // duplicates and unknown ids are ignored
		t.Fatalf("Ack = %v", err)
	}
	if err := s.Ack(ids[0]); err != nil {
		t.Fatalf("second Ack = %v", err)
	}
	got, _ = s.Pending(0, 10)
	if diff := cmp.Diff(want[1:], got); diff != "" {
		t.Fatalf("Pending after Ack mismatch (-want +got):\n%s", diff)
	}
	if err := s.Ack(ids[1], ids[2]); err != nil {
		t.Fatalf("Ack = %v", err)
	}
	if st := s.Stats(); st.Count != 0 || st.Bytes != 0 || !st.Oldest.IsZero() {
		t.Errorf("Stats() after acking all = %+v, want zero", st)
	}
	// Ids are never reused, even once the outbox is empty.
	id, err := s.Append(context.Background(), Event{Resource: "main", Name: "tick"})
	if err != nil || id <= ids[2] {
		t.Errorf("Append after emptying = %d, %v; want an id above %d", id, err, ids[2])
	}
}

func TestPendingPaging(t *testing.T) {
	s, _ := mustOpen(t, Options{})
	ids := appendN(t, s, "d", 25)
	tests := []struct {
		name  string
		after uint64
		max   int
		want  []uint64
	}{
		{name: "first page", after: 0, max: 10, want: ids[:10]},
		{name: "middle page", after: ids[9], max: 10, want: ids[10:20]},
		{name: "last short page", after: ids[19], max: 10, want: ids[20:]},
		{name: "past the end", after: ids[24], max: 10, want: nil},
		{name: "zero max", after: 0, max: 0, want: nil},
		{name: "between ids", after: ids[3] - 1, max: 1, want: ids[3:4]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := s.Pending(tt.after, tt.max)
			if err != nil {
				t.Fatalf("Pending = %v", err)
			}
			var got []uint64
			for _, r := range recs {
				got = append(got, r.ID)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Pending(%d, %d) ids mismatch (-want +got):\n%s", tt.after, tt.max, diff)
			}
		})
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	s, path := mustOpen(t, Options{})
	ids := appendN(t, s, "d", 5)
	if err := s.Ack(ids[0]); err != nil {
		t.Fatal(err)
	}
	before := s.Stats()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path, Options{Logger: quietLogger(t)})
	if err != nil {
		t.Fatalf("reopen = %v", err)
	}
	defer s2.Close()
	if diff := cmp.Diff(before, s2.Stats()); diff != "" {
		t.Errorf("Stats after reopen mismatch (-before +after):\n%s", diff)
	}
	recs, _ := s2.Pending(0, 100)
	if len(recs) != 4 || recs[0].ID != ids[1] {
		t.Errorf("Pending after reopen = %d records from %d, want 4 from %d", len(recs), recs[0].ID, ids[1])
	}
	id, err := s2.Append(context.Background(), Event{Resource: "main", Name: "tick"})
	if err != nil || id <= ids[4] {
		t.Errorf("Append after reopen = %d, %v; want above %d", id, err, ids[4])
	}
}

func TestConcurrentAppendsUniqueIncreasing(t *testing.T) {
	s, _ := mustOpen(t, Options{})
	const writers, each = 16, 50
	var mu sync.Mutex
	seen := map[uint64]string{}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			var last uint64
			for i := range each {
				body := fmt.Sprintf(`{"i":%d,"w":%d}`, i, w)
				id, err := s.Append(context.Background(), Event{Dev: "d", Resource: "main", Name: "tick", Params: map[string]any{"w": w, "i": i}})
				if err != nil {
					errs <- err
					return
				}
				if id <= last {
					errs <- fmt.Errorf("writer %d: id %d after %d", w, id, last)
					return
				}
				last = id
				mu.Lock()
				seen[id] = body
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != writers*each {
		t.Fatalf("%d distinct ids, want %d", len(seen), writers*each)
	}
	recs, err := s.Pending(0, writers*each+1)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != writers*each {
		t.Fatalf("Pending returned %d, want %d", len(recs), writers*each)
	}
	for _, r := range recs {
		if seen[r.ID] != string(r.Params) {
			t.Errorf("record %d params %s, want %s", r.ID, r.Params, seen[r.ID])
		}
	}
}

func TestBounds(t *testing.T) {
	ev := Event{Dev: "d", Resource: "main", Name: "motion", Params: map[string]any{"state": true}}
	enc, err := encodeEvent(ev)
	if err != nil {
		t.Fatal(err)
	}
	size := int64(8 + len(enc) + leafOverhead)
	tests := []struct {
		name        string
		maxBytes    int64
		maxAge      time.Duration
		appends     int
		step        time.Duration // clock advance between appends
		wantCount   int
		wantDropped uint64
	}{
		{name: "under both bounds", maxBytes: 100 * size, maxAge: time.Hour, appends: 10, step: time.Second, wantCount: 10},
		{name: "bytes bound keeps newest", maxBytes: 4 * size, maxAge: time.Hour, appends: 10, step: time.Second, wantCount: 4, wantDropped: 6},
		{name: "age bound", maxBytes: 100 * size, maxAge: 3*time.Minute + time.Second, appends: 10, step: time.Minute, wantCount: 4, wantDropped: 6},
		{name: "exactly full", maxBytes: 10 * size, maxAge: time.Hour, appends: 10, step: 0, wantCount: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{now: time.Unix(1764150000, 0)}
			s, path := mustOpen(t, Options{MaxBytes: tt.maxBytes, MaxAge: tt.maxAge, Now: clock.Now})
			var ids []uint64
			for range tt.appends {
				ev.At = clock.Now()
				id, err := s.Append(context.Background(), ev)
				if err != nil {
					t.Fatalf("Append = %v", err)
				}
				ids = append(ids, id)
				clock.Add(tt.step)
			}
			clock.Add(-tt.step)
			st := s.Stats()
			if st.Count != tt.wantCount || st.Dropped != tt.wantDropped {
				t.Errorf("Stats() = %+v, want Count %d Dropped %d", st, tt.wantCount, tt.wantDropped)
			}
			recs, _ := s.Pending(0, 100)
			if len(recs) != tt.wantCount || recs[0].ID != ids[len(ids)-tt.wantCount] {
				t.Errorf("Pending kept %d records from %d, want the newest %d", len(recs), recs[0].ID, tt.wantCount)
			}
			if got := s.TakeOverflow(); got != tt.wantDropped {
				t.Errorf("TakeOverflow() = %d, want %d", got, tt.wantDropped)
			}
			if got := s.TakeOverflow(); got != 0 {
				t.Errorf("second TakeOverflow() = %d, want 0", got)
			}
			_ = path
		})
	}
}

func TestOverflowSurvivesRestart(t *testing.T) {
	s, path := mustOpen(t, Options{MaxBytes: 400})
	appendN(t, s, "d", 20)
	want := s.Stats().Dropped
	if want == 0 {
		t.Fatal("nothing dropped; the test needs a smaller MaxBytes")
	}
	s.Close()
	s2, err := Open(path, Options{MaxBytes: 400, Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got := s2.TakeOverflow(); got != want {
		t.Errorf("TakeOverflow() after restart = %d, want %d", got, want)
	}
}

func TestAgeExpiryWithoutAppends(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1764150000, 0)}
	s, _ := mustOpen(t, Options{MaxAge: time.Hour, Now: clock.Now, tick: time.Millisecond})
	appendN(t, s, "d", 3) // At is the real time: about now
	clock.Set(time.Now().Add(2 * time.Hour))
	// The committer's ticker expires them; wait for it (no timing asserted).
	for deadline := time.Now().Add(10 * time.Second); s.Stats().Count != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("Stats().Count = %d 10 s after the events aged out, want 0 (the committer's ticker expires them)", s.Stats().Count)
		}
	}
	if got := s.TakeOverflow(); got != 3 {
		t.Errorf("TakeOverflow() = %d, want 3", got)
	}
}

func TestAppendErrors(t *testing.T) {
	s, _ := mustOpen(t, Options{MaxBytes: 1000})
	tests := []struct {
		name string
		ev   Event
		want error
	}{
		{name: "over MaxBytes", ev: Event{Resource: "main", Name: "big", Params: map[string]any{"s": strings.Repeat("x", 1000)}}, want: ErrTooLarge},
		{name: "over MaxEventBytes", ev: Event{Resource: "main", Name: "big", Params: map[string]any{"s": strings.Repeat("x", MaxEventBytes)}}, want: ErrTooLarge},
		{name: "no name", ev: Event{Resource: "main"}, want: ErrInvalid},
		{name: "no resource", ev: Event{Name: "motion"}, want: ErrInvalid},
		{name: "NUL in device", ev: Event{Dev: "a\x00", Resource: "main", Name: "motion"}, want: ErrInvalid},
		{name: "params do not encode", ev: Event{Resource: "main", Name: "motion", Params: map[string]any{"x": math.Inf(1)}}, want: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Append(context.Background(), tt.ev); !errors.Is(err, tt.want) {
				t.Errorf("Append = %v, want %v", err, tt.want)
			}
		})
	}
	// A canceled context may still race with a free committer; either the
	// event is stored or the error is the context's.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Append(ctx, Event{Resource: "main", Name: "tick"}); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Append(canceled) = %v, want nil or context.Canceled", err)
	}
}

func TestClosed(t *testing.T) {
	s, _ := mustOpen(t, Options{})
	appendN(t, s, "d", 1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(context.Background(), Event{Resource: "main", Name: "tick"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
	if err := s.Ack(1); !errors.Is(err, ErrClosed) {
		t.Errorf("Ack after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Pending(0, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Pending after Close = %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// TestOutboxProperty runs random appends, acks, reopens and bound changes
// against a model and compares after every step.
func TestOutboxProperty(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d (rerun with STORE_SEED)", seed)
	if v := envUint("STORE_SEED"); v != 0 {
		seed = v
	}
	rng := rand.New(rand.NewPCG(seed, seed))
	steps := 400
	if testing.Short() {
		steps = 100
	}
	s, path := mustOpen(t, Options{})
	type rec struct {
		dev    string
		name   string
		params string
	}
	model := map[uint64]rec{}
	var order []uint64
	var lastID uint64
	for step := range steps {
		switch op := rng.IntN(10); {
		case op < 6:
			x := rng.Uint64()
			r := rec{dev: fmt.Sprintf("d%d", rng.IntN(3)), name: fmt.Sprintf("e%d", rng.IntN(3)), params: fmt.Sprintf(`{"s":%d,"x":"%x"}`, step, x)}
			ev := Event{Dev: r.dev, Resource: "main", Name: r.name, Params: map[string]any{"s": step, "x": fmt.Sprintf("%x", x)}}
			id, err := s.Append(context.Background(), ev)
			if err != nil {
				t.Fatalf("seed %d step %d: Append = %v", seed, step, err)
			}
			if id <= lastID {
				t.Fatalf("seed %d step %d: id %d after %d", seed, step, id, lastID)
			}
			lastID = id
			model[id] = rec(r)
			order = append(order, id)
		case op < 9 && len(order) > 0:
			var ids []uint64
			for range rng.IntN(5) + 1 {
				ids = append(ids, order[rng.IntN(len(order))])
			}
			if err := s.Ack(ids...); err != nil {
				t.Fatalf("seed %d step %d: Ack = %v", seed, step, err)
			}
			for _, id := range ids {
				delete(model, id)
			}
		default:
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			var err error
			if s, err = Open(path, Options{Logger: quietLogger(t)}); err != nil {
				t.Fatalf("seed %d step %d: reopen = %v", seed, step, err)
			}
		}
		var want []uint64
		for _, id := range order {
			if _, ok := model[id]; ok {
				want = append(want, id)
			}
		}
		var got []uint64
		var after uint64
		for {
			page, err := s.Pending(after, 1+rng.IntN(7))
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			for _, r := range page {
				if m := model[r.ID]; m.dev != r.Dev || m.name != r.Name || m.params != string(r.Params) {
					t.Fatalf("seed %d step %d: record %d = %q %q %s, want %q %q %s", seed, step, r.ID, r.Dev, r.Name, r.Params, m.dev, m.name, m.params)
				}
				got = append(got, r.ID)
			}
			after = page[len(page)-1].ID
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("seed %d step %d: pending ids mismatch (-want +got):\n%s", seed, step, diff)
		}
		if c := s.Stats().Count; c != len(want) {
			t.Fatalf("seed %d step %d: Stats().Count = %d, want %d", seed, step, c, len(want))
		}
	}
	// mustOpen's cleanup closes the first store; close the last one here
	// if it was reopened.
	t.Cleanup(func() { s.Close() })
}

// countHandler counts log records by level.
type countHandler struct {
	mu     sync.Mutex
	counts map[slog.Level]int
}

func (h *countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.counts[r.Level]++
	return nil
}
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countHandler) WithGroup(string) slog.Handler      { return h }

func (h *countHandler) count(l slog.Level) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.counts[l]
}

func TestOverflowLoggedOncePerEpisode(t *testing.T) {
	h := &countHandler{counts: map[slog.Level]int{}}
	s, _ := mustOpen(t, Options{MaxBytes: 1000, Logger: slog.New(h)})
	appendN(t, s, "d", 30) // overflows on most appends: one episode
	if got := h.count(slog.LevelWarn); got != 1 {
		t.Errorf("%d warnings during one overflow episode, want 1", got)
	}
	recs, _ := s.Pending(0, 100)
	var ids []uint64
	for _, r := range recs {
		ids = append(ids, r.ID)
	}
	if err := s.Ack(ids...); err != nil { // room again: the episode ends
		t.Fatal(err)
	}
	appendN(t, s, "d", 30) // a second episode
	if got := h.count(slog.LevelWarn); got != 2 {
		t.Errorf("%d warnings after two overflow episodes, want 2", got)
	}
}
