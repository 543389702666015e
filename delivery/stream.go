package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/osapgw/osapgw/model"
	"github.com/osapgw/osapgw/osap"
	"github.com/osapgw/osapgw/store"
)

// Outbox is the durable event queue (store.Store).
type Outbox interface {
	AppendBatch(ctx context.Context, evs []store.Event) ([]uint64, error)
	Pending(after uint64, max int) ([]store.Record, error)
	Ack(ids ...uint64) error
	TakeOverflow() uint64
}

// Publisher is the session to the platform (upstream.Session, or the
// bridge's metered view of it).
type Publisher interface {
	// Publish seals and sends a business message; it returns an error at
	// once when the session is not connected. done is called once: on
	// PUBACK for QoS 1, or with an error.
	Publish(kind string, h osap.Header, body any, qos byte, done func(error)) error
	// Connected reports whether the session is registered now.
	Connected() bool
}

// Config tunes a Stream. Zero values take the defaults.
type Config struct {
	// Window is how many events may await their PUBACK at once (64).
	Window int
	// Logger receives the stream's logs (discarded when nil).
	Logger *slog.Logger
	// Now is the clock that dates events captured without a time
	// (time.Now when nil).
	Now func() time.Time
	// Metrics are updated as the stream works (unregistered ones when nil).
	Metrics *Metrics

	// Pictures uploads events' pictures (binding 2.7); nil: the platform
	// offers no picture service, and events that ask for a picture carry
	// picture_error "no picture service".
	Pictures PictureUploader
	// PictureWait bounds how long an event whose picture is being taken
	// waits for it, from its capture time, before it goes without (5 s).
	// Events behind it wait too: the order is kept.
	PictureWait time.Duration
	// UploadWait bounds how long an upload is tried again, while the
	// session is up, before the event goes without its picture (1 min).
	UploadWait time.Duration
	// MaxCaptures bounds the pictures being taken at once (16); the
	// others wait their turn, up to 64 queued; beyond, a picture is given
	// up ("busy").
	MaxCaptures int

	// uploadRetry is the first delay before an upload is tried again
	// (1 s; tests shorten it).
	uploadRetry time.Duration
}

func (c *Config) defaults() {
	if c.Window <= 0 {
		c.Window = 64
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(nil)
	}
	if c.PictureWait <= 0 {
		c.PictureWait = 5 * time.Second
	}
	if c.UploadWait <= 0 {
		c.UploadWait = time.Minute
	}
	if c.MaxCaptures <= 0 {
		c.MaxCaptures = 16
	}
	if c.uploadRetry <= 0 {
		c.uploadRetry = time.Second
	}
}

// Stream is the gateway's ordered event stream. Its methods are safe for
// concurrent use.
type Stream struct {
	cfg  Config
	log  *slog.Logger
	ob   Outbox
	wake chan struct{} // a send round is due
	acks chan uint64   // ids acknowledged, for ackLoop
	// pics keeps pictures (the outbox, when it can); nil: none are taken.
	pics PictureStore
	// captures are the pictures to take, for captureLoop.
	captures chan capture

	// mu guards the send position: open, epoch, sentUpTo and inflight.
	// It is held only to read or move the position, never across a call
	// out.
	mu       sync.Mutex
	open     bool   // between Connected and Disconnected: events may go
	epoch    uint64 // counts connections and failed publishes
	sentUpTo uint64 // highest id published in this epoch
	inflight int    // events of this epoch awaiting their PUBACK

	// full logs the appends lost while the disk is full.
	full fullDisk
}

// fullDisk logs failed appends without flooding the log while the disk
// is full: the first loss of an episode at error, then a summary at most
// once a minute, and at info when an append succeeds again. Other
// failures are logged each time.
type fullDisk struct {
	mu       sync.Mutex
	since    time.Time // start of the episode; zero: none
	lastLog  time.Time
	lost     int // events lost in the episode
	sinceLog int // lost since the last log line
}

