package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// compactSuffix names the file a compaction writes before renaming it over
// the store.
const compactSuffix = ".compact"

// compactRetry is how long the committer waits after a failed compaction
// (say, on a full disk) before it tries again.
const compactRetry = 10 * time.Minute

// compactTxBytes bounds each transaction of the copy, to bound memory.
const compactTxBytes = 4 << 20

// Compact rewrites the file without its free pages and returns when the
// compacted file is in place. Writes wait meanwhile. The store compacts
// itself when the file grows past twice its live data (and past 32 MiB);
// Compact is for tests and operators. It returns ctx.Err() if ctx ends
// before the compaction starts.
func (s *Store) Compact(ctx context.Context) error {
	return s.submit(ctx.Done(), &request{place: "compact", fn: func(*bolt.Tx, *state) error { return nil }, compact: true})
}

// maybeCompact compacts when the file is well past its live data.
func (s *Store) maybeCompact() {
	s.nextCompactCheck = time.Now().Add(s.opts.compactEvery)
	size, err := s.fileSize()
	if err != nil {
		s.log.Warn("stat store file", "err", err)
		return
	}
	s.stmu.Lock()
	live := s.state.bytes + s.otherLive + 1<<20
	s.stmu.Unlock()
	if size < s.opts.compactMinBytes || size < 2*live {
		return
	}
	if err := s.compact(); err != nil {
		s.nextCompactCheck = time.Now().Add(compactRetry)
		s.log.Warn("compaction failed; the store goes on with the uncompacted file",
			"err", err, "retry_in_seconds", compactRetry.Seconds())
	}
}

// compact copies the file into path.compact, fsyncs it, renames it over the
// store and reopens it. If the process dies before the rename, the old file
// is intact and Open removes the leftover; after the rename, the new file
// is complete. Runs on the committer goroutine only.
func (s *Store) compact() error {
	if s.dead != nil {
		return s.dead
	}
	start := time.Now()
	before, _ := s.fileSize()
	tmp := s.path + compactSuffix
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("store: compact: %w", err)
	}
	s.dbmu.RLock()
	src := s.db
	s.dbmu.RUnlock()
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: time.Second, NoSync: s.opts.NoSync, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return wrapWrite("compact", err)
	}
	err = bolt.Compact(dst, src, compactTxBytes)
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.path)
	}
	if err != nil {
		os.Remove(tmp)
		return wrapWrite("compact", err)
	}
	if err := syncDir(filepath.Dir(s.path)); err != nil {
		s.log.Warn("fsync store directory after compaction", "err", err)
	}
	s.dbmu.Lock()
	defer s.dbmu.Unlock()
	if err := s.db.Close(); err != nil {
		s.log.Warn("close the file replaced by compaction", "err", err)
	}
	db, err := s.openBolt(s.path)
	if err != nil {
		s.db = nil
		s.dead = fmt.Errorf("store: reopen after compaction: %w", err)
		s.log.Error("store unusable after compaction; restart the daemon", "err", err)
		return s.dead
	}
	s.db = db
	after, _ := s.fileSize()
	// What the file holds beyond the outbox (values, credentials, meta)
	// counts as live from now on, so that a large values bucket does not
	// trigger a compaction every check. It is what those buckets' pages
	// use, not the file's size less the outbox: bbolt grows a file in
	// steps, and a compaction while a backlog waits would count the step's
	// slack as live, so that once the backlog is acknowledged the file
	// would never be twice its "live" data again.
	other := s.bucketsInUse(bucketValues, bucketCreds, bucketMeta)
	s.stmu.Lock()
	s.otherLive = other
	s.stmu.Unlock()
	s.log.Info("compacted store", "bytes_before", before, "bytes_after", after, "duration_seconds", time.Since(start).Seconds())
	return nil
}

// bucketsInUse returns the bytes the pages of the named buckets use.
func (s *Store) bucketsInUse(names ...[]byte) int64 {
	var n int64
	_ = s.db.View(func(tx *bolt.Tx) error {
		for _, name := range names {
			if b := tx.Bucket(name); b != nil {
				st := b.Stats()
				n += int64(st.BranchInuse + st.LeafInuse + st.InlineBucketInuse)
			}
		}
		return nil
	})
	return n
}
