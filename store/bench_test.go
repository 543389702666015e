package store

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Benchmarks use events of the size a 256-byte event.report body made in
// format 1 (the gateway's bodies are about that size), so that the figures
// in docs/performance.md stay comparable: their parameters pad the
// format-2 record to the same 271 bytes.

const benchRecord = 1 + 8 + 1 + len("cam-1") + 256

func benchEvent() Event {
	ev := Event{Dev: "cam-1", Resource: "video/1", Name: "motion", At: time.Now()}
	enc, err := encodeEvent(ev)
	if err != nil {
		panic(err)
	}
	const overhead = len(`{"text":""}`)
	b := make([]byte, benchRecord-len(enc)-overhead)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	ev.Params = map[string]any{"text": string(b)}
	return ev
}

// runWriters runs b.N appends from 64 goroutines and reports events/s.
func runWriters(b *testing.B, s *Store, appendOne func() error) {
	b.SetParallelism((64 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	var failed atomic.Value
	s.commits.Store(0)
	s.commitReqs.Store(0)
	s.commitNanos.Store(0)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := appendOne(); err != nil {
				failed.Store(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	if c := s.commits.Load(); c > 0 {
		b.ReportMetric(float64(s.commitReqs.Load())/float64(c), "events/commit")
		b.ReportMetric(float64(s.commitNanos.Load())/float64(c)/1e6, "ms/commit")
	}
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkAppendDurable: 64 concurrent writers, group commit, fsync.
func BenchmarkAppendDurable(b *testing.B) {
	s, _ := mustOpen(b, Options{MaxBytes: 4 << 30})
	ev := benchEvent()
	runWriters(b, s, func() error {
		_, err := s.Append(context.Background(), ev)
		return err
	})
}

// BenchmarkAppendNaive: 64 concurrent writers, one bbolt transaction (and
// one fsync) per event, the way one would write it without group commit.
func BenchmarkAppendNaive(b *testing.B) {
	s, _ := mustOpen(b, Options{MaxBytes: 4 << 30})
	s.dbmu.RLock()
	db := s.db
	s.dbmu.RUnlock()
	enc, err := encodeEvent(benchEvent())
	if err != nil {
		b.Fatal(err)
	}
	runWriters(b, s, func() error {
		return db.Update(func(tx *bolt.Tx) error {
			ob := tx.Bucket(bucketOutbox)
			id, err := ob.NextSequence()
			if err != nil {
				return err
			}
			return ob.Put(idKey(id), enc)
		})
	})
	// The naive writes bypassed the counters; make them match for the
	// cleanup check.
	b.StopTimer()
	s.write("fix counters", func(tx *bolt.Tx, st *state) error {
		st.count, st.bytes = 0, 0
		return tx.Bucket(bucketOutbox).ForEach(func(k, v []byte) error {
			st.count++
			st.bytes += int64(len(k) + len(v) + leafOverhead)
			return nil
		})
	})
}

// BenchmarkAppendNoSync: group commit without fsync, to show what the
// fsync costs. Not durable.
func BenchmarkAppendNoSync(b *testing.B) {
	s, _ := mustOpen(b, Options{MaxBytes: 4 << 30, NoSync: true})
	ev := benchEvent()
	runWriters(b, s, func() error {
		_, err := s.Append(context.Background(), ev)
		return err
	})
}

// bulkLoad appends n events in large transactions (fast set-up for the
// replay benchmarks).
func bulkLoad(b *testing.B, s *Store, n int) {
	b.Helper()
	enc, err := encodeEvent(benchEvent())
	if err != nil {
		b.Fatal(err)
	}
	for done := 0; done < n; {
		chunk := min(20000, n-done)
		err := s.write("bulk load", func(tx *bolt.Tx, st *state) error {
			ob := tx.Bucket(bucketOutbox)
			ob.FillPercent = 1.0
			for range chunk {
				id, err := ob.NextSequence()
				if err != nil {
					return err
				}
				if err := ob.Put(idKey(id), enc); err != nil {
					return err
				}
				st.count++
				st.bytes += int64(8 + len(enc) + leafOverhead)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		done += chunk
	}
}

// replay reads and acknowledges every stored event, page by page, as the
// OSAP client does after an outage, calling sample after each page.
func replay(b *testing.B, s *Store, page int, sample func()) int {
	var after uint64
	n := 0
	ids := make([]uint64, 0, page)
	for {
		recs, err := s.Pending(after, page)
		if err != nil {
			b.Fatal(err)
		}
		if len(recs) == 0 {
			return n
		}
		ids = ids[:0]
		for _, r := range recs {
			ids = append(ids, r.ID)
		}
		if err := s.Ack(ids...); err != nil {
			b.Fatal(err)
		}
		after = recs[len(recs)-1].ID
		n += len(recs)
		if sample != nil {
			sample()
		}
	}
}

// BenchmarkReplay: read and acknowledge b.N stored events in pages of 500
// (one durable Ack per page).
func BenchmarkReplay(b *testing.B) {
	s, _ := mustOpen(b, Options{MaxBytes: 4 << 30})
	bulkLoad(b, s, b.N)
	b.ResetTimer()
	start := time.Now()
	if n := replay(b, s, 500, nil); n != b.N {
		b.Fatalf("replayed %d, want %d", n, b.N)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkBacklog1M: a backlog of 1,000,000 events (STORE_BACKLOG
// overrides) is stored, then replayed in pages of 1000; it reports the
// file size per million events and the heap growth during the replay
// (peak HeapAlloc over the baseline after a GC, sampled after every page).
// Run it with -benchtime 1x.
func BenchmarkBacklog1M(b *testing.B) {
	n := 1_000_000
	if v := envUint("STORE_BACKLOG"); v != 0 {
		n = int(v)
	}
	for range b.N {
		b.StopTimer()
		first, path := mustOpen(b, Options{MaxBytes: 4 << 30})
		bulkLoad(b, first, n)
		size := fileSize(b, path)
		// Reopen: Open checks the whole file (bbolt's tx.Check).
		if err := first.Close(); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		s, err := Open(path, Options{MaxBytes: 4 << 30, Logger: quietLogger(b)})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(t0).Seconds(), "open-s")
		defer s.Close()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base, peak := ms.HeapAlloc, ms.HeapAlloc
		b.StartTimer()
		start := time.Now()
		got := replay(b, s, 1000, func() {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		})
		el := time.Since(start)
		b.StopTimer()
		if got != n {
			b.Fatalf("replayed %d, want %d", got, n)
		}
		b.ReportMetric(float64(size)/float64(n)*1e6/(1<<20), "MiB/1M-events")
		b.ReportMetric(float64(peak-base)/(1<<20), "heap-growth-MiB")
		b.ReportMetric(float64(n)/el.Seconds(), "replay-events/s")
		b.ReportMetric(float64(s.Stats().Count), "left")
	}
}

// BenchmarkFsync measures the disk under the store: one 4 KiB write and
// fsync, in the directory the other benchmarks use. A commit costs two
// of these, which bounds BenchmarkAppendDurable at about
// 64 / (2 × this) events/s.
func BenchmarkFsync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "fsync"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	page := make([]byte, 4096)
	b.ResetTimer()
	for i := range b.N {
		if _, err := f.WriteAt(page, int64(i%64)*4096); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/fsync")
}