// fullLogEvery bounds how often a full disk is logged.
const fullLogEvery = time.Minute

// note records the outcome of an append of events of dev: err, and the
// number of events lost.
func (f *fullDisk) note(log *slog.Logger, now time.Time, dev string, lost int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case err == nil:
		if !f.since.IsZero() {
			log.Info("outbox writable again after a full disk", "lost", f.lost, "full_seconds", now.Sub(f.since).Seconds())
			f.since = time.Time{}
		}
	case !errors.Is(err, store.ErrNoSpace):
		log.Error("events lost: outbox append failed", "device", dev, "lost", lost, "err", err)
	case f.since.IsZero():
		log.Error("events lost: disk full, the outbox cannot store them; free space on the store's file system (they will be stored again once there is)",
			"device", dev, "lost", lost, "err", err)
		f.since, f.lastLog, f.lost, f.sinceLog = now, now, lost, 0
	default:
		f.lost += lost
		f.sinceLog += lost
		if now.Sub(f.lastLog) >= fullLogEvery {
			log.Error("events lost: disk still full", "lost", f.sinceLog, "lost_in_episode", f.lost,
				"full_seconds", now.Sub(f.since).Seconds(), "err", err)
			f.lastLog, f.sinceLog = now, 0
		}
	}
}

// New returns a stream over the outbox. Run it to send.
func New(cfg Config, ob Outbox) *Stream {
	cfg.defaults()
	pics, _ := ob.(PictureStore)
	return &Stream{
		cfg:      cfg,
		log:      cfg.Logger,
		ob:       ob,
		wake:     make(chan struct{}, 1),
		acks:     make(chan uint64, 4096),
		pics:     pics,
		captures: make(chan capture, 64),
	}
}

// Append stores events of sub-device dev ("" for the gateway itself)
// durably, in order, with one write, and returns once they are in the
// outbox; an event without a capture time is dated now. It returns how
// many were stored and, when some were not, the error: an event whose
// parameters do not encode is left out alone (logged), the others are
// stored; a failed write (disk full, store closed) loses the batch. Lost
// events are counted and logged. An event that asks for a picture
// (EventOccurrence.Picture) is stored with its picture pending; once it
// is stored, Run's capture loop takes the picture at once and attaches it.
func (s *Stream) Append(dev string, evs []model.EventOccurrence) (int, error) {
	recs := make([]store.Event, 0, len(evs))
	for _, ev := range evs {
		if ev.At.IsZero() {
			ev.At = s.cfg.Now()
		}
		recs = append(recs, store.Event{Dev: dev, Resource: ev.Resource, Name: ev.Event, Params: ev.Params, At: ev.At,
			Picture: ev.Picture != nil && s.pics != nil})
	}
	if len(recs) == 0 {
		return 0, nil
	}
	// The write must reach the disk even while the daemon stops: what was
	// captured is kept whatever the caller is doing, so no caller's
	// context may cancel it.
	ctx := context.Background()
	ids, err := s.ob.AppendBatch(ctx, recs)
	if errors.Is(err, store.ErrInvalid) && len(recs) > 1 {
		// One bad event refuses the batch: store them one by one so that
		// only the bad ones are lost.
		ids, err = s.appendEach(ctx, recs)
	}
	s.cfg.Metrics.Captured.Add(float64(len(ids)))
	if err != nil {
		lost := len(recs) - len(ids)
		s.cfg.Metrics.Lost.Add(float64(lost))
		s.cfg.Metrics.AppendErrors.WithLabelValues(appendReason(err)).Add(float64(lost))
	}
	s.full.note(s.log, s.cfg.Now(), dev, len(recs)-len(ids), err)
	if s.pics != nil && len(ids) == len(recs) {
		// (With some events left out, which id is whose is not known:
		// their pictures time out.)
		s.askPictures(ids, evs)
	}
	s.kick()
	return len(ids), err
}

