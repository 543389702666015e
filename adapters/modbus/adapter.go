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
}

var (
	_ adapters.Adapter = (*Adapter)(nil)
	_ adapters.Readier = (*Adapter)(nil)
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
// returns its adapter. Errors name the device and the attribute, event or
// operation at fault, and the key.
func New(id string, dec adapters.Decoder, env adapters.Env, opts ...Option) (*Adapter, error) {
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("device %q: %w", id, err)
	}
	return NewFromConfig(id, c, env, opts...)
}

// NewFromConfig is New for a Config already decoded.
func NewFromConfig(id string, c Config, env adapters.Env, opts ...Option) (*Adapter, error) {
	d, err := c.compile(id)
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
// caller: read them, never modify them.
func (a *Adapter) Describe(context.Context) (model.Device, error) {
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
	want := int(r.Count) * 2
	if r.Table.bits() {
		want = (int(r.Count) + 7) / 8
	}
	if len(b) < want {
		return nil, fmt.Errorf("%s: short answer of %d bytes, want %d", a.where(r.Table, r.Address, r.Count), len(b), want)
	}
	return b, nil
}

// decode extracts the value of at from the answer b to read r.
func decodeAttr(at *attr, r Read, b []byte) (any, error) {
	off := int(at.addr) - int(r.Address)
	if at.enc.table.bits() {
		return b[off/8]>>(uint(off)%8)&1 == 1, nil
	}
	v, err := at.enc.codec.Decode(b[2*off:])
	if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
		return nil, fmt.Errorf("attribute %q: register value is %v, not a number", at.m.Name, f)
	}
	return v, err
}

