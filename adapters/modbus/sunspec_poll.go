package modbus

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/osapgw/osapgw/adapters"
	retry "github.com/osapgw/osapgw/internal/backoff"
	"github.com/osapgw/osapgw/model"
)

// ssRegs are the holding registers a poll of a SunSpec device read: v[i]
// is register lo+i, why[i] the reason it could not be read ("" when it
// was).
type ssRegs struct {
	lo  int
	v   []uint16
	why []string
}

// get returns n registers from addr, or the reason they were not read.
func (r *ssRegs) get(addr, n int) ([]uint16, string) {
	i := addr - r.lo
	if i < 0 || i+n > len(r.v) {
		return nil, "not read"
	}
	for k := i; k < i+n; k++ {
		if r.why[k] != "" {
			return nil, r.why[k]
		}
	}
	return r.v[i : i+n], ""
}

// value returns the attribute's value from the registers of a poll, or
// the reason it is bad.
func (at *ssAttr) value(regs *ssRegs) (any, string) {
	r, why := regs.get(int(at.addr), at.typ.registers())
	if why != "" {
		return nil, why
	}
	var sf *uint16
	if at.sfAddr >= 0 {
		s, why := regs.get(at.sfAddr, 1)
		if why != "" {
			return nil, fmt.Sprintf("scale factor %s: %s", at.sfName, why)
		}
		sf = &s[0]
	}
	v, err := ssValue(at.typ, r, sf, at.sfName, at.exp)
	if err != nil {
		return nil, err.Error()
	}
	return v, ""
}

// readSunSpec performs reads, in order, and returns the registers they
// gave. A read the unit refuses marks its registers with the reason and
// the others go on; one it does not answer (or a link that is down) ends
// the reads, marking those left with the reason, and is the error.
// answered says whether any read was answered.
func (a *Adapter) readSunSpec(ctx context.Context, sl *sharedLink, reads []Read) (regs *ssRegs, answered bool, err error) {
	lo, hi := 65536, 0
	for _, r := range reads {
		lo, hi = min(lo, int(r.Address)), max(hi, int(r.Address)+int(r.Count))
	}
	regs = &ssRegs{lo: lo, v: make([]uint16, max(hi-lo, 0)), why: make([]string, max(hi-lo, 0))}
	mark := func(r Read, why string) {
		for i := int(r.Address) - lo; i < int(r.Address)+int(r.Count)-lo; i++ {
			regs.why[i] = why
		}
	}
	for ri, r := range reads {
		b, rerr := a.doRead(ctx, sl, r)
		if rerr == nil {
			answered = true
			copy(regs.v[int(r.Address)-lo:], registersOf(b[:2*int(r.Count)]))
			continue
		}
		kind, reason := classify(rerr, a.dev.timeout)
		mark(r, reason)
		if kind == failNoAnswer || kind == failLink {
			for _, rest := range reads[ri+1:] {
				mark(rest, reason)
			}
			return regs, answered, rerr
		}
	}
	return regs, answered, nil
}

// runSunSpec is Run for a SunSpec device: it describes the device first
// (reporting it offline, and trying again with backoff, while the chain
// cannot be read), then polls its models' blocks every poll interval.
func (a *Adapter) runSunSpec(ctx context.Context, sink adapters.Sink) error {
	sl := a.pool.acquire(a.dev.link, a.dev.requestDelay)
	defer a.pool.release(sl)
	a.online.Store(false)
	defer a.online.Store(false)

	bo := retry.Backoff{Min: time.Second, Max: time.Minute}
	var lay *ssLayout
	for reported := false; ; {
		l, err := a.describeSunSpec(ctx)
		if err == nil {
			lay = l
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		if !reported {
			reported = true
			a.log.Warn("sunspec device not described", "err", err)
			sink.Status(a.dev.id, false, err)
		}
		if !retry.Sleep(ctx, bo.Next()) {
			return nil
		}
	}
	p := &ssPoller{a: a, sl: sl, sink: sink, lay: lay, st: make([]attrState, len(lay.attrs))}
	timer := time.NewTimer(0)
	defer timer.Stop()
	next := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		if !p.poll(ctx) {
			return nil
		}
		now := time.Now()
		if next = next.Add(a.ss.poll); next.Before(now) {
			next = now.Add(a.ss.poll)
		}
		if p.probing {
			// Offline: woken for its probes, not its polls.
			next = p.probeAt
		}
		timer.Reset(time.Until(next))
	}
}

// ssPoller is the state of runSunSpec between polls.
type ssPoller struct {
	a    *Adapter
	sl   *sharedLink
	sink adapters.Sink
	lay  *ssLayout
	st   []attrState
	unitState
}