// appendEach appends recs one at a time and returns the ids of those
// stored and the first error.
func (s *Stream) appendEach(ctx context.Context, recs []store.Event) ([]uint64, error) {
	var (
		ids   []uint64
		first error
	)
	for _, r := range recs {
		got, err := s.ob.AppendBatch(ctx, []store.Event{r})
		ids = append(ids, got...)
		if err != nil && first == nil {
			first = err
		}
	}
	return ids, first
}

// Run sends the outbox's events through up until ctx ends, and takes the
// pictures Append asks for; then it stops its loops and the pictures
// being taken, writes the acknowledgements that arrived to the outbox,
// and returns nil.
func (s *Stream) Run(ctx context.Context, up Publisher) error {
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); s.sendLoop(ctx, up) }()
	go func() { defer wg.Done(); s.ackLoop(ctx) }()
	go func() { defer wg.Done(); s.captureLoop(ctx) }()
	wg.Wait()
	return nil
}

// Connected opens the stream for a new session, in a new epoch: sending
// restarts from the oldest event in the outbox. Call it once the session
// has said what must go before the events (the bridge calls it after the
// topology and the kept attribute values). When the outbox dropped events
// since the last session, it first appends outbox.overflow, an event of
// the gateway itself that says how many.
func (s *Stream) Connected() {
	s.newEpoch(true)
	if n := s.ob.TakeOverflow(); n > 0 {
		_, _ = s.Append("", []model.EventOccurrence{{Resource: "outbox", Event: "outbox.overflow", Params: map[string]any{"dropped": n}, At: s.cfg.Now()}})
	}
	s.kick()
}

// Disconnected closes the stream in a new epoch: nothing is sent until
// Connected, and then from the oldest event in the outbox.
func (s *Stream) Disconnected() { s.newEpoch(false) }

func (s *Stream) newEpoch(open bool) {
	s.mu.Lock()
	s.open = open
	s.epoch++
	s.sentUpTo = 0
	s.inflight = 0
	s.mu.Unlock()
}

// kick asks the send loop for a round.
func (s *Stream) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// sendLoop publishes outbox events in id order, keeping at most Window of
// them awaiting PUBACK. It runs a round when kicked, and once a second in
// case a kick was missed while the session was down.
func (s *Stream) sendLoop(ctx context.Context, up Publisher) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	// again wakes the loop when an event waiting for its picture may go.
	again := time.NewTimer(time.Hour)
	again.Stop()
	defer again.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-tick.C:
		case <-again.C:
		}
		if next := s.sendSome(ctx, up); !next.IsZero() {
			again.Reset(max(time.Until(next), time.Millisecond))
		}
	}
}

// sendSome publishes pending events while the session is up and the
// window has room. It stops at an event still waiting for its picture and
// returns when to look again (zero: when kicked).
func (s *Stream) sendSome(ctx context.Context, up Publisher) time.Time {
	for ctx.Err() == nil && up.Connected() {
		s.mu.Lock()
		room := s.cfg.Window - s.inflight
		after, epoch, open := s.sentUpTo, s.epoch, s.open
		s.mu.Unlock()
		if room <= 0 || !open {
			return time.Time{}
		}
		recs, err := s.ob.Pending(after, room)
		if err != nil {
			s.log.Error("read outbox", "err", err)
			return time.Time{}
		}
		if len(recs) == 0 {
			return time.Time{}
		}
		for _, r := range recs {
			var pics []string
			var perr string
			if r.Picture != nil {
				var again time.Time
				var ok bool
				pics, perr, again, ok = s.pictureOf(ctx, up, r)
				if !ok {
					return time.Time{}
				}
				if !again.IsZero() {
					return again
				}
			}
			if !s.send(up, epoch, r, pics, perr) {
				return time.Time{}
			}
		}
	}
	return time.Time{}
}

