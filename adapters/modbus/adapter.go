package modbus

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goburrow/modbus"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/model"
)

//go:embed sample.conf
var sampleConf string

func init() {
	adapters.Register(adapters.Kind{
		Name:   "modbus",
		Sample: sampleConf,
		New: func(id string, dec adapters.Decoder, env adapters.Env) (adapters.Adapter, error) {
			return New(id, dec, env)
		},
	})
}

// Adapter is one Modbus sub-device (a unit on a link). Run polls it; Get,
// Set and Invoke may be called concurrently with Run and with each other.
type Adapter struct {
	dev    *device
	log    *slog.Logger
	pool   *Pool
	groups []group // attributes by poll interval, with their planned reads
	ops    map[string]map[string]*operation
	online atomic.Bool
	mu     sync.Mutex // serializes read-modify-write of register bits
	ss     *sunspec   // profile = "sunspec": points found by Describe
}

var (
	_ adapters.Adapter = (*Adapter)(nil)
	_ adapters.Readier = (*Adapter)(nil)
	_ adapters.Warner  = (*Adapter)(nil)
)

// group is the attributes polled at one interval, and their reads.
type group struct {
	every time.Duration
	reads []Read
	// perResource counts the group's attributes by resource: the size of
	// the values map of a poll that changes them all.
	perResource map[string]int
}

// Option changes how New builds an adapter.
type Option func(*Adapter)

// WithPool makes the adapter share links through p instead of the
// package's default pool (tests use their own).
func WithPool(p *Pool) Option { return func(a *Adapter) { a.pool = p } }

// New decodes and checks the configuration of device id (no I/O) and
// returns its adapter. Errors are the decoder's, or *adapters.FieldError
// (joined) naming the device, the attribute, event or operation at fault,
// and the key.
func New(id string, dec adapters.Decoder, env adapters.Env, opts ...Option) (*Adapter, error) {
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, err
	}
	if c.Profile != "" {
		if err := c.readGiven(dec); err != nil {
			return nil, fmt.Errorf("device %q: %w", id, err)
		}
	}
	return NewFromConfig(id, c, env, opts...)
}

// Warnings returns what the configuration holds that is valid but
// suspect: addresses that look like Modicon register numbers. Each is an
// *adapters.FieldError.
func (a *Adapter) Warnings() []error { return a.dev.warnings }

