package delivery

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/osapgw/osapgw/internal/backoff"
	"github.com/osapgw/osapgw/model"
	"github.com/osapgw/osapgw/store"
)

// PictureUploader uploads a picture to the platform's picture service
// (binding 2.7; upstream.Session). It reads body from its start; size and
// sum are the body's length and SHA-256. It returns the picture's id, or
// an error wrapping ErrNoPictureService when the platform offers no
// picture service, ErrPictureRefused when the service refused the
// picture for good (a 4xx: retrying would not help); any other error is
// taken as passing (the session went down, the service stayed busy after
// the uploader's own retries) and the upload is tried again.
type PictureUploader interface {
	UploadPicture(ctx context.Context, dev string, body io.ReadSeeker, size int64, sum [sha256.Size]byte) (id string, err error)
}

// Errors a PictureUploader wraps to say that retrying is useless.
var (
	// ErrNoPictureService is wrapped by an upload's error when the
	// platform offers no picture service.
	ErrNoPictureService = errors.New("no picture service")
	// ErrPictureRefused is wrapped by an upload's error when the picture
	// service refused the picture for good.
	ErrPictureRefused = errors.New("picture refused")
)

// PictureStore keeps events' pictures beside the outbox (store.Store). An
// Outbox that does not implement it keeps none: events that ask for a
// picture are sent without one.
type PictureStore interface {
	AttachPicture(ctx context.Context, id uint64, r io.Reader) error
	FailPicture(id uint64, reason string) error
	SetPictureID(id uint64, pictureID string) error
	OpenPicture(id uint64) (io.ReadSeekCloser, error)
}

// Reasons the stream gives in picture_error.
const (
	reasonTimeout   = "timeout"
	reasonNoService = "no picture service"
	reasonBusy      = "busy: too many pictures being taken"
	reasonNoSpool   = "no picture spool"
	reasonNoSpace   = "no space"
)

// capture is a picture to take for a stored event.
type capture struct {
	id   uint64
	take model.PictureFunc
}

// captureLoop takes the pictures Append asks for, at most
// Config.MaxCaptures at once (the others wait their turn), each on a
// goroutine of its own bounded by PictureWait, until ctx ends; then it
// cancels those in progress and waits for them. A picture still waiting
// then is taken by no one: after a restart its event says so.
func (s *Stream) captureLoop(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, s.cfg.MaxCaptures)
	for {
		var c capture
		select {
		case <-ctx.Done():
			return
		case c = <-s.captures:
		}
		// Wait for a free slot: cameras that fire at once (a site's
		// motion detectors all see the same person) queue here, each
		// still bounded by PictureWait from its event's capture.
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s.takePicture(ctx, c)
		}()
	}
}

// askPictures hands the pictures of the stored events to captureLoop.
// When it is not running, or too far behind, the picture is given up.
func (s *Stream) askPictures(ids []uint64, evs []model.EventOccurrence) {
	for i, ev := range evs {
		if ev.Picture == nil || i >= len(ids) {
			continue
		}
		select {
		case s.captures <- capture{id: ids[i], take: ev.Picture}:
		default:
			s.failPicture(ids[i], reasonBusy)
		}
	}
}

// takePicture takes one picture and attaches it to its event, or records
// why it could not.
func (s *Stream) takePicture(ctx context.Context, c capture) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PictureWait)
	defer cancel()
	err := s.attach(ctx, c)
	switch {
	case err == nil:
		s.cfg.Metrics.Pictures.WithLabelValues("taken").Inc()
	case errors.Is(err, store.ErrNotPending):
		// The event went without it (timeout) or is gone.
		s.log.Debug("picture taken too late", "id", c.id)
	default:
		reason := err.Error()
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			reason = reasonTimeout
		case errors.Is(err, store.ErrNoSpace):
			reason = reasonNoSpace
		}
		s.log.Info("picture not taken", "id", c.id, "err", err)
		s.failPicture(c.id, reason)
	}
	s.kick()
}

func (s *Stream) attach(ctx context.Context, c capture) error {
	rc, err := c.take(ctx)
	if err != nil {
		return fmt.Errorf("take picture: %w", err)
	}
	defer rc.Close()
	if err := s.pics.AttachPicture(ctx, c.id, rc); err != nil {
		if ctx.Err() != nil && !errors.Is(err, store.ErrNotPending) {
			return ctx.Err()
		}
		return err
	}
	return nil
}