// send publishes one record in epoch, with its pictures or picture error.
// It returns false when the round must end: the epoch changed, or the
// publish failed.
func (s *Stream) send(up Publisher, epoch uint64, r store.Record, pics []string, perr string) bool {
	id := r.ID
	if len(r.Params) > 0 && (r.Params[0] != '{' || !json.Valid(r.Params)) {
		// A damaged record would block every event behind it.
		s.cfg.Metrics.Lost.Inc()
		s.log.Error("event lost: its record in the outbox is damaged", "id", id, "device", r.Dev, "event", r.Name)
		s.mu.Lock()
		if s.epoch == epoch {
			s.sentUpTo = id
		}
		s.mu.Unlock()
		s.acks <- id
		return true
	}
	s.mu.Lock()
	if s.epoch != epoch {
		s.mu.Unlock()
		return false
	}
	s.inflight++
	s.sentUpTo = id
	s.mu.Unlock()
	h := osap.Header{ID: strconv.FormatUint(id, 10), TS: r.At.UnixMilli(), Type: osap.TypeEventReport, Dev: r.Dev}
	body := osap.EventReport{Resource: r.Resource, Event: r.Name, Params: r.Params, TS: r.At.UnixMilli(), Pictures: pics, PictureError: perr}
	err := up.Publish(osap.KindEvent, h, body, 1, func(err error) { s.published(epoch, id, err) })
	if err != nil {
		// Not sent (the session dropped): this event goes first next time.
		s.mu.Lock()
		if s.epoch == epoch {
			s.inflight--
			s.sentUpTo = id - 1
		}
		s.mu.Unlock()
		return false
	}
	return true
}

// published is called once per event publish: on PUBACK, or with an
// error.
func (s *Stream) published(epoch, id uint64, err error) {
	if err == nil {
		s.acks <- id
		s.cfg.Metrics.Delivered.Inc()
	}
	s.mu.Lock()
	if s.epoch == epoch {
		s.inflight--
		if err != nil {
			// Resend from the oldest unacknowledged event.
			s.epoch++
			s.sentUpTo = 0
			s.inflight = 0
		}
	}
	s.mu.Unlock()
	s.kick()
}

// ackBatch is how many acknowledgements ackLoop gathers for one write.
const ackBatch = 256

// ackRetry is how long ackLoop waits before writing again the
// acknowledgements the outbox refused (a full disk).
const ackRetry = time.Second

// ackLoop removes acknowledged events from the outbox, many per write.
// Acknowledgements the outbox refuses (a full disk: removing events needs
// a page or two) are kept and written again with the next ones or after
// ackRetry, so that delivered events do not wait in the outbox for the
// next connection to be sent again. When ctx ends it writes what has
// arrived, then returns.
func (s *Stream) ackLoop(ctx context.Context) {
	ids := make([]uint64, 0, ackBatch)
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	failing := false
	flush := func() {
		if len(ids) == 0 {
			return
		}
		if err := s.ob.Ack(ids...); err != nil {
			if !failing {
				s.log.Error("acknowledge events in the outbox; keeping them to try again", "n", len(ids), "retry_in_seconds", ackRetry.Seconds(), "err", err)
			} else {
				s.log.Debug("acknowledge events in the outbox", "n", len(ids), "err", err)
			}
			failing = true
			retry.Reset(ackRetry)
			return
		}
		if failing {
			s.log.Info("acknowledgements written to the outbox again", "n", len(ids))
			failing = false
		}
		ids = ids[:0]
	}
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case id := <-s.acks:
					ids = append(ids, id)
				default:
					flush()
					return
				}
			}
		case <-retry.C:
			flush()
		case id := <-s.acks:
			ids = append(ids, id)
		drain:
			for len(ids) < ackBatch {
				select {
				case id := <-s.acks:
					ids = append(ids, id)
				default:
					break drain
				}
			}
			flush()
		}
	}
}