// NewFromConfig is New for a Config already decoded.
func NewFromConfig(id string, c Config, env adapters.Env, opts ...Option) (*Adapter, error) {
	if c.Profile == SunSpecProfile {
		return newSunSpec(id, c, env, opts...)
	}
	d, err := c.build(id, env)
	if err != nil {
		return nil, err
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Adapter{dev: d, log: log, pool: defaultPool, ops: map[string]map[string]*operation{}}
	for _, o := range opts {
		o(a)
	}
	every := map[time.Duration][]Span{}
	for i := range d.attrs {
		at := &d.attrs[i]
		every[at.poll] = append(every[at.poll], at.spanOf(i))
	}
	for p, spans := range every {
		g := group{every: p, reads: Plan(spans, d.limits()), perResource: map[string]int{}}
		for _, sp := range spans {
			g.perResource[d.attrs[sp.ID].resource]++
		}
		a.groups = append(a.groups, g)
	}
	sort.Slice(a.groups, func(i, j int) bool { return a.groups[i].every < a.groups[j].every })
	for _, o := range d.ops {
		if a.ops[o.Resource] == nil {
			a.ops[o.Resource] = map[string]*operation{}
		}
		a.ops[o.Resource][o.Name] = o
	}
	// The model must hold too: names unique within a resource across
	// attributes, events and operations of every area.
	if err := d.model.Validate(); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *attr) spanOf(id int) Span {
	return Span{ID: id, Table: a.enc.table, Address: a.addr, Count: uint16(a.enc.codec.Registers())}
}

func (d *device) limits() Limits {
	return Limits{MaxGap: d.maxGap, MaxRegisters: d.maxRegisters, MaxBits: d.maxBits}
}

// Requests returns the reads of one full poll of every attribute, for
// benchmarks and tests.
func (a *Adapter) Requests() []Read {
	var out []Read
	for _, g := range a.groups {
		out = append(out, g.reads...)
	}
	return out
}

// Ready reports whether the last poll got an answer from the unit.
func (a *Adapter) Ready() bool { return a.online.Load() }

// Describe returns the sub-device's model, built once from the
// configuration. Its slices are shared with the adapter and with every
// caller: read them, never modify them. A SunSpec device (profile =
// "sunspec") is described from its models the first time the unit
// answers; until then the error says why it could not be.
func (a *Adapter) Describe(ctx context.Context) (model.Device, error) {
	if a.ss != nil {
		l, err := a.describeSunSpec(ctx)
		if err != nil {
			return model.Device{}, err
		}
		return l.model, nil
	}
	return a.dev.model, nil
}

// read returns the function that performs r.
func readFn(r Read) func(modbus.Client) ([]byte, error) {
	return func(c modbus.Client) ([]byte, error) {
		switch r.Table {
		case Coil:
			return c.ReadCoils(r.Address, r.Count)
		case Discrete:
			return c.ReadDiscreteInputs(r.Address, r.Count)
		case Input:
			return c.ReadInputRegisters(r.Address, r.Count)
		default:
			return c.ReadHoldingRegisters(r.Address, r.Count)
		}
	}
}

// where names a request's place in errors.
func (a *Adapter) where(t Table, addr uint16, count uint16) string {
	return fmt.Sprintf("device %q: unit %d: %s %d..%d", a.dev.id, a.dev.unit, t, addr, int(addr)+int(count)-1)
}

// wrapErr names the device, unit and registers in err, and adds the
// sentinel that fits a Modbus exception.
func (a *Adapter) wrapErr(t Table, addr, count uint16, err error) error {
	var mbErr *modbus.ModbusError
	if errors.As(err, &mbErr) && mbErr.ExceptionCode == modbus.ExceptionCodeIllegalDataValue {
		return fmt.Errorf("%s: %w (%w)", a.where(t, addr, count), err, adapters.ErrBadRequest)
	}
	return fmt.Errorf("%s: %w", a.where(t, addr, count), err)
}

// doRead performs one planned read on sl.
func (a *Adapter) doRead(ctx context.Context, sl *sharedLink, r Read) ([]byte, error) {
	b, err := sl.do(ctx, a.dev.unit, a.dev.timeout, readFn(r))
	if err != nil {
		return nil, a.wrapErr(r.Table, r.Address, r.Count, err)
	}
	if want := answerBytes(r); len(b) < want {
		return nil, fmt.Errorf("%s: %w of %d bytes, want %d", a.where(r.Table, r.Address, r.Count), errShortAnswer, len(b), want)
	}
	return b, nil
}

// answerBytes returns how many data bytes a full answer to r holds: two
// per register, one per eight bits. decodeAttr indexes no further.
func answerBytes(r Read) int {
	if r.Table.bits() {
		return (int(r.Count) + 7) / 8
	}
	return int(r.Count) * 2
}

// isolate finds the spans at fault in r, a read on sl that failed with
// err (see isolate), and returns the reads it ended with. The error is
// that of a read the unit did not answer.
func (a *Adapter) isolate(ctx context.Context, sl *sharedLink, r Read, err error, span func(int) Span) ([]piece, error) {
	read := func(r Read) ([]byte, error) { return a.doRead(ctx, sl, r) }
	return isolate(r, err, a.dev.timeout, span, read)
}

// decodeAttr extracts the value of at from the answer b to read r. The
// error is the reason the value is bad.
func decodeAttr(at *attr, r Read, b []byte) (any, error) {
	off := int(at.addr) - int(r.Address)
	if at.enc.table.bits() {
		return b[off/8]>>(uint(off)%8)&1 == 1, nil
	}
	v, err := at.enc.codec.Decode(b[2*off:])
	if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
		return nil, fmt.Errorf("register value is %v, not a number", f)
	}
	return v, err
}

