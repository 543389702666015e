package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAppendBatch(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "state", "b.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	at := time.Now().Truncate(time.Millisecond)
	first, err := s.Append(context.Background(), Event{Dev: "d", Resource: "main", Name: "tick", Params: map[string]any{"n": 0}, At: at})
	if err != nil {
		t.Fatal(err)
	}
	evs := make([]Event, 100)
	for i := range evs {
		evs[i] = Event{Dev: "d", Resource: "main", Name: "tick", Params: map[string]any{"n": i + 1}, At: at.Add(time.Duration(i) * time.Millisecond)}
	}
	ids, err := s.AppendBatch(context.Background(), evs)
	if err != nil || len(ids) != 100 {
		t.Fatalf("AppendBatch = %d ids, %v, want 100", len(ids), err)
	}
	prev := first
	for _, id := range ids {
		if id <= prev {
			t.Fatalf("ids %v not strictly increasing after %d", ids, first)
		}
		prev = id
	}
	recs, err := s.Pending(0, 1000)
	if err != nil || len(recs) != 101 {
		t.Fatalf("Pending = %d records, %v, want 101", len(recs), err)
	}
	for i, r := range recs[1:] {
		if want := fmt.Sprintf(`{"n":%d}`, i+1); r.ID != ids[i] || !r.At.Equal(evs[i].At) || string(r.Params) != want {
			t.Fatalf("record %d = id %d at %v params %s, want id %d at %v params %s", i, r.ID, r.At, r.Params, ids[i], evs[i].At, want)
		}
	}
	// One bad event fails the batch before anything is stored.
	for _, tt := range []struct {
		name string
		bad  Event
		want error
	}{
		{name: "oversized", bad: Event{Dev: "d", Resource: "main", Name: "big", Params: map[string]any{"blob": strings.Repeat("x", MaxEventBytes)}}, want: ErrTooLarge},
		{name: "invalid", bad: Event{Dev: "d", Resource: "main"}, want: ErrInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := s.Stats().Count
			good := Event{Dev: "d", Resource: "main", Name: "tick"}
			ids, err := s.AppendBatch(context.Background(), []Event{good, tt.bad, good})
			if !errors.Is(err, tt.want) || len(ids) != 0 {
				t.Errorf("AppendBatch(good, %s, good) = %v, %v; want no ids, %v", tt.name, ids, err, tt.want)
			}
			if got := s.Stats().Count; got != before {
				t.Errorf("Stats().Count = %d after a failed batch, want %d", got, before)
			}
		})
	}
}

func TestAnnounced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "a.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ids, err := s.Announced(); err != nil || len(ids) != 0 {
		t.Fatalf("Announced() on a new store = %v, %v, want none", ids, err)
	}
	if err := s.SetAnnounced([]string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ids, err := s.Announced()
	if err != nil || len(ids) != 2 || ids[0] != "a" || ids[1] != "b" {
		t.Fatalf("Announced() after reopening = %v, %v, want [a b]", ids, err)
	}
}
