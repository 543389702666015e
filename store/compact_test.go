package store

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"
)

// bulkAppend appends n events with a parameter of size bytes from 32
// writers.
func bulkAppend(t testing.TB, s *Store, n, size int) []uint64 {
	t.Helper()
	text := make([]byte, size)
	for i := range text {
		text[i] = 'a' + byte(i%26)
	}
	params := map[string]any{"text": string(text)}
	var mu sync.Mutex
	var ids []uint64
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Go(func() {
			for i := w; i < n; i += 32 {
				id, err := s.Append(context.Background(), Event{Dev: "d", Resource: "main", Name: "tick", Params: params})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				ids = append(ids, id)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return ids
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestCompact(t *testing.T) {
	s, path := mustOpen(t, Options{})
	bulkAppend(t, s, 4000, 1000)
	recs, err := s.Pending(0, 5000)
	if err != nil {
		t.Fatal(err)
	}
	var ack []uint64
	for _, r := range recs[:len(recs)-10] {
		ack = append(ack, r.ID)
	}
	if err := s.Ack(ack...); err != nil {
		t.Fatal(err)
	}
	before := fileSize(t, path)
	if err := s.Compact(context.Background()); err != nil {
		t.Fatalf("Compact = %v", err)
	}
	after := fileSize(t, path)
	if after >= before/2 {
		t.Errorf("file size %d after compaction, %d before; want less than half", after, before)
	}
	left, _ := s.Pending(0, 100)
	if len(left) != 10 || left[0].ID != recs[len(recs)-10].ID {
		t.Errorf("Pending after compaction = %d records, want the last 10", len(left))
	}
	id, err := s.Append(context.Background(), Event{Resource: "main", Name: "tick"})
	if err != nil || id <= recs[len(recs)-1].ID {
		t.Errorf("Append after compaction = %d, %v; want an id above %d (sequence kept)", id, err, recs[len(recs)-1].ID)
	}
}

func TestCompactAutomatically(t *testing.T) {
	s, path := mustOpen(t, Options{compactMinBytes: 1 << 20, compactEvery: 1})
	ids := bulkAppend(t, s, 4000, 1000)
	// Measured before the acks: the committer may compact as soon as the
	// Ack's batch is written, before the test looks again (seen under qemu).
	before := fileSize(t, path)
	if err := s.Ack(ids...); err != nil {
		t.Fatal(err)
	}
	if after := sizeAfterBatches(t, s, path, before/2); after >= before/2 {
		t.Errorf("file size %d, %d before the acks; want it compacted", after, before)
	}
}

// sizeAfterBatches appends events until the file is under want bytes, at
// most 50 times, and returns its size. The committer checks the size
// after each batch. Usually the check that followed the Ack's batch is
// done once the next write returns; on a loaded machine (seen under -race
// and qemu) the Ack's removals may still be settling, so the committer
// gets a few more batches, bounded, before the test judges. This
// synchronises; it measures nothing.
func sizeAfterBatches(t *testing.T, s *Store, path string, want int64) int64 {
	t.Helper()
	size := fileSize(t, path)
	for i := 0; i < 50 && size >= want; i++ {
		if _, err := s.Append(context.Background(), Event{Resource: "main", Name: "tick"}); err != nil {
			t.Fatal(err)
		}
		if size = fileSize(t, path); size >= want {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return size
}

// TestCompactAfterBacklogCompaction: a compaction while a backlog waits
// must not keep the file from being compacted once the backlog is
// acknowledged (bbolt's growth slack once counted as live data).
func TestCompactAfterBacklogCompaction(t *testing.T) {
	s, path := mustOpen(t, Options{compactMinBytes: 1 << 20, compactEvery: 1})
	ids := bulkAppend(t, s, 4000, 1000)
	if err := s.Compact(context.Background()); err != nil { // the backlog still waits
		t.Fatal(err)
	}
	before := fileSize(t, path)
	if err := s.Ack(ids...); err != nil {
		t.Fatal(err)
	}
	if after := sizeAfterBatches(t, s, path, before/2); after >= before/2 {
		t.Errorf("file size %d after the backlog was acknowledged, %d before; want it compacted", after, before)
	}
}

func TestOpenRemovesUnfinishedCompaction(t *testing.T) {
	path := newPath(t)
	fillStore(t, path, 5)
	writeFile(t, path+compactSuffix, []byte("half a copy"))
	s, err := Open(path, Options{Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(path + compactSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("leftover %s still there (stat: %v)", path+compactSuffix, err)
	}
	if recs, _ := s.Pending(0, 10); len(recs) != 5 {
		t.Errorf("Pending = %d records, want 5", len(recs))
	}
}