// attrState is what Run remembers of an attribute: the value last
// reported (nil before the first, and while bad) and when, in Unix
// nanoseconds, and why it is bad ("" while it reads).
type attrState struct {
	last       any
	reportedAt int64
	bad        string
}

// eventState is what Run remembers of an event rule.
type eventState struct {
	have   bool
	active bool
	last   any
}

// Run polls the unit until ctx ends, reporting to sink: each attribute at
// its poll interval, sent when it changed beyond its deadband or when
// report_every has passed; events when their rules fire; Status when the
// unit stops answering (after offline_after failed polls; it is then
// probed, not polled, at a backoff from FirstProbe up to skip_for: see
// probe.go) and when it answers again. It returns nil when ctx ends.
//
// Run only waits; a poller does the work. Go shrinks a parked goroutine's
// stack only to four times what it uses while parked, so the goroutine
// waits with one small frame on its stack, not the poll's (a gateway runs
// one such goroutine per sub-device).
func (a *Adapter) Run(ctx context.Context, sink adapters.Sink) error {
	if a.ss != nil {
		return a.runSunSpec(ctx, sink)
	}
	sl := a.pool.acquire(a.dev.link, a.dev.requestDelay)
	defer a.pool.release(sl)
	a.online.Store(false)
	defer a.online.Store(false)

	p := newPoller(a, sl, sink)
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		gi, wait := p.due()
		if wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return nil
			case <-timer.C:
			}
		}
		if ctx.Err() != nil || !p.poll(ctx, gi) {
			return nil
		}
	}
}

// probe probes the offline unit (see unitState.probe) with a read of the
// first register of its fastest group; when it answers, every group is
// due at once. It returns false when ctx ended.
func (p *poller) probe(ctx context.Context) bool {
	if len(p.plans) == 0 || len(p.plans[0]) == 0 {
		p.probing = false
		return true
	}
	if !p.unitState.probe(ctx, p.a, p.sl, p.plans[0][0].Read) {
		return ctx.Err() == nil
	}
	now := time.Now()
	for i := range p.next {
		p.next[i] = now
	}
	return true
}

// poller is the state of Run between polls.
type poller struct {
	a        *Adapter
	sl       *sharedLink
	sink     adapters.Sink
	attrs    []attrState
	events   []eventState
	eventsOf map[int][]int // attribute index -> its events
	next     []time.Time   // when each group is due
	// plans are the reads of each group: a.groups' reads at first, split
	// where the unit refused a read (see isolate).
	plans [][]planned
	span  func(id int) Span // the span of attribute id
	unitState

	// State of the poll in progress.
	gi     int                               // its group
	values map[string]map[string]model.Value // to report, by resource
	bad    adapters.PointErrors              // attributes bad in it
}

// planned is a read of a poll plan.
type planned struct {
	Read
	// retryAt: the read failed on its own (the unit refused it, or did not
	// answer it while answering the others); it is left alone until then.
	retryAt time.Time
	reason  string // why it failed
}

func newPoller(a *Adapter, sl *sharedLink, sink adapters.Sink) *poller {
	p := &poller{
		a: a, sl: sl, sink: sink,
		attrs:  make([]attrState, len(a.dev.attrs)),
		events: make([]eventState, len(a.dev.events)),
		next:   make([]time.Time, len(a.groups)),
		plans:  make([][]planned, len(a.groups)),
		span:   func(id int) Span { return a.dev.attrs[id].spanOf(id) },
	}
	for i, e := range a.dev.events {
		if p.eventsOf == nil {
			p.eventsOf = map[int][]int{}
		}
		p.eventsOf[e.attr] = append(p.eventsOf[e.attr], i)
	}
	now := time.Now()
	for i := range p.next {
		p.next[i] = now
	}
	for gi, g := range a.groups {
		p.plans[gi] = make([]planned, len(g.reads))
		for ri, r := range g.reads {
			p.plans[gi][ri] = planned{Read: r}
		}
	}
	return p
}

