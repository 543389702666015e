package store

import (
	"context"
	"errors"
	"fmt"
)

// AppendBatch stores evs in order and returns their ids, once all are
// durable. The events are handed to the committer together, so a batch
// costs about one fsync instead of one per event: an adapter that captures
// many events at once (a PullMessages answer, a burst of threshold
// crossings) is not held to one event per fsync. Every event is checked
// first, as Append checks it: if one is invalid (ErrInvalid) or too large
// (ErrTooLarge), none is stored. On a later error, the events before the
// failing one may be stored (their ids are returned); the rest are not, as
// with Append.
func (s *Store) AppendBatch(ctx context.Context, evs []Event) ([]uint64, error) {
	reqs := make([]*request, 0, len(evs))
	for _, ev := range evs {
		if ev.At.IsZero() {
			ev.At = s.opts.Now()
		}
		enc, err := encodeEvent(ev)
		if err != nil {
			return nil, fmt.Errorf("store: append: device %q: %w", ev.Dev, err)
		}
		if n := int64(8 + len(enc) + leafOverhead); n > MaxEventBytes || n > s.opts.MaxBytes {
			return nil, fmt.Errorf("store: append: %d bytes: %w", n, ErrTooLarge)
		}
		reqs = append(reqs, &request{enc: enc, place: "append", done: make(chan struct{})})
	}
	ids := make([]uint64, 0, len(reqs))
	sent := 0
	var err error
enqueue:
	for _, r := range reqs {
		select {
		case s.reqs <- r:
			sent++
		case <-s.quit:
			err = ErrClosed
			break enqueue
		case <-ctx.Done():
			err = errCanceled
			break enqueue
		}
	}
	for _, r := range reqs[:sent] {
		select {
		case <-r.done:
		case <-s.done:
			select {
			case <-r.done:
			default:
				return ids, fmt.Errorf("store: append: %w", ErrClosed)
			}
		case <-ctx.Done():
			return ids, fmt.Errorf("store: append: %w", ctx.Err())
		}
		if r.err != nil {
			return ids, r.err
		}
		ids = append(ids, r.id)
	}
	if errors.Is(err, errCanceled) {
		return ids, fmt.Errorf("store: append: %w", ctx.Err())
	}
	if err != nil {
		return ids, fmt.Errorf("store: append: %w", err)
	}
	return ids, nil
}