// poll reads the device's blocks once and reports what they gave, as the
// poll of any Modbus device does: values when they change and every
// report_every, bad points with their reason, the unit offline after
// offline_after polls without an answer. It returns false when ctx ended.
func (p *ssPoller) poll(ctx context.Context) bool {
	a, sink := p.a, p.sink
	now := time.Now()
	if p.probing {
		// Offline: probed with the first register of the blocks; the
		// poll follows at once when it answers.
		if now.Before(p.probeAt) || len(p.lay.reads) == 0 {
			return true
		}
		if !p.probe(ctx, a, p.sl, p.lay.reads[0]) {
			return ctx.Err() == nil
		}
	}
	regs, answered, pollErr := a.readSunSpec(ctx, p.sl, p.lay.reads)
	if ctx.Err() != nil {
		return false
	}
	values := map[string]map[string]model.Value{}
	var bad adapters.PointErrors
	if answered {
		at := time.Now()
		atNano, every := at.UnixNano(), int64(a.dev.reportEvery)
		for i := range p.lay.attrs {
			sa, st := &p.lay.attrs[i], &p.st[i]
			v, why := sa.value(regs)
			var val model.Value
			send := false
			if why != "" {
				if st.bad != why {
					// Not implemented is the device's design, not a fault.
					level := slog.LevelWarn
					if strings.HasPrefix(why, errNotImplemented) {
						level = slog.LevelDebug
					}
					a.log.Log(ctx, level, "modbus point bad", "resource", sa.resource, "attribute", sa.m.Name, "register", sa.addr, "err", why)
				}
				send = st.bad != why || atNano-st.reportedAt >= every
				val = model.BadValue(at, why)
				st.last, st.bad = nil, why
				bad = append(bad, adapters.PointError{Resource: sa.resource, Attribute: sa.m.Name, Reason: why})
			} else {
				recovered := st.bad != ""
				if recovered {
					a.log.Info("modbus point recovered", "resource", sa.resource, "attribute", sa.m.Name)
					st.bad = ""
				}
				send = recovered || st.changed(v, 0) || atNano-st.reportedAt >= every
				val = model.Value{V: v, At: at, Quality: model.QualityGood}
				if send {
					st.last = v
				}
			}
			if !send {
				continue
			}
			st.reportedAt = atNano
			if values[sa.resource] == nil {
				values[sa.resource] = map[string]model.Value{}
			}
			values[sa.resource][sa.m.Name] = val
		}
	}
	obsErr := pollErr
	if answered {
		obsErr = nil
		if len(bad) > 0 {
			obsErr = bad
		}
	}
	adapters.ObservePoll(sink, a.dev.id, time.Since(now), obsErr)
	for res, vs := range values {
		sink.Attributes(a.dev.id, res, vs)
	}
	p.polled(a, sink, answered, pollErr)
	return true
}

// findSunSpec returns the indexes in lay.attrs of the attributes of
// resource named in names (all when none).
func (a *Adapter) findSunSpec(lay *ssLayout, resource string, names []string) ([]int, error) {
	var res []int
	for i, at := range lay.attrs {
		if at.resource == resource {
			res = append(res, i)
		}
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("device %q: resource %q: %w", a.dev.id, resource, adapters.ErrNotFound)
	}
	if len(names) == 0 {
		return res, nil
	}
	out := make([]int, 0, len(names))
	for _, n := range names {
		i := slices.IndexFunc(res, func(i int) bool { return lay.attrs[i].m.Name == n })
		if i < 0 {
			return nil, fmt.Errorf("device %q: resource %q: attribute %q: %w", a.dev.id, resource, n, adapters.ErrNotFound)
		}
		out = append(out, res[i])
	}
	return out, nil
}

// getSunSpec is Get for a SunSpec device: it reads the registers of the
// attributes and of their scale factors now, describing the device first
// if need be.
func (a *Adapter) getSunSpec(ctx context.Context, resource string, names []string) (map[string]model.Value, error) {
	lay, err := a.describeSunSpec(ctx)
	if err != nil {
		return nil, err
	}
	list, err := a.findSunSpec(lay, resource, names)
	if err != nil {
		return nil, err
	}
	var spans []Span
	for _, i := range list {
		at := &lay.attrs[i]
		spans = append(spans, Span{ID: len(spans), Table: Holding, Address: at.addr, Count: uint16(at.typ.registers())})
		if at.sfAddr >= 0 {
			spans = append(spans, Span{ID: len(spans), Table: Holding, Address: uint16(at.sfAddr), Count: 1})
		}
	}
	sl := a.pool.acquire(a.dev.link, a.dev.requestDelay)
	defer a.pool.release(sl)
	regs, _, err := a.readSunSpec(ctx, sl, Plan(spans, lay.limits))
	if err != nil {
		return nil, err
	}
	out := make(map[string]model.Value, len(list))
	at := time.Now()
	for _, i := range list {
		sa := &lay.attrs[i]
		if v, why := sa.value(regs); why != "" {
			out[sa.m.Name] = model.BadValue(at, why)
		} else {
			out[sa.m.Name] = model.Value{V: v, At: at, Quality: model.QualityGood}
		}
	}
	return out, nil
}

// setSunSpec is Set for a SunSpec device, whose attributes are all
// read-only.
func (a *Adapter) setSunSpec(ctx context.Context, resource string, values map[string]model.Value) error {
	lay, err := a.describeSunSpec(ctx)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(values))
	for n := range values {
		names = append(names, n)
	}
	slices.Sort(names)
	list, err := a.findSunSpec(lay, resource, names)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		return nil
	}
	return fmt.Errorf("device %q: attribute %q: %w", a.dev.id, lay.attrs[list[0]].m.Name, adapters.ErrNotWritable)
}