// due returns the earliest due group and how long until it is due; while
// the unit is offline, how long until its next probe.
func (p *poller) due() (int, time.Duration) {
	if p.probing {
		return 0, time.Until(p.probeAt)
	}
	gi := 0
	for i := range p.next {
		if p.next[i].Before(p.next[gi]) {
			gi = i
		}
	}
	return gi, time.Until(p.next[gi])
}

// poll reads group gi once and reports what it found. It returns false
// when ctx ended during the poll.
//
// A read the unit refuses is split until the spans at fault are read
// alone (isolate); the group's plan keeps the pieces. Their attributes are
// reported bad, and a read that fails on its own is left alone for
// point_retry. A read the unit does not answer while it answers others is
// taken for its attributes' fault too; the poll stops at the second read
// in a row without an answer, or at once when the link is down.
func (p *poller) poll(ctx context.Context, gi int) bool {
	a, sink := p.a, p.sink
	if p.probing {
		if time.Now().Before(p.probeAt) {
			return true
		}
		return p.probe(ctx)
	}
	now := time.Now()
	g := a.groups[gi]
	p.next[gi] = p.next[gi].Add(g.every)
	if p.next[gi].Before(now) {
		p.next[gi] = now.Add(g.every)
	}

	p.gi, p.values, p.bad = gi, map[string]map[string]model.Value{}, nil
	plan := p.plans[gi]
	var splits map[int][]planned // read index -> the reads it was split into
	type silence struct {
		ri     int
		reason string
	}
	var silent []silence // reads not answered
	answered, quiet := false, 0
	var pollErr error
	for ri := range plan {
		pr := &plan[ri]
		if now.Before(pr.retryAt) {
			at := time.Now()
			for _, id := range pr.IDs {
				p.setBad(id, pr.reason, at)
			}
			continue
		}
		b, err := a.doRead(ctx, p.sl, pr.Read)
		if err == nil {
			answered, quiet = true, 0
			pr.retryAt, pr.reason = time.Time{}, ""
			p.report(piece{Read: pr.Read, b: b})
			continue
		}
		if ctx.Err() != nil {
			return false
		}
		pieces, err := a.isolate(ctx, p.sl, pr.Read, err, p.span)
		if ctx.Err() != nil {
			return false
		}
		for _, pc := range pieces {
			answered = true
			p.report(pc)
		}
		if err != nil {
			// The unit did not answer pr (or a piece of it): pr stays.
			pollErr = err
			kind, reason := classify(err, a.dev.timeout)
			if kind == failLink {
				break
			}
			silent = append(silent, silence{ri, reason})
			if quiet++; quiet == 2 {
				break
			}
			continue
		}
		quiet = 0
		if len(pieces) == 1 && pieces[0].Address == pr.Address && pieces[0].Count == pr.Count {
			pr.retryAt, pr.reason = time.Time{}, ""
			if pieces[0].isolated {
				pr.retryAt, pr.reason = now.Add(a.dev.pointRetry), pieces[0].reason
			}
			continue
		}
		if splits == nil {
			splits = map[int][]planned{}
		}
		names := make([]string, len(pieces))
		for i, pc := range pieces {
			np := planned{Read: pc.Read}
			if pc.isolated {
				np.retryAt, np.reason = now.Add(a.dev.pointRetry), pc.reason
			}
			splits[ri] = append(splits[ri], np)
			names[i] = pc.Read.String()
		}
		a.log.Info("modbus read split", "read", pr.Read.String(), "into", names)
	}
	if !answered {
		// Nothing of the group was read (the link is down, the unit
		// silent): a group read rarely (settings every 10 minutes) is
		// tried again at the device's fastest interval, not its own, so
		// that its points do not stay unknown for a whole interval after a
		// start or an outage.
		if retry := now.Add(a.groups[0].every); retry.Before(p.next[gi]) {
			p.next[gi] = retry
		}
	}
	if answered && len(silent) > 0 {
		// The unit answers: what it did not answer is those points' own
		// failure. Left alone for point_retry, like a refused read.
		at := time.Now()
		for _, s := range silent {
			pr := &plan[s.ri]
			pr.retryAt, pr.reason = now.Add(a.dev.pointRetry), s.reason
			for _, id := range pr.IDs {
				p.setBad(id, s.reason, at)
			}
		}
	}
	if splits != nil {
		next := make([]planned, 0, len(plan)+len(splits))
		for ri, pr := range plan {
			if s, ok := splits[ri]; ok {
				next = append(next, s...)
			} else {
				next = append(next, pr)
			}
		}
		p.plans[gi] = next
	}
	obsErr := pollErr
	if answered {
		obsErr = nil
		if len(p.bad) > 0 {
			obsErr = p.bad
		}
	}
	adapters.ObservePoll(sink, a.dev.id, time.Since(now), obsErr)
	for res, vs := range p.values {
		sink.Attributes(a.dev.id, res, vs)
	}
	p.values, p.bad = nil, nil
	// A unit that does not answer must not stall the others on its link:
	// once offline it is probed, not polled.
	p.polled(a, sink, answered, pollErr)
	return true
}

