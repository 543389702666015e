package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/model"
	"github.com/osapgw/osapgw/osap"
)

// errorCode maps an adapter error to a reply code of the binding.
func errorCode(err error) int {
	switch {
	case err == nil:
		return osap.CodeOK
	case errors.Is(err, adapters.ErrBadRequest):
		return osap.CodeBadRequest
	case errors.Is(err, adapters.ErrUnauthorized):
		return osap.CodeUnauthorized
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

// Unreadable implements upstream.Handler: a downlink that opened but does
// not decode is answered 400 with its id and dev (binding 2.4: the
// platform is never left waiting for a reply), unless it is itself an
// answer (topo.reply, reply), which is only logged.
// Its type is not trusted as a metric label: they are counted as
// "unreadable".
func (b *Bridge) Unreadable(h osap.Header, err error) {
	b.cfg.Metrics.MessagesIn.WithLabelValues("unreadable").Inc()
	switch h.Type {
	case osap.TypeTopoReply, osap.TypeReply:
		b.log.Warn("unreadable answer from the platform dropped", "id", h.ID, "type", h.Type, "err", err)
		return
	}
	b.log.Warn("unreadable downlink answered 400", "id", h.ID, "type", h.Type, "device", h.Dev, "err", err)
	b.reply(osap.Message{Header: h}, osap.CodeBadRequest, fmt.Sprintf("unreadable request: %v", err), nil)
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

// handle carries out a downlink request on the device. The request is
// checked against the model first, so that the platform gets 404/409/400
// without the device being bothered, and gets them even while the device
// is offline: 503 (try again later) is only for a request that would
// reach the device.
func (d *device) handle(ctx context.Context, m osap.Message) (body any, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer func() {
		select {
		case <-d.stopping:
			if err != nil && !errors.Is(err, adapters.ErrOffline) {
				err = fmt.Errorf("%w: sub-device %q stopped during the request: %v", adapters.ErrOffline, d.spec.ID, err)
			}
		default:
		}
	}()
	go func() { // ends when handle returns, at the latest
		select {
		case <-d.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	select {
	case <-d.stopping:
		return nil, fmt.Errorf("%w: sub-device %q is stopping", adapters.ErrOffline, d.spec.ID)
	default:
	}
	d.mu.Lock()
	a, desc, described, online, known := d.adapter, d.desc, d.described, d.online, d.known
	refused := d.refusedLocked()
	d.mu.Unlock()
	if a == nil || !described {
		if refused != nil {
			return nil, refused
		}
		return nil, fmt.Errorf("%w: sub-device %q is not running yet", adapters.ErrOffline, d.spec.ID)
	}
	reachable := func() error {
		if refused != nil {
			return refused
		}
		if known && !online {
			return fmt.Errorf("%w: sub-device %q", adapters.ErrOffline, d.spec.ID)
		}
		return nil
	}
	switch m.Type {
	case osap.TypeAttributeSet:
		var req osap.AttributeSet
		if err := m.DecodeBody(&req); err != nil {
			return nil, fmt.Errorf("%w: %v", adapters.ErrBadRequest, err)
		}
		if req.Resource == "" {
			return nil, fmt.Errorf("%w: %s body has no resource", adapters.ErrBadRequest, m.Type)
		}
		res, ok := desc.Resource(req.Resource)
		if !ok {
			return nil, fmt.Errorf("%w: sub-device %q has no resource %q", adapters.ErrNotFound, d.spec.ID, req.Resource)
		}
		if len(req.Values) == 0 {
			return nil, fmt.Errorf("%w: no values to set", adapters.ErrBadRequest)
		}
		now := d.b.cfg.Now()
		values := make(map[string]model.Value, len(req.Values))
		for name, x := range req.Values {
			at, ok := res.Attribute(name)
			if !ok {
				return nil, fmt.Errorf("%w: resource %q has no attribute %q", adapters.ErrNotFound, req.Resource, name)
			}
			if !at.Writable {
				return nil, fmt.Errorf("%w: attribute %q of resource %q", adapters.ErrNotWritable, name, req.Resource)
			}
			v, err := model.Coerce(at.Type, x, at.Min, at.Max)
			if err != nil {
				return nil, fmt.Errorf("%w: attribute %q: %v", adapters.ErrBadRequest, name, err)
			}
			values[name] = model.Value{V: v, At: now, Quality: model.QualityGood}
		}
		if err := reachable(); err != nil {
			return nil, err
		}
		return nil, a.Set(ctx, req.Resource, values)
	case osap.TypeAttributeGet:
		var req osap.AttributeGet
		if err := m.DecodeBody(&req); err != nil {
			return nil, fmt.Errorf("%w: %v", adapters.ErrBadRequest, err)
		}
		if req.Resource == "" {
			return nil, fmt.Errorf("%w: %s body has no resource", adapters.ErrBadRequest, m.Type)
		}
		res, ok := desc.Resource(req.Resource)
		if !ok {
			return nil, fmt.Errorf("%w: sub-device %q has no resource %q", adapters.ErrNotFound, d.spec.ID, req.Resource)
		}
		for _, name := range req.Names {
			if _, ok := res.Attribute(name); !ok {
				return nil, fmt.Errorf("%w: resource %q has no attribute %q", adapters.ErrNotFound, req.Resource, name)
			}
		}
		if err := reachable(); err != nil {
			return nil, err
		}
		vals, err := a.Get(ctx, req.Resource, req.Names)
		if err != nil {
			return nil, err
		}
		// A bad point fails the request (500, the reasons in msg); the
		// reply still carries what was read, the bad values with q/err.
		return osap.ReplyBody{Values: vals}, badValues(vals)
	case osap.TypeOperationInvoke:
		var req osap.OperationInvoke
		if err := m.DecodeBody(&req); err != nil {
			return nil, fmt.Errorf("%w: %v", adapters.ErrBadRequest, err)
		}
		if req.Resource == "" || req.Operation == "" {
			return nil, fmt.Errorf("%w: %s body has no resource or no operation", adapters.ErrBadRequest, m.Type)
		}
		res, ok := desc.Resource(req.Resource)
		if !ok {
			return nil, fmt.Errorf("%w: sub-device %q has no resource %q", adapters.ErrNotFound, d.spec.ID, req.Resource)
		}
		op, ok := res.Operation(req.Operation)
		if !ok {
			return nil, fmt.Errorf("%w: resource %q has no operation %q", adapters.ErrNotFound, req.Resource, req.Operation)
		}
		in, err := coerceInputs(op, req.Input)
		if err != nil {
			return nil, err
		}
		if err := reachable(); err != nil {
			return nil, err
		}
		out, err := a.Invoke(ctx, req.Resource, req.Operation, in)
		if err != nil {
			return nil, err
		}
		return osap.ReplyBody{Output: out}, nil
	}
	return nil, fmt.Errorf("%w: unknown request type %q", adapters.ErrBadRequest, m.Type)
}

// badValues returns an error naming each bad value of vals and its
// reason, sorted by name, or nil when none is bad.
func badValues(vals map[string]model.Value) error {
	var bad []string
	for name, v := range vals {
		if v.Quality == model.QualityBad {
			bad = append(bad, fmt.Sprintf("attribute %q: %s", name, v.Err))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	slices.Sort(bad)
	return errors.New(strings.Join(bad, "; "))
}

// coerceInputs checks an operation's input against its declared
// parameters: required ones present, unknown ones refused, types and
// ranges respected.
func coerceInputs(op model.Operation, in map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(in))
	declared := map[string]model.Param{}
	for _, p := range op.Inputs {
		declared[p.Name] = p
		x, ok := in[p.Name]
		if !ok {
			if p.Required {
				return nil, fmt.Errorf("%w: operation %q: missing input %q", adapters.ErrBadRequest, op.Name, p.Name)
			}
			continue
		}
		v, err := model.Coerce(p.Type, x, p.Min, p.Max)
		if err != nil {
			return nil, fmt.Errorf("%w: operation %q: input %q: %v", adapters.ErrBadRequest, op.Name, p.Name, err)
		}
		if len(p.Enum) > 0 {
			s := fmt.Sprint(v)
			found := false
			for _, e := range p.Enum {
				found = found || e == s
			}
			if !found {
				return nil, fmt.Errorf("%w: operation %q: input %q: %q is not one of %v", adapters.ErrBadRequest, op.Name, p.Name, s, p.Enum)
			}
		}
		out[p.Name] = v
	}
	for name := range in {
		if _, ok := declared[name]; !ok {
			return nil, fmt.Errorf("%w: operation %q has no input %q", adapters.ErrBadRequest, op.Name, name)
		}
	}
	return out, nil
}
