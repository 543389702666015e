package store

import (
	"context"
	"path/filepath"
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
	first, err := s.Append(context.Background(), Event{Dev: "d", Body: []byte(`{"n":0}`), At: at})
	if err != nil {
		t.Fatal(err)
	}
	evs := make([]Event, 100)
	for i := range evs {
		evs[i] = Event{Dev: "d", Body: []byte(`{"n":1}`), At: at.Add(time.Duration(i) * time.Millisecond)}
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
		if r.ID != ids[i] || !r.At.Equal(evs[i].At) {
			t.Fatalf("record %d = id %d at %v, want id %d at %v", i, r.ID, r.At, ids[i], evs[i].At)
		}
	}
	if _, err := s.AppendBatch(context.Background(), []Event{{Dev: "d", Body: make([]byte, MaxEventBytes)}}); err == nil {
		t.Fatal("AppendBatch of an oversized event succeeded")
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