// report reports what piece pc of a poll gave: the values of its
// attributes, or that they are bad.
func (p *poller) report(pc piece) {
	at := time.Now()
	for _, id := range pc.IDs {
		if pc.b == nil {
			p.setBad(id, pc.reason, at)
			continue
		}
		v, err := decodeAttr(&p.a.dev.attrs[id], pc.Read, pc.b)
		if err != nil {
			p.setBad(id, err.Error(), at)
			continue
		}
		p.setGood(id, v, at)
	}
}

// put adds a value of attribute id to the poll's report.
func (p *poller) put(id int, v model.Value) {
	an := &p.a.dev.attrs[id]
	vs := p.values[an.resource]
	if vs == nil {
		// Sized for the whole group at once: growing a map of a
		// hundred values cost twice its size.
		vs = make(map[string]model.Value, p.a.groups[p.gi].perResource[an.resource])
		p.values[an.resource] = vs
	}
	vs[an.m.Name] = v
}

// setGood records a value read of attribute id: reported when it changed
// beyond its deadband, when report_every has passed, or when the
// attribute was bad; its events are evaluated.
func (p *poller) setGood(id int, v any, at time.Time) {
	an, st := &p.a.dev.attrs[id], &p.attrs[id]
	atNano := at.UnixNano()
	recovered := st.bad != ""
	if recovered {
		p.a.log.Info("modbus point recovered", "attribute", an.m.Name)
		st.bad = ""
	}
	if recovered || st.changed(v, an.Deadband) || atNano-st.reportedAt >= int64(p.a.dev.reportEvery) {
		p.put(id, model.Value{V: v, At: at, Quality: model.QualityGood})
		st.last, st.reportedAt = v, atNano
	}
	for _, ei := range p.eventsOf[id] {
		if ev, ok := p.a.dev.events[ei].fire(&p.events[ei], v); ok {
			ev.At = at
			p.sink.Event(p.a.dev.id, ev)
		}
	}
}

// setBad records that attribute id is bad, and why: reported when it goes
// bad, when the reason changes, and when report_every has passed.
func (p *poller) setBad(id int, reason string, at time.Time) {
	an, st := &p.a.dev.attrs[id], &p.attrs[id]
	atNano := at.UnixNano()
	if st.bad != reason {
		sp := p.span(id)
		p.a.log.Warn("modbus point bad", "attribute", an.m.Name, "registers", fmt.Sprintf("%s %d..%d", sp.Table, sp.Address, int(sp.Address)+int(sp.Count)-1), "err", reason)
	}
	if st.bad != reason || atNano-st.reportedAt >= int64(p.a.dev.reportEvery) {
		p.put(id, model.BadValue(at, reason))
		st.reportedAt = atNano
	}
	st.last, st.bad = nil, reason
	p.bad = append(p.bad, adapters.PointError{Resource: an.resource, Attribute: an.m.Name, Reason: reason})
}