// attrState is what Run remembers of an attribute: the value last
// reported (nil before the first) and when, in Unix nanoseconds.
type attrState struct {
	last       any
	reportedAt int64
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
// unit stops answering (after offline_after failed polls, and it is then
// skipped for skip_for before being probed again) and when it answers
// again. It returns nil when ctx ends.
//
// Run only waits; a poller does the work. Go shrinks a parked goroutine's
// stack only to four times what it uses while parked, so the goroutine
// waits with one small frame on its stack, not the poll's (a gateway runs
// one such goroutine per sub-device).
func (a *Adapter) Run(ctx context.Context, sink adapters.Sink) error {
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

// poller is the state of Run between polls.
type poller struct {
	a         *Adapter
	sl        *sharedLink
	sink      adapters.Sink
	attrs     []attrState
	events    []eventState
	eventsOf  map[int][]int     // attribute index -> its events
	next      []time.Time       // when each group is due
	lastErr   map[[2]int]string // group and read -> last error text, to log changes only
	failed    int
	known     bool // online state reported at least once
	skipUntil time.Time
}

func newPoller(a *Adapter, sl *sharedLink, sink adapters.Sink) *poller {
	p := &poller{
		a: a, sl: sl, sink: sink,
		attrs:   make([]attrState, len(a.dev.attrs)),
		events:  make([]eventState, len(a.dev.events)),
		next:    make([]time.Time, len(a.groups)),
		lastErr: map[[2]int]string{},
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
	return p
}

// due returns the earliest due group and how long until it is due.
func (p *poller) due() (int, time.Duration) {
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
func (p *poller) poll(ctx context.Context, gi int) bool {
	a, sink := p.a, p.sink
	now := time.Now()
	g := a.groups[gi]
	p.next[gi] = p.next[gi].Add(g.every)
	if p.next[gi].Before(now) {
		p.next[gi] = now.Add(g.every)
	}
	if now.Before(p.skipUntil) {
		return true
	}

	answered, timedOut := false, false
	var pollErr error
	values := map[string]map[string]model.Value{}
	for ri, r := range g.reads {
		b, err := a.doRead(ctx, p.sl, r)
		key := [2]int{gi, ri}
		if err != nil {
			if ctx.Err() != nil {
				return false
			}
			var mbErr *modbus.ModbusError
			if errors.As(err, &mbErr) {
				// The unit answered: the rest of the map goes on.
				answered = true
				if p.lastErr[key] != err.Error() {
					a.log.Warn("modbus exception", "err", err)
					p.lastErr[key] = err.Error()
				}
				continue
			}
			pollErr = err
			timedOut = errors.Is(err, adapters.ErrTimeout)
			break // the unit or link is not answering: stop this poll
		}
		answered = true
		if p.lastErr[key] != "" {
			a.log.Info("modbus read recovered", "read", r.String())
			delete(p.lastErr, key)
		}
		at := time.Now()
		atNano := at.UnixNano()
		for _, id := range r.IDs {
			an := &a.dev.attrs[id]
			v, err := decodeAttr(an, r, b)
			if err != nil {
				a.log.Warn("modbus decode", "attribute", an.m.Name, "err", err)
				continue
			}
			st := &p.attrs[id]
			if st.changed(v, an.Deadband) || atNano-st.reportedAt >= int64(a.dev.reportEvery) {
				if values[an.resource] == nil {
					// Sized for the whole group at once: growing a
					// map of a hundred values cost twice its size.
					values[an.resource] = make(map[string]model.Value, g.perResource[an.resource])
				}
				values[an.resource][an.m.Name] = model.Value{V: v, At: at, Quality: model.QualityGood}
				st.last, st.reportedAt = v, atNano
			}
			for _, ei := range p.eventsOf[id] {
				if ev, ok := a.dev.events[ei].fire(&p.events[ei], v); ok {
					ev.At = at
					sink.Event(a.dev.id, ev)
				}
			}
		}
	}
	adapters.ObservePoll(sink, a.dev.id, time.Since(now), pollErr)
	for res, vs := range values {
		sink.Attributes(a.dev.id, res, vs)
	}
	if answered {
		p.failed = 0
		if !a.online.Load() || !p.known {
			p.known = true
			a.online.Store(true)
			a.log.Info("modbus unit online")
			sink.Status(a.dev.id, true, nil)
		}
		return true
	}
	p.failed++
	if p.failed >= a.dev.offlineAfter {
		if a.online.Load() || !p.known {
			p.known = true
			a.online.Store(false)
			a.log.Warn("modbus unit offline", "err", pollErr, "failed_polls", p.failed)
			sink.Status(a.dev.id, false, pollErr)
		}
		if timedOut {
			// A unit that does not answer must not stall the others
			// on its link: skip it for a while, then probe again.
			p.skipUntil = time.Now().Add(a.dev.skipFor)
			a.log.Debug("modbus unit skipped", "for_seconds", a.dev.skipFor.Seconds())
		}
	}
	return true
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
// names is empty), merging the reads as Run does.
func (a *Adapter) Get(ctx context.Context, resource string, names []string) (map[string]model.Value, error) {
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
	out := map[string]model.Value{}
	for _, r := range Plan(spans, a.dev.limits()) {
		b, err := a.doRead(ctx, sl, r)
		if err != nil {
			return nil, err
		}
		at := time.Now()
		for _, id := range r.IDs {
			v, err := decodeAttr(list[id], r, b)
			if err != nil {
				return nil, fmt.Errorf("%s: attribute %q: %w", a.where(r.Table, r.Address, r.Count), list[id].m.Name, err)
			}
			out[list[id].m.Name] = model.Value{V: v, At: at, Quality: model.QualityGood}
		}
	}
	return out, nil
}

// Set writes values to writable attributes of resource: each is checked
// (type, min/max, the range of its encoding) before anything is written,
// then written with a single or multiple write, and read back when the
// attribute asks for it.
func (a *Adapter) Set(ctx context.Context, resource string, values map[string]model.Value) error {
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

// write encodes v and writes it.
func (a *Adapter) write(ctx context.Context, sl *sharedLink, w write, v any) error {
	n := uint16(w.codec.Registers())
	do := func(fn func(modbus.Client) ([]byte, error)) error {
		_, err := sl.do(ctx, a.dev.unit, a.dev.timeout, fn)
		if err != nil {
			return a.wrapErr(w.table, w.addr, n, err)
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
