package modbus

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/classes"
	"github.com/osapgw/osapgw/model"
)

// This file is profile = "sunspec": a device that describes itself with
// SunSpec models. Describe finds the "SunS" marker, walks the model chain
// and maps the models sunspec_models.go lists to attributes; Run
// (sunspec_poll.go) reads their blocks and applies their scale factors.

// SunSpecProfile is the profile name of a device that describes itself
// with SunSpec models: its points come from the device, not from a file.
const SunSpecProfile = "sunspec"

// SunSpecBases are the holding registers where a SunSpec device's "SunS"
// marker may be, in the order Describe tries them.
var SunSpecBases = []uint16{40000, 50000, 0}

// The "SunS" marker, and the ID that ends the chain.
const (
	sunsHi, sunsLo = 0x5375, 0x6E53
	ssEndID        = 0xFFFF
	ssMaxModels    = 256
)

// errNotImplemented is the reason of a point whose register holds
// SunSpec's not-implemented value.
const errNotImplemented = "not implemented"

// ssBlock is one model of a device's chain.
type ssBlock struct {
	ID   uint16
	Addr uint16 // of its ID register
	Len  uint16 // L: the registers after ID and L
}

// ssAttr is an attribute a SunSpec model maps: where its registers are,
// its type, and its scale factor register.
type ssAttr struct {
	resource string
	m        *model.Attribute
	addr     uint16 // of its first register
	typ      ssType
	sfAddr   int    // of its scale factor register; -1: none
	sfName   string // the scale factor point, for reasons
	exp      int    // power of ten to the attribute's unit
}

// ssLayout is what Describe found: the device's model and the attributes
// its SunSpec models map, and the reads of one poll. It never changes
// after Describe.
type ssLayout struct {
	base   uint16
	chain  []ssBlock
	attrs  []ssAttr
	reads  []Read // of one poll: Read.IDs are unused
	model  model.Device
	limits Limits
}

// sunspec is the state of a SunSpec device: how to describe it, and what
// Describe found.
type sunspec struct {
	manufacturer, model string // the block's, which win over model 1's
	poll                time.Duration
	sem                 chan struct{} // held while describing
	layout              atomic.Pointer[ssLayout]
}

// newSunSpec returns the adapter of a device with profile = "sunspec". It
// checks the block's keys (no I/O): the link settings as any device's,
// and no points, since they come from the device.
func newSunSpec(id string, c Config, env adapters.Env, opts ...Option) (*Adapter, error) {
	var errs []error
	not := func(key, name string, given bool) {
		if given {
			errs = append(errs, &adapters.FieldError{Device: id, Key: key,
				Err: fmt.Errorf("%s: not with profile = %q: the device's SunSpec models give its points", name, SunSpecProfile)})
		}
	}
	not("attribute[0]", "attribute", len(c.Attributes) > 0)
	not("event[0]", "event", len(c.Events) > 0)
	not("operation[0]", "operation", len(c.Operations) > 0)
	for _, k := range []struct {
		key   string
		given bool
	}{{"exclude", len(c.Exclude) > 0}, {"class", c.Class != ""}, {"table", c.Table != ""},
		{"type", c.Type != ""}, {"order", c.Order != ""}, {"scale", c.Scale != nil}} {
		not(k.key, k.key, k.given)
	}
	// The link settings compile as any device's, with one point that
	// stands for the device's.
	lc := c
	addr := 0
	lc.Profile, lc.Class, lc.Exclude, lc.PointDefaults = "", "", nil, PointDefaults{}
	lc.Attributes = []AttributeConfig{{Name: "sunspec", Table: "holding", Address: &addr}}
	lc.Events, lc.Operations = nil, nil
	d, err := lc.compile(id)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	ss := &sunspec{manufacturer: c.Manufacturer, model: c.Model, poll: d.attrs[0].poll, sem: make(chan struct{}, 1)}
	d.attrs, d.events, d.ops, d.warnings = nil, nil, nil, nil
	d.model = model.Device{ID: id, Kind: "modbus", Manufacturer: c.Manufacturer, Model: c.Model}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Adapter{dev: d, log: log, pool: defaultPool, ops: map[string]map[string]*operation{}, ss: ss}
	for _, o := range opts {
		o(a)
	}
	return a, nil
}