// changed reports whether v differs from the last reported value by more
// than deadband (any difference for non-numbers), or nothing was reported.
func (st *attrState) changed(v any, deadband float64) bool {
	if st.last == nil {
		return true
	}
	f, err1 := toFloat(v)
	l, err2 := toFloat(st.last)
	_, isBool := v.(bool)
	if err1 == nil && err2 == nil && !isBool {
		if deadband > 0 {
			return math.Abs(f-l) > deadband
		}
		return f != l
	}
	return v != st.last
}

// fire evaluates the rule on a new value v and returns the event to report.
func (e *event) fire(st *eventState, v any) (model.EventOccurrence, bool) {
	ev := model.EventOccurrence{Resource: e.resource, Event: e.Name}
	if e.OnChange {
		prev, had := st.last, st.have
		st.last, st.have = v, true
		if !had || prev == v {
			return ev, false
		}
		ev.Params = map[string]any{"value": v}
		return ev, true
	}
	f, err := toFloat(v)
	if err != nil {
		return ev, false
	}
	var raise, clear bool
	if e.Above != nil {
		raise, clear = f > *e.Above, f < *e.Above-e.Hysteresis
	} else {
		raise, clear = f < *e.Below, f > *e.Below+e.Hysteresis
	}
	switch {
	case !st.active && raise:
		st.active = true
	case st.active && clear:
		st.active = false
	default:
		return ev, false
	}
	ev.Params = map[string]any{"value": v, "active": st.active}
	return ev, true
}

// find returns the attributes of resource named in names (all when none).
// It searches the list: a device has a few hundred attributes at most,
// and requests are rare next to polls, so no index is kept for them.
func (a *Adapter) find(resource string, names []string) ([]*attr, error) {
	var res []*attr
	for i := range a.dev.attrs {
		if a.dev.attrs[i].resource == resource {
			res = append(res, &a.dev.attrs[i])
		}
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("device %q: resource %q: %w", a.dev.id, resource, adapters.ErrNotFound)
	}
	if len(names) == 0 {
		return res, nil
	}
	out := make([]*attr, 0, len(names))
	for _, n := range names {
		i := slices.IndexFunc(res, func(at *attr) bool { return at.m.Name == n })
		if i < 0 {
			return nil, fmt.Errorf("device %q: resource %q: attribute %q: %w", a.dev.id, resource, n, adapters.ErrNotFound)
		}
		out = append(out, res[i])
	}
	return out, nil
}

// Get reads attributes of resource from the unit now (all of them when
// names is empty), merging the reads as Run does. A read the unit refuses
// is split as Run splits it; attributes it refuses, or whose registers do
// not decode, come back as bad values with the reason. The error is that
// of a read the unit did not answer.
func (a *Adapter) Get(ctx context.Context, resource string, names []string) (map[string]model.Value, error) {
	if a.ss != nil {
		return a.getSunSpec(ctx, resource, names)
	}
	list, err := a.find(resource, names)
	if err != nil {
		return nil, err
	}
	sl := a.pool.acquire(a.dev.link, a.dev.requestDelay)
	defer a.pool.release(sl)
	return a.readAttrs(ctx, sl, list)
}

func (a *Adapter) readAttrs(ctx context.Context, sl *sharedLink, list []*attr) (map[string]model.Value, error) {
	spans := make([]Span, len(list))
	for i, at := range list {
		spans[i] = at.spanOf(i)
	}
	span := func(id int) Span { return spans[id] }
	out := map[string]model.Value{}
	for _, r := range Plan(spans, a.dev.limits()) {
		b, err := a.doRead(ctx, sl, r)
		pieces := []piece{{Read: r, b: b}}
		if err != nil {
			if pieces, err = a.isolate(ctx, sl, r, err, span); err != nil {
				return nil, err
			}
		}
		at := time.Now()
		for _, pc := range pieces {
			for _, id := range pc.IDs {
				name := list[id].m.Name
				if pc.b == nil {
					out[name] = model.BadValue(at, pc.reason)
					continue
				}
				v, err := decodeAttr(list[id], pc.Read, pc.b)
				if err != nil {
					out[name] = model.BadValue(at, err.Error())
					continue
				}
				out[name] = model.Value{V: v, At: at, Quality: model.QualityGood}
			}
		}
	}
	return out, nil
}

