package store

import (
	"fmt"
	"os"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// maxBatch bounds how many requests share one write transaction.
const maxBatch = 4096

// request is one write handed to the committer. Exactly one of enc and fn
// is set: enc is an encoded outbox record to append, fn any other write,
// which may update the outbox state st.
type request struct {
	enc   []byte
	fn    func(tx *bolt.Tx, st *state) error
	place string
	// compact asks for a compaction after the batch is committed.
	compact bool
	id      uint64
	err     error
	done    chan struct{}
}

// submit hands r to the committer and waits for its result. The caller's
// context ends only the wait: once handed over, the write may still be
// committed.
func (s *Store) submit(done <-chan struct{}, r *request) error {
	r.done = make(chan struct{})
	select {
	case s.reqs <- r:
	case <-s.quit:
		return ErrClosed
	case <-done:
		return errCanceled
	}
	select {
	case <-r.done:
		return r.err
	case <-s.done:
		// The committer finished; it may have taken r just before.
		select {
		case <-r.done:
			return r.err
		default:
			return ErrClosed
		}
	case <-done:
		return errCanceled
	}
}

// errCanceled is replaced by the context's error in the callers.
var errCanceled = fmt.Errorf("canceled")

// write runs fn through the committer (group commit) and waits until it is
// durable.
func (s *Store) write(place string, fn func(tx *bolt.Tx, st *state) error) error {
	r := &request{fn: fn, place: place}
	if err := s.submit(nil, r); err != nil {
		return err
	}
	return nil
}

// commitLoop is the committer: the only goroutine that writes to the file.
// It takes every request waiting (up to maxBatch), commits them in one
// transaction (one fsync), and answers them. It also expires old events
// and compacts the file. It returns when Close is called, after answering
// the requests already queued.
func (s *Store) commitLoop() {
	defer close(s.done)
	tick := time.NewTicker(s.opts.tick)
	defer tick.Stop()
	s.nextCompactCheck = time.Now().Add(s.opts.compactEvery)
	batch := make([]*request, 0, maxBatch)
	linger := &lingerState{timer: time.NewTimer(time.Hour)}
	linger.timer.Stop()
	defer linger.timer.Stop()
	for {
		// Clear the answered requests: their closures hold what their
		// writers wrote (values, events), which the backing array would
		// otherwise keep alive until overwritten.
		clear(batch)
		batch = batch[:0]
		select {
		case r := <-s.reqs:
			batch = append(batch, r)
		case <-tick.C:
			s.expire()
			if !time.Now().Before(s.nextCompactCheck) {
				s.maybeCompact()
			}
			continue
		case <-s.quit:
			for {
				select {
				case r := <-s.reqs:
					batch = append(batch, r)
					if len(batch) == maxBatch {
						s.commit(batch)
						clear(batch)
						batch = batch[:0]
					}
					continue
				default:
				}
				break
			}
			if len(batch) > 0 {
				s.commit(batch)
			}
			return
		}
		batch = s.gather(batch, linger)
		start := time.Now()
		s.commit(batch)
		// The writers just answered will mostly come back with their next
		// write: wait for about as many (never longer than a fraction of a
		// commit), so that they share the next fsync instead of splitting
		// into two alternating groups. Alone, a writer never waits.
		linger.d = min(time.Since(start)/2, maxLinger)
		linger.want = len(batch)
		if !time.Now().Before(s.nextCompactCheck) {
			s.maybeCompact()
		}
	}
}

// maxLinger bounds how long the committer waits for more requests.
const maxLinger = 2 * time.Millisecond

type lingerState struct {
	timer *time.Timer
	d     time.Duration // how long to wait at most
	want  int           // how many requests the last batch had
}

// gather adds to batch every request already waiting, then waits up to
// l.d for more while the batch is smaller than the last one.
func (s *Store) gather(batch []*request, l *lingerState) []*request {
	for len(batch) < maxBatch {
		select {
		case r := <-s.reqs:
			batch = append(batch, r)
			continue
		default:
		}
		break
	}
	if len(batch) >= l.want || l.d <= 0 {
		return batch
	}
	l.timer.Reset(l.d)
	defer l.timer.Stop()
	for len(batch) < min(l.want, maxBatch) {
		select {
		case r := <-s.reqs:
			batch = append(batch, r)
		case <-l.timer.C:
			return batch
		case <-s.quit:
			return batch
		}
	}
	return batch
}

// commit runs batch in one transaction and answers every request. If the
// transaction fails, each request is retried alone, so that one failing
// write does not fail the others.
func (s *Store) commit(batch []*request) {
	var compacts []*request
	writes := batch[:0:0]
	for _, r := range batch {
		if r.compact {
			compacts = append(compacts, r)
		} else {
			writes = append(writes, r)
		}
	}
	if len(compacts) > 0 {
		if len(writes) > 0 {
			s.commit(writes)
		}
		err := s.compact()
		for _, r := range compacts {
			r.err = err
			close(r.done)
		}
		return
	}
	err := s.commitTx(batch)
	if err != nil && len(batch) > 1 {
		for _, r := range batch {
			s.commit([]*request{r})
		}
		return
	}
	appends := slices.ContainsFunc(batch, func(r *request) bool { return r.enc != nil })
	s.noteWrite(err, appends)
	for _, r := range batch {
		if err != nil {
			r.err = wrapWrite(r.place, err)
			r.id = 0
		}
		close(r.done)
	}
}

func (s *Store) commitTx(batch []*request) error {
	t0 := time.Now()
	defer func() {
		s.commits.Add(1)
		s.commitReqs.Add(int64(len(batch)))
		s.commitNanos.Add(int64(time.Since(t0)))
	}()
	s.dbmu.RLock()
	db, dead := s.db, s.dead
	s.dbmu.RUnlock()
	if dead != nil {
		return dead
	}
	s.stmu.Lock()
	st := s.state
	s.stmu.Unlock()
	st.added, st.unlink = nil, nil
	var dropped uint64
	err := db.Update(func(tx *bolt.Tx) error {
		ob := tx.Bucket(bucketOutbox)
		ob.FillPercent = 1.0 // ids only grow: pack pages full
		for _, r := range batch {
			if r.fn != nil {
				if err := r.fn(tx, &st); err != nil {
					return err
				}
				continue
			}
			id, err := ob.NextSequence()
			if err != nil {
				return err
			}
			if err := ob.Put(idKey(id), r.enc); err != nil {
				return err
			}
			r.id = id
			st.count++
			st.bytes += int64(8 + len(r.enc) + leafOverhead)
		}
		var err error
		dropped, err = s.enforce(ob, &st)
		if err != nil {
			return err
		}
		st.oldest = oldest(ob)
		return saveState(tx.Bucket(bucketMeta), st)
	})
	if err != nil {
		return err
	}
	s.applySpool(st)
	st.added, st.unlink = nil, nil
	s.stmu.Lock()
	s.state = st
	s.stmu.Unlock()
	s.noteDrops(dropped, st)
	return nil
}

// enforce drops the oldest pictures while the outbox and the spool
// together are over MaxBytes, then the oldest events while the outbox is
// over MaxBytes or they are older than MaxAge, and returns how many
// events it dropped.
func (s *Store) enforce(ob *bolt.Bucket, st *state) (uint64, error) {
	if err := s.dropPictures(ob, st); err != nil {
		return 0, err
	}
	cutoff := s.opts.Now().Add(-s.opts.MaxAge)
	var n uint64
	c := ob.Cursor()
	for k, v := c.First(); k != nil; k, v = c.First() {
		at, _ := decodeEventAt(v)
		if st.bytes <= s.opts.MaxBytes && !at.Before(cutoff) {
			break
		}
		size := int64(len(k) + len(v) + leafOverhead)
		if id, ok := keyID(k); ok {
			s.unspool(st, id)
		}
		if err := c.Delete(); err != nil {
			return 0, err
		}
		st.count--
		st.bytes -= size
		n++
	}
	st.dropped += n
	st.overflow += n
	return n, nil
}

// noteDrops logs an overflow episode once when it starts and once when it
// ends.
func (s *Store) noteDrops(dropped uint64, st state) {
	if dropped > 0 {
		s.episodeDrops += dropped
		if !s.overflowing {
			s.overflowing = true
			s.log.Warn("outbox full or events too old; dropping the oldest events",
				"dropped", dropped, "max_bytes", s.opts.MaxBytes, "max_age_seconds", s.opts.MaxAge.Seconds())
		}
		return
	}
	if s.overflowing && st.bytes < s.opts.MaxBytes*9/10 {
		s.log.Info("outbox has room again", "dropped_in_episode", s.episodeDrops)
		s.overflowing = false
		s.episodeDrops = 0
	}
}

func saveState(meta *bolt.Bucket, st state) error {
	for _, kv := range []struct {
		k []byte
		v uint64
	}{
		{keyCount, uint64(st.count)},
		{keyBytes, uint64(st.bytes)},
		{keyDropped, st.dropped},
		{keyOverflow, st.overflow},
		{keyCorruptions, st.corruptions},
		{keyPicDropped, st.picDropped},
	} {
		if err := putU64(meta, kv.k, kv.v); err != nil {
			return err
		}
	}
	return nil
}

// expire drops events older than MaxAge when no append does it.
func (s *Store) expire() {
	s.stmu.Lock()
	old := s.state.count > 0 && s.state.oldest.Before(s.opts.Now().Add(-s.opts.MaxAge))
	s.stmu.Unlock()
	if !old {
		return
	}
	err := s.commitTx(nil)
	s.noteWrite(err, false)
	if err != nil {
		s.log.Warn("expire old events", "err", err)
	}
}

// fileSize returns the size of the store file.
func (s *Store) fileSize() (int64, error) {
	fi, err := os.Stat(s.path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