// regReader reads count holding registers from addr.
type regReader func(addr, count uint16) ([]uint16, error)

// findMarker returns the address of the "SunS" marker: the first of
// SunSpecBases that holds it. A place that answers an exception, or
// other registers, is passed over; a read the unit does not answer ends
// the search with its error. The error says what each place gave.
func findMarker(read regReader, timeout time.Duration) (uint16, error) {
	var tried []string
	for _, base := range SunSpecBases {
		r, err := read(base, 2)
		if err != nil {
			if kind, reason := classify(err, timeout); kind == failException || kind == failAddress {
				tried = append(tried, fmt.Sprintf("%d: %s", base, reason))
				continue
			}
			return 0, fmt.Errorf("sunspec: looking for the marker at holding %d: %w", base, err)
		}
		if r[0] == sunsHi && r[1] == sunsLo {
			return base, nil
		}
		tried = append(tried, fmt.Sprintf("%d: %04x %04x", base, r[0], r[1]))
	}
	return 0, fmt.Errorf("sunspec: no \"SunS\" marker (5375 6e53) in holding registers %s: %w", strings.Join(tried, "; "), errNoSunSpec)
}

// errNoSunSpec is returned by Describe when the unit has no SunSpec
// marker where one may be.
var errNoSunSpec = errors.New("not a SunSpec device")

// errBrokenChain is returned by Describe when the model chain cannot be
// walked to its end.
var errBrokenChain = errors.New("SunSpec model chain broken")

// walkChain reads the model headers (ID, L) of the chain after the marker
// at base, up to the end marker (ID 0xFFFF). A header that cannot be read,
// or a model that runs past register 65535, is an error naming its
// address; a read the unit does not answer returns its error as it is.
func walkChain(read regReader, base uint16, timeout time.Duration) ([]ssBlock, error) {
	var chain []ssBlock
	addr := int(base) + 2
	after := func() string {
		if len(chain) == 0 {
			return fmt.Sprintf("the marker at %d", base)
		}
		last := chain[len(chain)-1]
		return fmt.Sprintf("model %d at %d, length %d", last.ID, last.Addr, last.Len)
	}
	for {
		if addr+2 > 65536 {
			return nil, fmt.Errorf("sunspec: %w: %s runs past register 65535", errBrokenChain, after())
		}
		if len(chain) == ssMaxModels {
			return nil, fmt.Errorf("sunspec: %w: more than %d models (no end marker by holding %d)", errBrokenChain, ssMaxModels, addr)
		}
		h, err := read(uint16(addr), 2)
		if err != nil {
			if kind, reason := classify(err, timeout); kind == failException || kind == failAddress {
				return nil, fmt.Errorf("sunspec: %w at holding %d (after %s): %s", errBrokenChain, addr, after(), reason)
			}
			return nil, fmt.Errorf("sunspec: reading the model header at holding %d: %w", addr, err)
		}
		if h[0] == ssEndID {
			return chain, nil
		}
		if h[0] == 0 {
			return nil, fmt.Errorf("sunspec: %w at holding %d (after %s): model ID 0", errBrokenChain, addr, after())
		}
		chain = append(chain, ssBlock{ID: h[0], Addr: uint16(addr), Len: h[1]})
		addr += 2 + int(h[1])
	}
}

// ssIdentity is what model 1 says of the device.
type ssIdentity struct {
	Manufacturer, Model, Version, Serial string
}