// Set writes values to writable attributes of resource: each is checked
// (type, min/max, the range of its encoding) before anything is written,
// then written with a single or multiple write, and read back when the
// attribute asks for it.
func (a *Adapter) Set(ctx context.Context, resource string, values map[string]model.Value) error {
	if a.ss != nil {
		return a.setSunSpec(ctx, resource, values)
	}
	names := make([]string, 0, len(values))
	for n := range values {
		names = append(names, n)
	}
	sort.Strings(names)
	list, err := a.find(resource, names)
	if err != nil {
		return err
	}
	coerced := make([]any, len(list))
	for i, at := range list {
		if !at.m.Writable {
			return fmt.Errorf("device %q: attribute %q: %w", a.dev.id, at.m.Name, adapters.ErrNotWritable)
		}
		v, err := model.Coerce(at.m.Type, values[at.m.Name].V, at.m.Min, at.m.Max)
		if err == nil {
			_, err = at.enc.codec.Encode(v, 0)
		}
		if err != nil {
			return fmt.Errorf("device %q: attribute %q: %w: %w", a.dev.id, at.m.Name, adapters.ErrBadRequest, err)
		}
		coerced[i] = v
	}
	sl := a.pool.acquire(a.dev.link, a.dev.requestDelay)
	defer a.pool.release(sl)
	for i, at := range list {
		w := write{table: at.enc.table, addr: at.addr, codec: at.enc.codec}
		if err := a.write(ctx, sl, w, coerced[i]); err != nil {
			return fmt.Errorf("attribute %q: %w", at.m.Name, err)
		}
		if at.ReadBack {
			got, err := a.readAttrs(ctx, sl, []*attr{at})
			if err != nil {
				return fmt.Errorf("attribute %q: read back: %w", at.m.Name, err)
			}
			if v := got[at.m.Name]; v.Quality == model.QualityBad {
				return fmt.Errorf("device %q: attribute %q: read back: %s", a.dev.id, at.m.Name, v.Err)
			}
			if st := (&attrState{last: got[at.m.Name].V}); st.changed(coerced[i], readBackTolerance(at)) {
				return fmt.Errorf("device %q: attribute %q: read back %v after writing %v", a.dev.id, at.m.Name, got[at.m.Name].V, coerced[i])
			}
		}
	}
	return nil
}

// readBackTolerance is the difference a scaled or float value may show
// after a round trip through its registers.
func readBackTolerance(at *attr) float64 {
	if at.m.Type != model.TypeFloat {
		return 0
	}
	tol := math.Abs(at.enc.codec.Scale) / 2
	if at.enc.codec.Type == Float32 || at.enc.codec.Type == Float64 {
		tol = 1e-6
	}
	return tol
}

// write encodes v and writes it. A write the unit did not answer in time
// fails with the reason from mayHaveApplied: it was sent, and the unit may
// have carried it out. One whose ctx ended before it was sent is never
// sent.
func (a *Adapter) write(ctx context.Context, sl *sharedLink, w write, v any) error {
	n := uint16(w.codec.Registers())
	do := func(fn func(modbus.Client) ([]byte, error)) error {
		_, err := sl.do(ctx, a.dev.unit, a.dev.timeout, fn)
		if err != nil {
			return a.wrapErr(w.table, w.addr, n, mayHaveApplied(err))
		}
		return nil
	}
	if w.table == Coil {
		b, ok := v.(bool)
		if !ok {
			f, err := toFloat(v)
			if err != nil {
				return fmt.Errorf("%s: %w: %w", a.where(w.table, w.addr, 1), adapters.ErrBadRequest, err)
			}
			b = f != 0
		}
		val := uint16(0)
		if b {
			val = 0xFF00
		}
		return do(func(c modbus.Client) ([]byte, error) { return c.WriteSingleCoil(w.addr, val) })
	}
	var cur uint16
	if w.codec.Type == Bool {
		// One bit of a register: read, change the bit, write.
		a.mu.Lock()
		defer a.mu.Unlock()
		b, err := sl.do(ctx, a.dev.unit, a.dev.timeout, readFn(Read{Table: Holding, Address: w.addr, Count: 1}))
		if err != nil {
			return a.wrapErr(w.table, w.addr, 1, err)
		}
		if len(b) < 2 {
			return fmt.Errorf("%s: short answer", a.where(w.table, w.addr, 1))
		}
		cur = registersOf(normalize(b[:2], w.codec.Order, w.codec.Type))[0]
	}
	data, err := w.codec.Encode(v, cur)
	if err != nil {
		return fmt.Errorf("%s: %w: %w", a.where(w.table, w.addr, n), adapters.ErrBadRequest, err)
	}
	if n == 1 {
		val := registersOf(data)[0]
		return do(func(c modbus.Client) ([]byte, error) { return c.WriteSingleRegister(w.addr, val) })
	}
	return do(func(c modbus.Client) ([]byte, error) { return c.WriteMultipleRegisters(w.addr, n, data) })
}

