package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// quietLogger discards logs unless -v.
func quietLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// mustOpen opens a store in a fresh directory. At cleanup it closes the
// store and checks the file: bbolt's consistency check, and the counters
// in the meta bucket against a scan of the outbox.
func mustOpen(t testing.TB, opts Options) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state", "osapgw.db")
	if opts.Logger == nil {
		opts.Logger = quietLogger(t)
	}
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%q) = %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
		checkFile(t, path)
	})
	return s, path
}

// checkFile runs bbolt's consistency check on the file at path and
// compares the stored outbox counters with a scan.
func checkFile(t testing.TB, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Errorf("check: open %q: %v", path, err)
		return
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		var errs []error
		for e := range tx.Check() {
			errs = append(errs, e)
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		meta, ob := tx.Bucket(bucketMeta), tx.Bucket(bucketOutbox)
		var count, size uint64
		var last uint64
		if err := ob.ForEach(func(k, v []byte) error {
			id, _ := keyID(k)
			if id <= last {
				return fmt.Errorf("outbox ids out of order: %d after %d", id, last)
			}
			last = id
			count++
			size += uint64(len(k) + len(v) + leafOverhead)
			return nil
		}); err != nil {
			return err
		}
		if got := getU64(meta, keyCount); got != count {
			return fmt.Errorf("stored count = %d, scan finds %d", got, count)
		}
		if got := getU64(meta, keyBytes); got != size {
			return fmt.Errorf("stored bytes = %d, scan finds %d", got, size)
		}
		if last > ob.Sequence() {
			return fmt.Errorf("outbox sequence %d below stored id %d", ob.Sequence(), last)
		}
		return nil
	})
	if err != nil {
		t.Errorf("check %q: %v", path, err)
	}
}

// appendN appends n events for dev and returns their ids.
func appendN(t testing.TB, s *Store, dev string, n int) []uint64 {
	t.Helper()
	ids := make([]uint64, 0, n)
	for i := range n {
		id, err := s.Append(context.Background(), Event{Dev: dev, Resource: "main", Name: "tick", Params: map[string]any{"n": i}, At: time.Now()})
		if err != nil {
			t.Fatalf("Append #%d = %v", i, err)
		}
		ids = append(ids, id)
	}
	return ids
}

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func envUint(name string) uint64 {
	var v uint64
	fmt.Sscan(os.Getenv(name), &v)
	return v
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