// failPicture records why event id has no picture; an event whose picture
// is settled already is left alone.
func (s *Stream) failPicture(id uint64, reason string) {
	s.cfg.Metrics.Pictures.WithLabelValues("error").Inc()
	if err := s.pics.FailPicture(id, reason); err != nil && !errors.Is(err, store.ErrNotPending) {
		s.log.Warn("record a missing picture", "id", id, "err", err)
	}
}

// pictureOf settles the picture of r before r is sent, keeping the
// stream's order: it returns the picture ids or the error to send with r.
// When the picture is still pending and PictureWait (from the capture
// time) has not passed, it returns the time to look again; ok false means
// the round must end (the session went down, ctx ended) and r be tried
// again later.
func (s *Stream) pictureOf(ctx context.Context, up Publisher, r store.Record) (ids []string, perr string, again time.Time, ok bool) {
	p := r.Picture
	switch {
	case s.pics == nil:
		return nil, reasonNoSpool, time.Time{}, true
	case p.ID != "":
		return []string{p.ID}, "", time.Time{}, true
	case p.Err != "":
		return nil, p.Err, time.Time{}, true
	case p.Pending:
		now := s.cfg.Now()
		if deadline := r.At.Add(s.cfg.PictureWait); now.Before(deadline) {
			return nil, "", deadline, true
		}
		err := s.pics.FailPicture(r.ID, reasonTimeout)
		if errors.Is(err, store.ErrNoSpace) {
			// The disk is full: the picture could not be kept, nor its
			// loss recorded. The event goes without it rather than hold
			// the stream until there is space; if the gateway restarts
			// before its acknowledgement, it goes again, with
			// PictureRestarted.
			s.cfg.Metrics.Pictures.WithLabelValues("error").Inc()
			return nil, reasonNoSpace, time.Time{}, true
		}
		if err != nil {
			// Attached meanwhile (or the store failed): look again.
			s.log.Debug("give up a picture", "id", r.ID, "err", err)
			return nil, "", now, true
		}
		s.cfg.Metrics.Pictures.WithLabelValues("error").Inc()
		return nil, reasonTimeout, time.Time{}, true
	}
	return s.upload(ctx, up, r)
}

// upload sends r's attached picture to the picture service and records
// its id, trying again while the session is up, for at most UploadWait.
func (s *Stream) upload(ctx context.Context, up Publisher, r store.Record) (ids []string, perr string, again time.Time, ok bool) {
	give := func(reason string) ([]string, string, time.Time, bool) {
		s.failPicture(r.ID, reason)
		return nil, reason, time.Time{}, true
	}
	if s.cfg.Pictures == nil {
		return give(reasonNoService)
	}
	f, err := s.pics.OpenPicture(r.ID)
	if err != nil {
		return give("spool: " + err.Error())
	}
	defer f.Close()
	bo := backoff.Backoff{Min: s.cfg.uploadRetry, Max: 30 * s.cfg.uploadRetry, Jitter: true}
	stop := time.Now().Add(s.cfg.UploadWait)
	for {
		if _, err = f.Seek(0, io.SeekStart); err != nil {
			return give("spool: " + err.Error())
		}
		var id string
		id, err = s.cfg.Pictures.UploadPicture(ctx, r.Dev, f, r.Picture.Size, r.Picture.Sum)
		switch {
		case err == nil && id != "":
			if err := s.pics.SetPictureID(r.ID, id); err != nil {
				s.log.Warn("record an uploaded picture's id", "id", r.ID, "err", err)
			}
			s.cfg.Metrics.Pictures.WithLabelValues("uploaded").Inc()
			return []string{id}, "", time.Time{}, true
		case err == nil:
			err = errors.New("picture service gave no id")
		case errors.Is(err, ErrNoPictureService):
			return give(reasonNoService)
		case errors.Is(err, ErrPictureRefused):
			return give("upload: " + err.Error())
		}
		if ctx.Err() != nil || !up.Connected() {
			s.log.Debug("picture upload interrupted", "id", r.ID, "err", err)
			return nil, "", time.Time{}, false
		}
		delay := bo.Next()
		if time.Now().Add(delay).After(stop) {
			s.log.Warn("picture upload given up", "id", r.ID, "err", err)
			return give("upload: " + err.Error())
		}
		s.log.Info("picture upload failed; trying again", "id", r.ID, "err", err, "retry_in_seconds", delay.Seconds())
		if !backoff.Sleep(ctx, delay) {
			return nil, "", time.Time{}, false
		}
	}
}
