package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Event is one event to keep in the outbox.
type Event struct {
	Dev      string         // sub-device id ("" for the gateway itself)
	Resource string         // resource of the sub-device
	Name     string         // event name, e.g. "motion"
	Params   map[string]any // parameters; nil or empty for none. Must encode with encoding/json.
	At       time.Time      // capture time; zero means now
	// Picture says a picture will follow (AttachPicture): the event is
	// stored with its picture pending.
	Picture bool
}

// Record is a stored event with its id.
type Record struct {
	ID       uint64
	Dev      string
	Resource string
	Name     string
	// Params is the parameters as a JSON object, byte for byte as
	// json.Marshal(Event.Params) wrote it (keys sorted), or nil when the event had none.
	Params []byte
	At     time.Time
	// Picture is the state of the event's picture, nil when it asked for
	// none.
	Picture *Picture
}

// OutboxStats describes the outbox. Count, Bytes and Oldest describe the
// events stored; Dropped counts events dropped by the bounds over the
// file's life; Corruptions counts damaged files moved aside and damaged
// records removed.
//
// Pictures and PictureBytes describe the picture spool, and
// PicturesDropped counts pictures dropped by the bound over the file's
// life (their events stay).
//
// NoSpace counts writes of any kind (appends, acknowledgements, values,
// pictures) refused for lack of space since Open (not stored: the disk
// was full); DiskFull says the latest append was refused so (events are
// being lost) and none has succeeded since.
type OutboxStats struct {
	Count       int
	Bytes       int64
	Oldest      time.Time
	Dropped     uint64
	Corruptions uint64

	Pictures        int
	PictureBytes    int64
	PicturesDropped uint64

	NoSpace  uint64
	DiskFull bool
}

// Append stores ev and returns its id, once it is durable (fsync'd):
// concurrent appends share one transaction and one fsync (group commit).
// Ids are strictly increasing in commit order and never reused. If the
// outbox would exceed its bounds, the oldest events are dropped. It
// returns an error wrapping ErrInvalid for an event without a resource or
// name, with NUL in its device, resource or name, or whose Params
// encoding/json cannot encode; ErrTooLarge for an event over
// MaxEventBytes; an error wrapping ErrNoSpace if the disk is full;
// ErrClosed after Close; and ctx.Err() if ctx ends first, in which case
// the event may still be stored (and then delivered).
func (s *Store) Append(ctx context.Context, ev Event) (uint64, error) {
	ids, err := s.AppendBatch(ctx, []Event{ev})
	if err != nil {
		return 0, err
	}
	return ids[0], nil
}

// Pending returns up to max stored events with ids above after, oldest
// first. Events stored by an osapgw from before the outbox had its own
// record format come back the same way, their parameters byte for byte as
// that version encoded them. An event whose picture was still pending
// when the store was opened comes back with Picture.Err PictureRestarted.
// Pass after = 0 to start at the oldest, then the last id returned
// to page on. A record that cannot be decoded is removed, logged and
// counted in Stats().Corruptions, and skipped. The error wraps ErrClosed
// after Close.
func (s *Store) Pending(after uint64, max int) ([]Record, error) {
	if max <= 0 {
		return nil, nil
	}
	var out []Record
	var bad []uint64
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.Seek(idKey(after + 1)); k != nil && len(out) < max; k, v = c.Next() {
			id, ok := keyID(k)
			if !ok {
				continue
			}
			rec, err := decodeEvent(id, v)
			if err != nil {
				s.log.Error("removing a damaged outbox record", "id", id, "err", err)
				bad = append(bad, id)
				continue
			}
			if p := rec.Picture; p != nil && p.Pending && id <= s.bootSeq {
				rec.Picture = &Picture{Err: PictureRestarted}
			}
			out = append(out, rec)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: pending: %w", err)
	}
	if len(bad) > 0 {
		if err := s.remove("remove damaged records", bad, true); err != nil {
			return out, err
		}
	}
	return out, nil
}

// Ack removes the events with the given ids, once the platform has
// acknowledged them, and returns when that is durable. Ids not stored
// (already acknowledged, dropped, never issued) are ignored. On error
// (wrapping ErrNoSpace, or ErrClosed after Close) the events stay stored
// and are sent again.
func (s *Store) Ack(ids ...uint64) error {
	if len(ids) == 0 {
		return nil
	}
	return s.remove("ack", ids, false)
}

func (s *Store) remove(place string, ids []uint64, damaged bool) error {
	err := s.write(place, func(tx *bolt.Tx, st *state) error {
		ob := tx.Bucket(bucketOutbox)
		for _, id := range ids {
			k := idKey(id)
			v := ob.Get(k)
			if v == nil {
				continue
			}
			if err := ob.Delete(k); err != nil {
				return err
			}
			s.unspool(st, id)
			st.count--
			st.bytes -= int64(len(k) + len(v) + leafOverhead)
			if damaged {
				st.corruptions++
			}
		}
		return nil
	})
	if errors.Is(err, ErrClosed) {
		return fmt.Errorf("store: %s: %w", place, err)
	}
	return err
}

// Stats returns the outbox's figures. It is cheap: they are kept in memory.
func (s *Store) Stats() OutboxStats {
	s.stmu.Lock()
	defer s.stmu.Unlock()
	return OutboxStats{
		Count:       s.state.count,
		Bytes:       s.state.bytes,
		Oldest:      s.state.oldest,
		Dropped:     s.state.dropped,
		Corruptions: s.state.corruptions,

		Pictures:        s.state.pictures,
		PictureBytes:    s.state.picBytes,
		PicturesDropped: s.state.picDropped,

		NoSpace:  s.noSpace.Load(),
		DiskFull: s.full.Load(),
	}
}

// TakeOverflow returns the number of events dropped since the last call
// (across restarts: the count is stored) and resets it, for the
// outbox.overflow event the gateway reports when it reconnects. If the
// reset cannot be stored, it logs a warning and returns 0; the count is
// then reported by a later call.
func (s *Store) TakeOverflow() uint64 {
	var n uint64
	err := s.write("take overflow", func(tx *bolt.Tx, st *state) error {
		n = st.overflow
		st.overflow = 0
		return nil
	})
	if err != nil {
		s.log.Warn("reset the overflow count", "err", err)
		return 0
	}
	return n
}