// readCommon reads model 1 at b.
func readCommon(read regReader, b ssBlock) (ssIdentity, error) {
	n := min(int(b.Len), ssCommonLen)
	if n < ssCommonSN+16-2 {
		return ssIdentity{}, fmt.Errorf("sunspec: model 1 at holding %d: length %d, want at least %d", b.Addr, b.Len, ssCommonSN+16-2)
	}
	r, err := read(b.Addr+2, uint16(n))
	if err != nil {
		return ssIdentity{}, fmt.Errorf("sunspec: model 1 at holding %d: %w", b.Addr, err)
	}
	str := func(off, regs int) string { return ssText(r[off-2 : off-2+regs]) }
	return ssIdentity{
		Manufacturer: str(ssCommonMn, 16), Model: str(ssCommonMd, 16),
		Version: str(ssCommonVr, 8), Serial: str(ssCommonSN, 16),
	}, nil
}

// ssText decodes a SunSpec string: bytes in register order, ended by a
// NUL; all NULs (not implemented) is "".
func ssText(regs []uint16) string {
	b := make([]byte, 2*len(regs))
	for i, r := range regs {
		binary.BigEndian.PutUint16(b[2*i:], r)
	}
	if i := slices.Index(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimSpace(string(b))
}

// ssRaw decodes the registers of a point of type t (two for 32-bit
// types, the first the most significant) and says whether they hold
// SunSpec's not-implemented value: 0x8000 for int16 and sunssf, 0xFFFF
// for uint16, enum16 and count, 0 for acc32, 0xFFFFFFFF for uint32,
// 0x80000000 for int32, NaN for float32.
func ssRaw(t ssType, r []uint16) (v float64, implemented bool) {
	var u32 uint32
	if t.registers() == 2 {
		u32 = uint32(r[0])<<16 | uint32(r[1])
	}
	switch t {
	case ssInt16, ssSunssf:
		return float64(int16(r[0])), r[0] != 0x8000
	case ssUint16, ssEnum16, ssCount:
		return float64(r[0]), r[0] != 0xFFFF
	case ssAcc32:
		return float64(u32), u32 != 0
	case ssUint32:
		return float64(u32), u32 != 0xFFFFFFFF
	case ssInt32:
		return float64(int32(u32)), u32 != 0x80000000
	case ssFloat32:
		f := float64(math.Float32frombits(u32))
		return f, !math.IsNaN(f)
	}
	return 0, false
}

// ssValue returns the value of a point of type t from its registers r,
// scaled by 10^(sf+exp): sf is the value of its scale factor register
// (nil for a point with none), exp the power of ten to the attribute's
// unit. An enum16 with no scaling is an int64; every other value a
// float64. The error is the reason the value is bad: "not implemented"
// when r or the scale factor holds SunSpec's not-implemented value, or a
// scale factor out of -10 to 10.
func ssValue(t ssType, r []uint16, sf *uint16, sfName string, exp int) (any, error) {
	v, ok := ssRaw(t, r)
	if !ok {
		return nil, errors.New(errNotImplemented)
	}
	if sf != nil {
		s, ok := ssRaw(ssSunssf, []uint16{*sf})
		if !ok {
			return nil, fmt.Errorf("%s (scale factor %s)", errNotImplemented, sfName)
		}
		if s < -10 || s > 10 {
			return nil, fmt.Errorf("scale factor %s is %d, want -10 to 10", sfName, int(s))
		}
		exp += int(s)
	}
	if t == ssEnum16 && exp == 0 {
		return int64(v), nil
	}
	if math.IsInf(v, 0) {
		return nil, fmt.Errorf("register value is %v, not a number", v)
	}
	// Dividing by 10^n gives the float nearest the decimal (2305 / 10 =
	// 230.5, where 2305 * 0.1 = 230.50000000000003).
	if exp < 0 {
		return v / math.Pow10(-exp), nil
	}
	return v * math.Pow10(exp), nil
}

// layoutSunSpec maps the models of chain to attributes: the first
// inverter (101-103, 111-113) is the resource "main" (pv-inverter/1),
// further ones "inverter_2", ...; a model 160 adds module_N_* attributes
// to the inverter before it; meters (201-204) are "meter", "meter_2", ...
// (energy-meter/1), or "main" for the first when the chain has no
// inverter. Points that lie past a model's L are left out. The error
// names the chain when it holds no model osapgw maps.
func layoutSunSpec(id string, base uint16, chain []ssBlock, ident ssIdentity, lim Limits) (*ssLayout, error) {
	hasInverter := slices.ContainsFunc(chain, func(b ssBlock) bool {
		m := sunspecModels[b.ID]
		return m != nil && m.kind == ssInverter
	})
	m := model.Device{ID: id, Kind: "modbus", Manufacturer: ident.Manufacturer, Model: ident.Model,
		Firmware: ident.Version, Serial: ident.Serial}
	var attrs []ssAttr
	var metas []model.Attribute
	var spans []Span
	inverters, meters, modules := 0, 0, map[string]int{}
	lastInverter := ""
	resource := func(name, class, desc string) {
		if !slices.ContainsFunc(m.Resources, func(r model.Resource) bool { return r.Name == name }) {
			m.Resources = append(m.Resources, model.Resource{Name: name, Class: class, Description: desc})
		}
	}
	add := func(b ssBlock, sm *ssModel, res string, pts []ssPoint, sfs map[string]int) {
		lo, hi := -1, -1 // registers of the block the points need
		need := func(off, n int) {
			a := int(b.Addr) + off
			if lo < 0 || a < lo {
				lo = a
			}
			hi = max(hi, a+n)
		}
		for _, p := range pts {
			end := p.offset + p.typ.registers()
			sfOff, hasSF := sfs[p.sf]
			if end > int(b.Len)+2 || hasSF && sfOff >= int(b.Len)+2 {
				continue // past the model's length
			}
			at := ssAttr{resource: res, addr: b.Addr + uint16(p.offset), typ: p.typ, sfAddr: -1, exp: p.exp}
			need(p.offset, p.typ.registers())
			if p.sf != "" {
				at.sfAddr, at.sfName = int(b.Addr)+sfOff, p.sf
				need(sfOff, 1)
			}
			typ := model.TypeFloat
			if p.typ == ssEnum16 {
				typ = model.TypeInt
			}
			attrs = append(attrs, at)
			metas = append(metas, model.Attribute{Name: p.attr, Type: typ, Unit: p.unit,
				Description: fmt.Sprintf("SunSpec model %d %s at holding %d", sm.id, p.name, at.addr)})
		}
		if lo < 0 {
			return
		}
		// The block's registers, in pieces of at most max_registers: Plan
		// merges pieces of neighbouring blocks where it may.
		for a := lo; a < hi; a += lim.MaxRegisters {
			spans = append(spans, Span{ID: len(spans), Table: Holding, Address: uint16(a), Count: uint16(min(lim.MaxRegisters, hi-a))})
		}
	}
	var found []string
	for _, b := range chain {
		found = append(found, fmt.Sprint(b.ID))
		sm := sunspecModels[b.ID]
		if sm == nil {
			continue
		}
		switch sm.kind {
		case ssInverter:
			inverters++
			res := DefaultResource
			if inverters > 1 {
				res = fmt.Sprintf("inverter_%d", inverters)
			}
			lastInverter = res
			resource(res, classes.PVInverter.ID, sm.label)
			add(b, sm, res, sm.points, sm.sfs)
		case ssMeter:
			meters++
			res := "meter"
			switch {
			case meters > 1:
				res = fmt.Sprintf("meter_%d", meters)
			case !hasInverter:
				res = DefaultResource
			}
			resource(res, classes.EnergyMeter.ID, sm.label)
			add(b, sm, res, sm.points, sm.sfs)
		case ssMPPT:
			res := lastInverter
			if res == "" {
				res = "mppt"
				resource(res, "", sm.label)
			}
			// N modules follow the fixed part; they are numbered from
			// the resource's first.
			var pts []ssPoint
			for k := 0; ssMPPTFixed+ssMPPTModule*(k+1) <= int(b.Len)+2; k++ {
				modules[res]++
				pts = append(pts, mpptModule(modules[res], k)...)
			}
			add(b, sm, res, pts, sm.sfs)
		}
	}
	if len(attrs) == 0 {
		return nil, fmt.Errorf("sunspec: the chain at holding %d holds models %s: none that osapgw maps (101-103, 111-113, 160, 201-204)", base, strings.Join(found, ", "))
	}

	// The model: one area "data" a resource, attributes in chain order.
	for i := range m.Resources {
		m.Resources[i].Areas = []model.Area{{Name: DefaultArea}}
	}
	idx := func(res string) int {
		return slices.IndexFunc(m.Resources, func(r model.Resource) bool { return r.Name == res })
	}
	for i, at := range attrs {
		ar := &m.Resources[idx(at.resource)].Areas[0]
		ar.Attributes = append(ar.Attributes, metas[i])
	}
	for i := range m.Resources {
		ar := &m.Resources[i].Areas[0]
		ar.Attributes = slices.Clip(ar.Attributes)
	}
	seen := map[string]int{}
	for i := range attrs {
		r := &m.Resources[idx(attrs[i].resource)]
		attrs[i].m = &r.Areas[0].Attributes[seen[r.Name]]
		seen[r.Name]++
	}
	var errs []error
	for i := range m.Resources {
		if err := classes.Check(&m.Resources[i]); err != nil {
			errs = append(errs, fmt.Errorf("sunspec: resource %q: %w", m.Resources[i].Name, err))
		}
	}
	if err := m.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &ssLayout{base: base, chain: chain, attrs: attrs, reads: Plan(spans, lim), model: m, limits: lim}, nil
}

// describeSunSpec returns the device's model, finding it on the first
// call that succeeds: the marker, the chain, model 1's strings. The error
// says why the chain could not be read; the caller (the bridge, or Run)
// tries again later.
func (a *Adapter) describeSunSpec(ctx context.Context) (*ssLayout, error) {
	if l := a.ss.layout.Load(); l != nil {
		return l, nil
	}
	select {
	case a.ss.sem <- struct{}{}:
		defer func() { <-a.ss.sem }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if l := a.ss.layout.Load(); l != nil {
		return l, nil
	}
	sl := a.pool.acquire(a.dev.link, a.dev.requestDelay)
	defer a.pool.release(sl)
	read := func(addr, count uint16) ([]uint16, error) {
		b, err := a.doRead(ctx, sl, Read{Table: Holding, Address: addr, Count: count})
		if err != nil {
			return nil, err
		}
		return registersOf(b[:2*int(count)]), nil
	}
	fail := func(err error) (*ssLayout, error) {
		return nil, fmt.Errorf("device %q: %w", a.dev.id, err)
	}
	base, err := findMarker(read, a.dev.timeout)
	if err != nil {
		return fail(err)
	}
	chain, err := walkChain(read, base, a.dev.timeout)
	if err != nil {
		return fail(err)
	}
	var ident ssIdentity
	if i := slices.IndexFunc(chain, func(b ssBlock) bool { return b.ID == 1 }); i >= 0 {
		if ident, err = readCommon(read, chain[i]); err != nil {
			return fail(err)
		}
	}
	if a.ss.manufacturer != "" {
		ident.Manufacturer = a.ss.manufacturer
	}
	if a.ss.model != "" {
		ident.Model = a.ss.model
	}
	l, err := layoutSunSpec(a.dev.id, base, chain, ident, a.dev.limits())
	if err != nil {
		return fail(err)
	}
	ids := make([]int, len(chain))
	for i, b := range chain {
		ids[i] = int(b.ID)
	}
	a.log.Info("sunspec device described", "base", base, "models", ids, "attributes", len(l.attrs), "reads", len(l.reads))
	a.ss.layout.Store(l)
	return l, nil
}
