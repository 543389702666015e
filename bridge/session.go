package bridge

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/delivery"

	"github.com/osapgw/osapgw/model"
	"github.com/osapgw/osapgw/osap"
)

// This file is the bridge's side of the upstream session: what it does
// when the session comes and goes (upstream.Handler), and how it
// publishes.

// Connected implements upstream.Handler: it announces the topology,
// reports what changed while away (first what the store kept, then the
// queued reports) and then opens the event stream, so that the platform
// knows a sub-device before its events arrive.
func (b *Bridge) Connected(ctx context.Context) {
	b.log.Info("upstream connected")
	b.sendTopology()
	b.vmu.Lock()
	err := b.vals.DrainValues(func(dev, resource string, values map[string]model.Value) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return b.publish(osap.KindAttribute, osap.Header{Type: osap.TypeAttributeReport, Dev: dev},
			osap.AttributeReport{Resource: resource, Values: values}, b.cfg.AttributeQoS, nil)
	})
	if err != nil && ctx.Err() == nil {
		b.log.Warn("send kept attribute values", "err", err)
	}
	// Then the reports queued while the session was down, newer than
	// what the store kept; from now on reportLoop sends them as they come.
	b.drained.Store(true)
	b.sendReports()
	b.vmu.Unlock()
	b.events.Connected()
}

// Disconnected implements upstream.Handler.
func (b *Bridge) Disconnected(err error) {
	b.log.Warn("upstream disconnected", "err", err)
	b.drained.Store(false)
	b.events.Disconnected()
}

// publish sends a message with a fresh id and timestamp unless h has them.
func (b *Bridge) publish(kind string, h osap.Header, body any, qos byte, done func(error)) error {
	if h.ID == "" {
		h.ID = b.nextMsgID()
	}
	if h.TS == 0 {
		h.TS = b.cfg.Now().UnixMilli()
	}
	if done == nil {
		done = func(error) {}
	}
	err := b.up.Publish(kind, h, body, qos, done)
	if err == nil {
		b.cfg.Metrics.MessagesOut.WithLabelValues(h.Type).Inc()
	}
	return err
}

// nextMsgID returns an id for messages that are not events. Event ids are
// the outbox's decimal sequence numbers; these carry a prefix so the two
// never meet.
func (b *Bridge) nextMsgID() string {
	n := b.msgSeq.Add(1)
	return "g" + strconv.FormatUint(uint64(b.cfg.Now().UnixMilli()), 36) + "-" + strconv.FormatUint(n, 10)
}

// metered is the upstream as the event stream sees it: publishes counted
// in the bridge's message metrics.
type metered struct{ b *Bridge }

func (m metered) Publish(kind string, h osap.Header, body any, qos byte, done func(error)) error {
	err := m.b.up.Publish(kind, h, body, qos, done)
	if err == nil {
		m.b.cfg.Metrics.MessagesOut.WithLabelValues(h.Type).Inc()
	}
	return err
}

func (m metered) Connected() bool { return m.b.up.Connected() }

// Event implements adapters.Sink: the event is stored durably in the
// outbox before Event returns, then sent when the session allows.
func (b *Bridge) Event(dev string, ev model.EventOccurrence) {
	b.Events(dev, []model.EventOccurrence{ev})
}

// Events implements adapters.EventBatcher: the events are stored durably,
// in order, with one write, before Events returns. The event stream logs
// and counts what it could not store.
func (b *Bridge) Events(dev string, evs []model.EventOccurrence) {
	_, _ = b.events.Append(dev, evs)
}

var _ adapters.PictureUploader = (*Bridge)(nil)

// UploadPicture implements adapters.PictureUploader: it uploads a picture
// an adapter's operation took through Config.Pictures. It returns an
// error wrapping adapters.ErrNoPictureService when there is no picture
// service.
func (b *Bridge) UploadPicture(ctx context.Context, dev string, body io.ReadSeeker, size int64, sum [sha256.Size]byte) (string, error) {
	if b.cfg.Pictures == nil {
		return "", adapters.ErrNoPictureService
	}
	id, err := b.cfg.Pictures.UploadPicture(ctx, dev, body, size, sum)
	if errors.Is(err, delivery.ErrNoPictureService) {
		return "", fmt.Errorf("%w: %w", adapters.ErrNoPictureService, err)
	}
	return id, err
}