// mayHaveApplied says so in err when err is that of a request sent but not
// answered in time (the unit's timeout, or the caller's deadline while
// the request was on the wire), whose outcome is unknown.
func mayHaveApplied(err error) error {
	if errors.Is(err, adapters.ErrTimeout) || errors.Is(err, errUnanswered) {
		return fmt.Errorf("device did not answer in time; the write may have been applied: %w", err)
	}
	return err
}

// Invoke runs the write sequence of operation on resource with the
// parameters in (checked against their declarations first). It returns no
// output parameters, but for RawOperation (see there).
func (a *Adapter) Invoke(ctx context.Context, resource, operation string, in map[string]any) (map[string]any, error) {
	if a.dev.allowRaw && resource == DefaultResource && operation == RawOperation {
		return a.invokeRaw(ctx, in)
	}
	o, ok := a.ops[resource][operation]
	if !ok {
		return nil, fmt.Errorf("device %q: resource %q: operation %q: %w", a.dev.id, resource, operation, adapters.ErrNotFound)
	}
	params := map[string]any{}
	for _, p := range o.Params {
		x, ok := in[p.Name]
		if !ok || x == nil {
			if p.Default != nil {
				x = p.Default
			} else if p.Optional {
				continue
			} else {
				return nil, fmt.Errorf("device %q: operation %q: param %q: missing: %w", a.dev.id, operation, p.Name, adapters.ErrBadRequest)
			}
		}
		v, err := model.Coerce(model.Type(p.Type), x, p.Min, p.Max)
		if err != nil {
			return nil, fmt.Errorf("device %q: operation %q: param %q: %w: %w", a.dev.id, operation, p.Name, adapters.ErrBadRequest, err)
		}
		params[p.Name] = v
	}
	for n := range in {
		if _, ok := params[n]; !ok && !declared(o, n) {
			return nil, fmt.Errorf("device %q: operation %q: param %q: not declared: %w", a.dev.id, operation, n, adapters.ErrBadRequest)
		}
	}
	vals := make([]any, len(o.writes))
	for i, w := range o.writes {
		v := w.value
		if w.param != "" {
			var ok bool
			if v, ok = params[w.param]; !ok {
				return nil, fmt.Errorf("device %q: operation %q: param %q: missing: %w", a.dev.id, operation, w.param, adapters.ErrBadRequest)
			}
		}
		if _, err := w.codec.Encode(v, 0); err != nil && w.table != Coil {
			return nil, fmt.Errorf("device %q: operation %q: write #%d: %w: %w", a.dev.id, operation, i+1, adapters.ErrBadRequest, err)
		}
		vals[i] = v
	}
	sl := a.pool.acquire(a.dev.link, a.dev.requestDelay)
	defer a.pool.release(sl)
	for i, w := range o.writes {
		if err := a.write(ctx, sl, w, vals[i]); err != nil {
			return nil, fmt.Errorf("operation %q: write #%d: %w", operation, i+1, err)
		}
	}
	return map[string]any{}, nil
}

func declared(o *operation, name string) bool {
	for _, p := range o.Params {
		if p.Name == name {
			return true
		}
	}
	return false
}
