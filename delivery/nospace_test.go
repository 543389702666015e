package delivery

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/osapgw/osapgw/model"
	"github.com/osapgw/osapgw/store"
)

// fullOutbox is the store on a disk that fills up: while full is set, the
// writes that need space (appends, pictures and their failures) fail as
// the store fails them on a full disk. The store tests show that on a
// real full file system; here the stream's side is tested.
type fullOutbox struct {
	*store.Store
	full atomic.Bool
}

func noSpaceErr(place string) error {
	return fmt.Errorf("store: %s: %w: write osapgw.db: %w", place, store.ErrNoSpace, syscall.ENOSPC)
}

func (o *fullOutbox) AppendBatch(ctx context.Context, evs []store.Event) ([]uint64, error) {
	if o.full.Load() {
		return nil, noSpaceErr("append")
	}
	return o.Store.AppendBatch(ctx, evs)
}

func (o *fullOutbox) AttachPicture(ctx context.Context, id uint64, r io.Reader) error {
	if o.full.Load() {
		return fmt.Errorf("store: attach picture of event %d: %w", id, noSpaceErr("attach picture"))
	}
	return o.Store.AttachPicture(ctx, id, r)
}

func (o *fullOutbox) FailPicture(id uint64, reason string) error {
	if o.full.Load() {
		return fmt.Errorf("store: fail picture of event %d: %w", id, noSpaceErr("fail picture"))
	}
	return o.Store.FailPicture(id, reason)
}

func (o *fullOutbox) Ack(ids ...uint64) error {
	if o.full.Load() {
		return noSpaceErr("ack")
	}
	return o.Store.Ack(ids...)
}

// syncBuffer is a log sink the test reads while the stream writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestFullDisk: while the disk is full, appends fail, counted by reason
// and logged at error once (not once per event); the events stored before
// still go, in order; a picture that can be neither spooled nor given up
// lets its event go with picture_error "no space" instead of holding the
// stream; acknowledgements the outbox refuses are written once it can;
// once there is space, events are stored and sent again.
func TestFullDisk(t *testing.T) {
	var logs syncBuffer
	st := openStore(t, store.Options{})
	var ob *fullOutbox
	cfg := Config{PictureWait: 200 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	h := newHarness(t, cfg, st, func(o Outbox) Outbox { ob = &fullOutbox{Store: st}; return ob })
	h.run()
	now := time.Now()
	release := make(chan struct{})
	if n, err := h.s.Append("cam-1", []model.EventOccurrence{tick(0, now), motion(now, picture(img, nil, nil, release))}); n != 2 || err != nil {
		t.Fatalf("Append before the disk fills = %d, %v", n, err)
	}
	ob.full.Store(true)
	// The picture of the motion event comes now, and cannot be spooled.
	close(release)
	for i := 1; i <= 5; i++ {
		n, err := h.s.Append("cam-1", []model.EventOccurrence{tick(i, now)})
		if n != 0 || !strings.Contains(fmt.Sprint(err), "no space") {
			t.Fatalf("Append on a full disk = %d, %v; want 0 and a no-space error", n, err)
		}
	}
	if got := testutil.ToFloat64(h.s.cfg.Metrics.AppendErrors.WithLabelValues("no_space")); got != 5 {
		t.Errorf("osapgw_outbox_append_errors_total{reason=\"no_space\"} = %v, want 5", got)
	}
	if got := testutil.ToFloat64(h.s.cfg.Metrics.Lost); got != 5 {
		t.Errorf("osapgw_events_lost_total = %v, want 5", got)
	}
	if n := strings.Count(logs.String(), "level=ERROR msg=\"events lost"); n != 1 {
		t.Errorf("%d error lines for 5 lost appends, want 1 (one per episode and minute):\n%s", n, logs.String())
	}

	h.up.set(true, false)
	h.s.Connected()
	waitFor(t, "the 2 stored events sent", func() bool { return len(h.up.sent()) >= 2 })
	got := reports(t, h.up.sent())
	if got[0].Event != "overheat" || got[1].Event != "motion" || got[1].PictureError != reasonNoSpace {
		t.Errorf("sent %+v, want overheat then motion with picture_error %q", got, reasonNoSpace)
	}

	if n := h.pending(t); n != 2 {
		t.Errorf("outbox holds %d events after their acknowledgements were refused, want 2", n)
	}
	ob.full.Store(false)
	waitFor(t, "the refused acknowledgements written again", func() bool { return h.pending(t) == 0 })
	if n, err := h.s.Append("cam-1", []model.EventOccurrence{tick(6, now)}); n != 1 || err != nil {
		t.Fatalf("Append once space is back = %d, %v", n, err)
	}
	waitFor(t, "the event stored after the disk was full sent", func() bool { return len(h.up.sent()) >= 3 })
	if !strings.Contains(logs.String(), "outbox writable again") {
		t.Errorf("no log line says the outbox is writable again:\n%s", logs.String())
	}
}
