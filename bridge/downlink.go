package bridge

import (
	"context"
	"errors"
	"fmt"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/osap"
)

// errorCode maps an adapter error to a reply code of the binding.
func errorCode(err error) int {
	switch {
	case err == nil:
		return osap.CodeOK
	case errors.Is(err, adapters.ErrBadRequest):
		return osap.CodeBadRequest
	case errors.Is(err, adapters.ErrNotFound):
		return osap.CodeNotFound
	case errors.Is(err, adapters.ErrNotWritable):
		return osap.CodeNotWritable
	case errors.Is(err, adapters.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return osap.CodeTimeout
	case errors.Is(err, adapters.ErrOffline):
		return osap.CodeOffline
	}
	return osap.CodeDeviceError
}

// Downlink implements upstream.Handler: requests run on their own
// goroutines (at most MaxConcurrentRequests at once) and are answered on
// the reply topic.
func (b *Bridge) Downlink(m osap.Message) {
	b.cfg.Metrics.MessagesIn.WithLabelValues(m.Type).Inc()
	switch m.Type {
	case osap.TypeAttributeSet, osap.TypeAttributeGet, osap.TypeOperationInvoke:
	case osap.TypeTopoReply:
		if m.Code != osap.CodeOK {
			b.log.Warn("platform refused a topology message", "id", m.ID, "code", m.Code, "msg", m.Msg)
		}
		return
	default:
		b.reply(m, osap.CodeBadRequest, fmt.Sprintf("unknown message type %q", m.Type), nil)
		return
	}
	select {
	case b.reqs <- struct{}{}:
	default:
		b.reply(m, osap.CodeOffline, "gateway busy: too many requests in progress", nil)
		return
	}
	// Join b.wg under b.mu, so that Run, once it has set stopped, waits
	// for every request goroutine and none starts after it.
	b.mu.Lock()
	if b.stopped {
		b.mu.Unlock()
		<-b.reqs
		b.reply(m, osap.CodeOffline, "gateway stopping", nil)
		return
	}
	b.wg.Add(1)
	b.mu.Unlock()
	go func() {
		defer b.wg.Done()
		defer func() { <-b.reqs }()
		// The request's lifetime is bounded by RequestTimeout and by its
		// device: a device stopped by Run or a reload cancels it
		// (device.handle), so it derives from no caller's context.
		rctx, cancel := context.WithTimeout(context.Background(), b.cfg.RequestTimeout)
		defer cancel()
		body, err := b.handle(rctx, m)
		msg := ""
		if err != nil {
			msg = err.Error()
			b.log.Info("downlink request failed", "type", m.Type, "id", m.ID, "device", m.Dev, "err", err)
		}
		b.reply(m, errorCode(err), msg, body)
	}()
}

func (b *Bridge) reply(m osap.Message, code int, msg string, body any) {
	h := osap.Header{ID: m.ID, Type: osap.TypeReply, Dev: m.Dev, Code: code, Msg: msg}
	if err := b.publish(osap.KindReply, h, body, 1, nil); err != nil {
		b.log.Warn("reply not sent", "id", m.ID, "err", err)
	}
}

func (b *Bridge) handle(ctx context.Context, m osap.Message) (any, error) {
	d := b.device(m.Dev)
	if d == nil {
		return nil, fmt.Errorf("%w: no sub-device %q", adapters.ErrNotFound, m.Dev)
	}
	return d.handle(ctx, m)
}
