package modbus

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/model"
)

// Defaults applied by Config.compile to keys left out.
const (
	DefaultTimeout      = time.Second
	DefaultPoll         = 5 * time.Second
	DefaultMaxGap       = 8
	DefaultMaxRegisters = 125
	DefaultMaxBits      = 2000
	DefaultOfflineAfter = 3
	DefaultSkipFor      = 4 * time.Second
	DefaultPointRetry   = 60 * time.Second
	DefaultReportEvery  = 5 * time.Minute
	DefaultBaud         = 9600
	DefaultResource     = "main"
	DefaultArea         = "data"
)

// FirstProbe is the wait, after a unit is reported offline, before it is
// first probed; the wait doubles after each probe it does not answer, up
// to skip_for (see probeDelay).
const FirstProbe = time.Second

// Config is one Modbus sub-device: a unit on a link, its register map, its
// events and its operations. It is the [[device]] block of osapgw.toml with
// kind = "modbus"; README.md and docs/configuration.md describe every key.
type Config struct {
	URL          string        `toml:"url"`
	Unit         *int          `toml:"unit"` // required: nil is missing
	Baud         int           `toml:"baud"`
	DataBits     int           `toml:"data_bits"`
	Parity       string        `toml:"parity"`
	StopBits     int           `toml:"stop_bits"`
	Timeout      time.Duration `toml:"timeout"`
	Poll         time.Duration `toml:"poll"`
	RequestDelay time.Duration `toml:"request_delay"`
	MaxGap       *int          `toml:"max_gap"`
	MaxRegisters int           `toml:"max_registers"`
	MaxBits      int           `toml:"max_bits"`
	OfflineAfter int           `toml:"offline_after"`
	// SkipFor caps the backoff between probes of an offline unit
	// (FirstProbe doubling up to SkipFor).
	SkipFor time.Duration `toml:"skip_for"`
	// PointRetry is how long a read that fails on its own (bad points of
	// a unit that answers) is left alone; it defaults to SkipFor when that
	// is set (what skip_for meant before it capped the probes), else to
	// DefaultPointRetry.
	PointRetry   time.Duration `toml:"point_retry"`
	ReportEvery  time.Duration `toml:"report_every"`
	Manufacturer string        `toml:"manufacturer"`
	Model        string        `toml:"model"`
	// AllowRaw adds RawOperation to the device (off by default).
	AllowRaw bool `toml:"allow_raw"`

	// Profile names the device's profile (profile.go): its points, class
	// and link settings, which this block's keys override.
	Profile string `toml:"profile"`
	// Class is the class the resource "main" implements, when the profile
	// gives none or this device differs.
	Class string `toml:"class"`
	// Exclude names points (attributes, events, operations) of the profile
	// this device does not have.
	Exclude []string `toml:"exclude"`
	// PointDefaults (table, type, order, scale) apply to the points that
	// do not set them.
	PointDefaults

	Attributes []AttributeConfig `toml:"attribute"`
	Events     []EventConfig     `toml:"event"`
	Operations []OperationConfig `toml:"operation"`

	given *givenKeys // the keys the block gives, when New decoded it
}

// AttributeConfig maps one attribute to registers or a bit.
type AttributeConfig struct {
	Name        string        `toml:"name"`
	Resource    string        `toml:"resource"`
	Area        string        `toml:"area"`
	Description string        `toml:"description"`
	Table       string        `toml:"table"`
	Address     *int          `toml:"address"`
	Type        string        `toml:"type"`
	Order       string        `toml:"order"`
	Bit         *int          `toml:"bit"`
	Length      int           `toml:"length"`
	Scale       *float64      `toml:"scale"`
	Offset      float64       `toml:"offset"`
	Unit        string        `toml:"unit"`
	Deadband    float64       `toml:"deadband"`
	Poll        time.Duration `toml:"poll"`
	Writable    bool          `toml:"writable"`
	ReadBack    bool          `toml:"read_back"`
	Min         *float64      `toml:"min"`
	Max         *float64      `toml:"max"`
}

// EventConfig is an event rule on an attribute: a threshold crossed upward
// (above) or downward (below) with hysteresis, or any change (on_change, for
// bools).
type EventConfig struct {
	Name        string   `toml:"name"`
	Attribute   string   `toml:"attribute"`
	Description string   `toml:"description"`
	Above       *float64 `toml:"above"`
	Below       *float64 `toml:"below"`
	Hysteresis  float64  `toml:"hysteresis"`
	OnChange    bool     `toml:"on_change"`
}

// OperationConfig is a named write sequence with declared parameters.
type OperationConfig struct {
	Name        string        `toml:"name"`
	Resource    string        `toml:"resource"`
	Area        string        `toml:"area"`
	Description string        `toml:"description"`
	Params      []ParamConfig `toml:"param"`
	Writes      []WriteConfig `toml:"write"`
}

// ParamConfig declares an input parameter of an operation.
type ParamConfig struct {
	Name     string   `toml:"name"`
	Type     string   `toml:"type"` // bool, int, float, string
	Min      *float64 `toml:"min"`
	Max      *float64 `toml:"max"`
	Optional bool     `toml:"optional"`
	Default  any      `toml:"default"`
}

// WriteConfig is one write of an operation: a literal value or "{param}".
type WriteConfig struct {
	Table   string   `toml:"table"`
	Address *int     `toml:"address"`
	Type    string   `toml:"type"`
	Order   string   `toml:"order"`
	Bit     *int     `toml:"bit"`
	Length  int      `toml:"length"`
	Scale   *float64 `toml:"scale"`
	Offset  float64  `toml:"offset"`
	Value   any      `toml:"value"`
}

// link is where a device is reached; devices with the same key share one.
type link struct {
	Scheme   string // tcp, rtu, ascii
	Address  string // host:port or a device path
	Baud     int
	DataBits int
	Parity   string
	StopBits int
}

func (l link) key() string {
	if l.Scheme == "tcp" {
		return "tcp://" + l.Address
	}
	return fmt.Sprintf("%s://%s?baud=%d&data_bits=%d&parity=%s&stop_bits=%d", l.Scheme, l.Address, l.Baud, l.DataBits, l.Parity, l.StopBits)
}

func (l link) serial() bool { return l.Scheme != "tcp" }

// ParseURL parses a link URL: tcp://host[:port] (port 502 by default),
// rtu:///dev/ttyUSB0 or ascii:///dev/ttyUSB0. Serial settings take their
// defaults (9600 8N1 for RTU, 9600 7E1 for ASCII) unless the query gives
// them (rtu:///dev/ttyUSB0?baud=19200&parity=E); it fails naming what is
// wrong.
func ParseURL(s string) (link, error) {
	u, err := url.Parse(s)
	if err != nil {
		return link{}, fmt.Errorf("url %q: %w", s, err)
	}
	l := link{Scheme: u.Scheme}
	switch u.Scheme {
	case "tcp":
		if u.Host == "" || u.Path != "" && u.Path != "/" {
			return link{}, fmt.Errorf("url %q: want tcp://host:port", s)
		}
		host, port := u.Hostname(), u.Port()
		if port == "" {
			port = "502"
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return link{}, fmt.Errorf("url %q: bad port %q", s, port)
		}
		l.Address = net.JoinHostPort(host, port)
	case "rtu", "ascii":
		if u.Host != "" || u.Path == "" {
			return link{}, fmt.Errorf("url %q: want %s:///dev/PORT (three slashes)", s, u.Scheme)
		}
		l.Address = u.Path
		l.Baud, l.DataBits, l.Parity, l.StopBits = DefaultBaud, 8, "N", 1
		if u.Scheme == "ascii" {
			l.DataBits, l.Parity = 7, "E"
		}
		// Serial settings may ride in the query (for discover).
		q := u.Query()
		for key, dst := range map[string]*int{"baud": &l.Baud, "data_bits": &l.DataBits, "stop_bits": &l.StopBits} {
			if v := q.Get(key); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil {
					return link{}, fmt.Errorf("url %q: %s: %q is not a number", s, key, v)
				}
				*dst = n
			}
		}
		if v := q.Get("parity"); v != "" {
			l.Parity = strings.ToUpper(v)
		}
	default:
		return link{}, fmt.Errorf("url %q: unknown scheme %q (want tcp, rtu or ascii)", s, u.Scheme)
	}
	return l, nil
}

// attr is a compiled attribute. It keeps only what polling and writing
// need, since a gateway may hold tens of thousands: what the model says
// of it (type, unit, limits, writable, description) lives once, in the
// device's model, which m points into; codecs are shared by the
// attributes of a device that encode alike.
type attr struct {
	m        *model.Attribute // its name, type, limits and writable flag
	enc      *encoding
	resource string
	Deadband float64
	poll     time.Duration
	addr     uint16
	ReadBack bool
}

// encoding is where and how a value is kept: its table and codec. The
// attributes of a device that encode alike share one.
type encoding struct {
	table Table
	codec Codec
}

// span is the range of registers (or bits) the attribute occupies.
func (a *attr) span() (lo, hi int) { return int(a.addr), int(a.addr) + a.enc.codec.Registers() - 1 }

// attrMeta is what the model says of an attribute, and in which area:
// compile builds the model from it, then drops it.
type attrMeta struct {
	area string
	model.Attribute
}

// event is a compiled event rule on attribute attr (an index in
// device.attrs).
type event struct {
	EventConfig
	attr int
	// resource is the attribute's resource, which the event reports.
	resource string
}

// operation is a compiled operation.
type operation struct {
	OperationConfig
	writes []write
}

// write is a compiled write of an operation.
type write struct {
	table Table
	addr  uint16
	codec Codec
	param string // the parameter whose value is written, or ""
	value any    // the literal written when param is ""
}

// device is a compiled Config.
type device struct {
	id           string
	link         link
	unit         byte
	timeout      time.Duration
	requestDelay time.Duration
	maxGap       int
	maxRegisters int
	maxBits      int
	offlineAfter int
	skipFor      time.Duration // cap of the probe backoff of an offline unit
	pointRetry   time.Duration // a read failing on its own is left alone this long
	reportEvery  time.Duration
	attrs        []attr
	events       []*event
	ops          []*operation
	allowRaw     bool // RawOperation is in the model and answered
	// model is the device's model, built once: Describe returns it, and
	// attrs point into it.
	model model.Device
	// warnings are what compile found valid but suspect.
	warnings []error
}

// compile checks c and returns the device it describes. It is pure (no
// I/O). Every problem found is reported, each naming the device, the
// attribute, event or operation, and the key.
func (c Config) compile(id string) (*device, error) {
	var errs []error
	fail := func(key, format string, args ...any) {
		errs = append(errs, &adapters.FieldError{Device: id, Key: key, Err: fmt.Errorf(format, args...)})
	}
	// in reports the errors of an item (attribute[2]) labelled for the
	// operator (attribute "temp").
	in := func(path, label string, ierrs []error) {
		for _, e := range ierrs {
			errs = append(errs, within(id, path, label, e))
		}
	}
	d := &device{id: id}
	l, err := ParseURL(c.URL)
	if c.URL == "" {
		fail("url", "url: missing (want tcp://host:port, rtu:///dev/PORT or ascii:///dev/PORT)")
	} else if err != nil {
		fail("url", "%v", err)
	}
	serial := l.Scheme == "rtu" || l.Scheme == "ascii" // not for a bad url
	if serial {
		if c.Baud != 0 {
			l.Baud = c.Baud
		}
		if c.DataBits != 0 {
			l.DataBits = c.DataBits
		}
		if c.Parity != "" {
			l.Parity = strings.ToUpper(c.Parity)
		}
		if c.StopBits != 0 {
			l.StopBits = c.StopBits
		}
		if l.Baud < 50 || l.Baud > 4000000 {
			fail("baud", "baud: %d out of range", l.Baud)
		}
		if l.DataBits < 5 || l.DataBits > 8 {
			fail("data_bits", "data_bits: %d, want 5 to 8", l.DataBits)
		}
		if l.Parity != "N" && l.Parity != "E" && l.Parity != "O" {
			fail("parity", "parity: %q, want N, E or O", c.Parity)
		}
		if l.StopBits != 1 && l.StopBits != 2 {
			fail("stop_bits", "stop_bits: %d, want 1 or 2", l.StopBits)
		}
	} else if err == nil {
		for _, k := range []struct {
			key string
			set bool
		}{{"baud", c.Baud != 0}, {"data_bits", c.DataBits != 0}, {"parity", c.Parity != ""}, {"stop_bits", c.StopBits != 0}} {
			if k.set {
				fail(k.key, "%s: baud, data_bits, parity and stop_bits apply to rtu:// and ascii:// links only", k.key)
			}
		}
	}
	d.link = l
	switch {
	case c.Unit == nil && serial:
		fail("unit", "unit: missing: give the unit id of the device on the bus (1 to 247)")
	case c.Unit == nil:
		fail("unit", "unit: missing: give the unit id the device answers to (often 1; 0 or 255 for some TCP gateways)")
	case *c.Unit == 0 && serial:
		fail("unit", "unit: 0 is the broadcast address on a serial bus; give the unit id (1 to 247)")
	case serial && (*c.Unit < 1 || *c.Unit > 247):
		fail("unit", "unit: %d, want 1 to 247 on a serial bus", *c.Unit)
	case *c.Unit < 0 || *c.Unit > 255:
		fail("unit", "unit: %d, want 0 to 255", *c.Unit)
	default:
		d.unit = byte(*c.Unit)
	}
	dur := func(key string, v, def time.Duration) time.Duration {
		switch {
		case v < 0:
			fail(key, "%s: %v is negative", key, v)
		case v == 0:
			return def
		}
		return v
	}
	d.timeout = dur("timeout", c.Timeout, DefaultTimeout)
	poll := dur("poll", c.Poll, DefaultPoll)
	d.requestDelay = dur("request_delay", c.RequestDelay, 0)
	d.skipFor = dur("skip_for", c.SkipFor, DefaultSkipFor)
	d.pointRetry = dur("point_retry", c.PointRetry, DefaultPointRetry)
	if c.PointRetry == 0 && c.SkipFor > 0 {
		d.pointRetry = c.SkipFor
	}
	d.reportEvery = dur("report_every", c.ReportEvery, DefaultReportEvery)
	d.maxGap = DefaultMaxGap
	if c.MaxGap != nil {
		d.maxGap = *c.MaxGap
		if d.maxGap < 0 || d.maxGap > DefaultMaxRegisters {
			fail("max_gap", "max_gap: %d, want 0 to %d", d.maxGap, DefaultMaxRegisters)
		}
	}
	limit := func(key string, v, def int) int {
		if v == 0 {
			return def
		}
		if v < 1 || v > def {
			fail(key, "%s: %d, want 1 to %d", key, v, def)
		}
		return v
	}
	d.maxRegisters = limit("max_registers", c.MaxRegisters, DefaultMaxRegisters)
	d.maxBits = limit("max_bits", c.MaxBits, DefaultMaxBits)
	d.offlineAfter = c.OfflineAfter
	if d.offlineAfter == 0 {
		d.offlineAfter = DefaultOfflineAfter
	} else if d.offlineAfter < 0 {
		fail("offline_after", "offline_after: %d is negative", c.OfflineAfter)
	}

	// Attributes by name (the last one, when resources share a name), as
	// events name them: an index in attrs and metas. Until buildModel,
	// attributes point into metas, which never grows past its capacity.
	names := map[string]int{}
	metas := make([]attrMeta, 0, len(c.Attributes))
	d.attrs = make([]attr, 0, len(c.Attributes))
	var valid []placed
	encs := map[encoding]*encoding{}
	// taken holds the names given in each resource, which attributes,
	// events and operations share.
	taken := map[[2]string]string{}
	if len(c.Attributes) == 0 {
		fail("", "no [[device.attribute]]: a Modbus device needs at least one")
	}
	for i, ac := range c.Attributes {
		path := fmt.Sprintf("attribute[%d]", i)
		if ac.Name == "" {
			fail(path+".name", "attribute #%d: name: missing", i+1)
			continue
		}
		label := fmt.Sprintf("attribute %q", ac.Name)
		a, meta, aerrs := compileAttr(ac, poll, encs)
		in(path, label, aerrs)
		if _, ok := taken[[2]string{a.resource, ac.Name}]; ok {
			fail(path+".name", "%s: duplicate name in resource %q", label, a.resource)
		}
		taken[[2]string{a.resource, ac.Name}] = label
		if len(aerrs) == 0 {
			if w := modicon(a.enc.table, int(a.addr)); w != nil {
				d.warnings = append(d.warnings, within(id, path+".address", label, w))
			}
		}
		names[ac.Name] = len(d.attrs)
		metas = append(metas, meta)
		a.m = &metas[len(metas)-1].Attribute
		d.attrs = append(d.attrs, a)
		if len(aerrs) == 0 {
			valid = append(valid, placed{&d.attrs[len(d.attrs)-1], i})
		}
	}
	errs = append(errs, overlaps(id, valid, d.maxRegisters)...)

	for i, ec := range c.Events {
		e := &event{EventConfig: ec, attr: -1}
		path := fmt.Sprintf("event[%d]", i)
		label := fmt.Sprintf("event %q", ec.Name)
		if ec.Name == "" {
			label = fmt.Sprintf("event #%d", i+1)
			fail(path+".name", "%s: name: missing", label)
		}
		ai, ok := names[ec.Attribute]
		switch {
		case ec.Attribute == "":
			fail(path+".attribute", "%s: attribute: missing", label)
		case !ok:
			fail(path+".attribute", "%s: attribute: no attribute %q", label, ec.Attribute)
		}
		kinds := 0
		for _, set := range []bool{ec.Above != nil, ec.Below != nil, ec.OnChange} {
			if set {
				kinds++
			}
		}
		if kinds != 1 {
			fail(path, "%s: give exactly one of above, below, on_change", label)
		}
		if ec.Hysteresis < 0 {
			fail(path+".hysteresis", "%s: hysteresis: %v is negative", label, ec.Hysteresis)
		}
		if ok {
			typ := metas[ai].Type
			if (ec.Above != nil || ec.Below != nil) && (typ != model.TypeInt && typ != model.TypeFloat) {
				key := path + ".above"
				if ec.Above == nil {
					key = path + ".below"
				}
				fail(key, "%s: above/below need a numeric attribute, %q is %s", label, ec.Attribute, typ)
			}
			e.attr, e.resource = ai, d.attrs[ai].resource
			if first, dup := taken[[2]string{e.resource, ec.Name}]; dup && ec.Name != "" {
				fail(path+".name", "%s: name: resource %q has %s already", label, e.resource, first)
			}
			taken[[2]string{e.resource, ec.Name}] = label
		}
		d.events = append(d.events, e)
	}

	for i, oc := range c.Operations {
		o, oerrs := compileOp(oc)
		path := fmt.Sprintf("operation[%d]", i)
		label := fmt.Sprintf("operation %q", oc.Name)
		if oc.Name == "" {
			label = fmt.Sprintf("operation #%d", i+1)
			fail(path+".name", "%s: name: missing", label)
		} else if first, dup := taken[[2]string{o.Resource, oc.Name}]; dup {
			fail(path+".name", "%s: name: resource %q has %s already", label, o.Resource, first)
		}
		taken[[2]string{o.Resource, oc.Name}] = label
		in(path, label, oerrs)
		for j, wc := range oc.Writes {
			if wc.Address == nil {
				continue
			}
			if w := modicon(Table(strings.ToLower(wc.Table)), *wc.Address); w != nil {
				d.warnings = append(d.warnings, within(id, fmt.Sprintf("%s.write[%d].address", path, j), fmt.Sprintf("%s: write #%d", label, j+1), w))
			}
		}
		d.ops = append(d.ops, o)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	d.allowRaw = c.AllowRaw
	d.buildModel(c, metas)
	return d, nil
}

// buildModel builds the device's model from the compiled configuration
// and points each attribute at its entry. Resources and areas come in the
// order the attributes, events and operations first name them. Every
// slice is allocated to its exact length, and never grows after.
func (d *device) buildModel(c Config, metas []attrMeta) {
	m := model.Device{ID: d.id, Kind: "modbus", Manufacturer: c.Manufacturer, Model: c.Model}
	resIdx := map[string]int{}
	area := func(res, name string) (int, int) {
		i, ok := resIdx[res]
		if !ok {
			i = len(m.Resources)
			resIdx[res] = i
			m.Resources = append(m.Resources, model.Resource{Name: res})
		}
		r := &m.Resources[i]
		for k := range r.Areas {
			if r.Areas[k].Name == name {
				return i, k
			}
		}
		r.Areas = append(r.Areas, model.Area{Name: name})
		return i, len(r.Areas) - 1
	}
	type place struct{ r, a, k int }
	at := make([]place, len(d.attrs))
	for i := range d.attrs {
		r, a := area(d.attrs[i].resource, metas[i].area)
		ar := &m.Resources[r].Areas[a]
		at[i] = place{r, a, len(ar.Attributes)}
		ar.Attributes = append(ar.Attributes, metas[i].Attribute)
	}
	for _, e := range d.events {
		meta := metas[e.attr]
		r, a := area(e.resource, meta.area)
		ar := &m.Resources[r].Areas[a]
		params := []model.Param{{Name: "value", Type: meta.Type, Unit: meta.Unit}}
		if !e.OnChange {
			params = append(params, model.Param{Name: "active", Type: model.TypeBool})
		}
		ar.Events = append(ar.Events, model.EventType{Name: e.Name, Params: params, Description: e.Description})
	}
	for _, o := range d.ops {
		r, a := area(o.Resource, o.Area)
		ar := &m.Resources[r].Areas[a]
		op := model.Operation{Name: o.Name, Description: o.Description}
		for _, p := range o.Params {
			op.Inputs = append(op.Inputs, model.Param{Name: p.Name, Type: model.Type(p.Type), Min: p.Min, Max: p.Max, Required: !p.Optional && p.Default == nil})
		}
		ar.Operations = append(ar.Operations, op)
	}
	if d.allowRaw {
		r, a := area(DefaultResource, RawArea)
		ar := &m.Resources[r].Areas[a]
		ar.Operations = append(ar.Operations, rawOperationModel())
	}
	// Trim what append over-allocated, then take the pointers, which stay
	// valid since nothing is appended any more.
	m.Resources = slices.Clone(m.Resources)
	for i := range m.Resources {
		r := &m.Resources[i]
		r.Areas = slices.Clone(r.Areas)
		for k := range r.Areas {
			ar := &r.Areas[k]
			ar.Attributes = slices.Clone(ar.Attributes)
			ar.Events = slices.Clone(ar.Events)
			ar.Operations = slices.Clone(ar.Operations)
		}
	}
	for i, p := range at {
		d.attrs[i].m = &m.Resources[p.r].Areas[p.a].Attributes[p.k]
	}
	d.model = m
}

func compileCodec(table Table, typ, order string, bit *int, length int, scale *float64, offset float64) (Codec, []error) {
	var errs []error
	c := Codec{Type: Type(strings.ToLower(typ)), Order: Order(strings.ToUpper(order)), Bit: -1, Length: length, Scale: 1, Offset: offset}
	if typ == "" {
		c.Type = Uint16
		if table.bits() {
			c.Type = Bool
		}
	}
	if order == "" {
		c.Order = ABCD
	}
	if !c.Type.valid() {
		errs = append(errs, keyErr("type", "type: unknown type %q (want one of %v)", typ, Types))
	}
	if !c.Order.valid() {
		errs = append(errs, keyErr("order", "order: unknown byte order %q (want ABCD, DCBA, BADC or CDAB)", order))
	}
	if scale != nil {
		c.Scale = *scale
		if c.Scale == 0 || math.IsNaN(c.Scale) || math.IsInf(c.Scale, 0) {
			errs = append(errs, keyErr("scale", "scale: %v, want a finite non-zero number", *scale))
			c.Scale = 1
		}
	}
	switch {
	case table.bits() && c.Type != Bool:
		errs = append(errs, keyErr("type", "type: a %s holds bits, want type bool, not %q", table, c.Type))
	case table.bits() && bit != nil:
		errs = append(errs, keyErr("bit", "bit: applies to a bool in a register, not to a %s", table))
	case !table.bits() && c.Type == Bool && bit == nil:
		errs = append(errs, keyErr("bit", "bit: a bool in a %s register needs bit = 0 to 15", table))
	case bit != nil && c.Type != Bool:
		errs = append(errs, keyErr("bit", "bit: applies to type bool only"))
	}
	if bit != nil {
		c.Bit = *bit
		if c.Bit < 0 || c.Bit > 15 {
			errs = append(errs, keyErr("bit", "bit: %d, want 0 to 15", c.Bit))
		}
	}
	if c.Type == String {
		if length < 1 || length > DefaultMaxRegisters {
			errs = append(errs, keyErr("length", "length: a string needs length = 1 to %d registers", DefaultMaxRegisters))
		}
	} else if length != 0 && length != c.Type.registers(length) {
		errs = append(errs, keyErr("length", "length: type %s needs %d registers, length gives %d", c.Type, c.Type.registers(length), length))
	}
	if (c.Type == Bool || c.Type == String) && (scale != nil || offset != 0) {
		key := "scale"
		if scale == nil {
			key = "offset"
		}
		errs = append(errs, keyErr(key, "scale/offset: apply to numeric types only"))
	}
	return c, errs
}

// compileAttr checks one attribute; encs interns the encodings of the
// device.
func compileAttr(ac AttributeConfig, poll time.Duration, encs map[encoding]*encoding) (attr, attrMeta, []error) {
	var errs []error
	table := Table(strings.ToLower(ac.Table))
	a := attr{Deadband: ac.Deadband, ReadBack: ac.ReadBack, resource: ac.Resource, poll: ac.Poll}
	meta := attrMeta{area: ac.Area, Attribute: model.Attribute{
		Name: ac.Name, Unit: ac.Unit, Min: ac.Min, Max: ac.Max, Writable: ac.Writable, Description: ac.Description,
	}}
	if a.resource == "" {
		a.resource = DefaultResource
	}
	if meta.area == "" {
		meta.area = DefaultArea
	}
	if a.poll == 0 {
		a.poll = poll
	} else if a.poll < 0 {
		errs = append(errs, keyErr("poll", "poll: %v is negative", ac.Poll))
	}
	if !table.valid() {
		what := fmt.Sprintf("unknown table %q", ac.Table)
		if ac.Table == "" {
			what = "missing"
		}
		errs = append(errs, keyErr("table", "table: %s (want coil, discrete, input or holding)", what))
		a.enc = &encoding{table: table, codec: Codec{Type: Uint16}}
		return a, meta, errs
	}
	if ac.Address == nil {
		errs = append(errs, keyErr("address", "address: missing"))
	} else if *ac.Address < 0 || *ac.Address > 65535 {
		errs = append(errs, keyErr("address", "address: %d, want 0 to 65535", *ac.Address))
	} else {
		a.addr = uint16(*ac.Address)
	}
	c, cerrs := compileCodec(table, ac.Type, ac.Order, ac.Bit, ac.Length, ac.Scale, ac.Offset)
	errs = append(errs, cerrs...)
	enc := encoding{table: table, codec: c}
	if encs[enc] == nil {
		encs[enc] = &enc
	}
	a.enc = encs[enc]
	if ac.Address != nil && int(a.addr)+c.Registers() > 65536 {
		errs = append(errs, keyErr("address", "address: %d + %d registers runs past 65535", a.addr, c.Registers()))
	}
	if ac.Writable && (table == Input || table == Discrete) {
		errs = append(errs, keyErr("writable", "writable: a %s is read-only", table))
	}
	if ac.ReadBack && !ac.Writable {
		errs = append(errs, keyErr("read_back", "read_back: needs writable = true"))
	}
	if ac.Deadband < 0 {
		errs = append(errs, keyErr("deadband", "deadband: %v is negative", ac.Deadband))
	}
	if ac.Min != nil && ac.Max != nil && *ac.Min > *ac.Max {
		errs = append(errs, keyErr("min", "min %v is above max %v", *ac.Min, *ac.Max))
	}
	switch {
	case c.Type == Bool:
		meta.Type = model.TypeBool
	case c.Type == String:
		meta.Type = model.TypeString
	case c.Type.integer() && !c.scaled():
		meta.Type = model.TypeInt
	default:
		meta.Type = model.TypeFloat
	}
	return a, meta, errs
}

// placed is a compiled attribute and its index in Config.Attributes.
type placed struct {
	a *attr
	i int
}

// overlaps reports attributes of the same table whose registers overlap
// (bools in distinct bits of one register may share it), and attributes
// larger than one request.
func overlaps(id string, attrs []placed, maxRegisters int) []error {
	var errs []error
	fail := func(i int, format string, args ...any) {
		errs = append(errs, &adapters.FieldError{Device: id, Key: fmt.Sprintf("attribute[%d].address", i), Err: fmt.Errorf(format, args...)})
	}
	sorted := append([]placed(nil), attrs...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].a.enc.table != sorted[j].a.enc.table {
			return sorted[i].a.enc.table < sorted[j].a.enc.table
		}
		return sorted[i].a.addr < sorted[j].a.addr
	})
	for i, pa := range sorted {
		a := pa.a
		if lo, hi := a.span(); !a.enc.table.bits() && hi-lo+1 > maxRegisters {
			fail(pa.i, "attribute %q: %d registers exceed max_registers %d", a.m.Name, hi-lo+1, maxRegisters)
		}
		for _, pb := range sorted[i+1:] {
			b := pb.a
			if b.enc.table != a.enc.table {
				break
			}
			alo, ahi := a.span()
			blo, bhi := b.span()
			if blo > ahi {
				break
			}
			if bhi < alo {
				continue
			}
			if a.enc.codec.Bit >= 0 && b.enc.codec.Bit >= 0 && a.enc.codec.Bit != b.enc.codec.Bit {
				continue
			}
			fail(pb.i, "attribute %q: %s registers %d-%d overlap attribute %q (%d-%d)", b.m.Name, b.enc.table, blo, bhi, a.m.Name, alo, ahi)
		}
	}
	return errs
}

func compileOp(oc OperationConfig) (*operation, []error) {
	var errs []error
	o := &operation{OperationConfig: oc}
	if o.Resource == "" {
		o.Resource = DefaultResource
	}
	if o.Area == "" {
		o.Area = DefaultArea
	}
	params := map[string]ParamConfig{}
	for k, p := range oc.Params {
		path := fmt.Sprintf("param[%d]", k)
		if p.Name == "" {
			errs = append(errs, keyErr(path+".name", "param: name missing"))
			continue
		}
		label := fmt.Sprintf("param %q", p.Name)
		if !model.Type(p.Type).Valid() || p.Type == string(model.TypeJSON) {
			errs = append(errs, keyErr(path+".type", "%s: type: unknown type %q (want bool, int, float or string)", label, p.Type))
		}
		if _, dup := params[p.Name]; dup {
			errs = append(errs, keyErr(path+".name", "%s: duplicate", label))
		}
		params[p.Name] = p
	}
	if len(oc.Writes) == 0 {
		errs = append(errs, keyErr("", "no [[device.operation.write]]"))
	}
	for j, wc := range oc.Writes {
		w := write{table: Table(strings.ToLower(wc.Table))}
		path, where := fmt.Sprintf("write[%d]", j), fmt.Sprintf("write #%d", j+1)
		if w.table != Coil && w.table != Holding {
			errs = append(errs, keyErr(path+".table", "%s: table: %q, want coil or holding", where, wc.Table))
			continue
		}
		if wc.Address == nil || *wc.Address < 0 || *wc.Address > 65535 {
			errs = append(errs, keyErr(path+".address", "%s: address: missing or out of 0 to 65535", where))
		} else {
			w.addr = uint16(*wc.Address)
		}
		c, cerrs := compileCodec(w.table, wc.Type, wc.Order, wc.Bit, wc.Length, wc.Scale, wc.Offset)
		for _, e := range cerrs {
			errs = append(errs, within("", path, where, e))
		}
		w.codec = c
		switch v := wc.Value.(type) {
		case nil:
			errs = append(errs, keyErr(path+".value", "%s: value: missing", where))
		case string:
			if strings.HasPrefix(v, "{") && strings.HasSuffix(v, "}") {
				w.param = v[1 : len(v)-1]
				if _, ok := params[w.param]; !ok {
					errs = append(errs, keyErr(path+".value", "%s: value: no param %q", where, w.param))
				}
			} else {
				w.value = v
			}
		default:
			w.value = v
		}
		if w.param == "" && w.value != nil {
			if _, err := c.Encode(w.value, 0); err != nil {
				errs = append(errs, keyErr(path+".value", "%s: value: %w", where, err))
			}
		}
		o.writes = append(o.writes, w)
	}
	return o, errs
}

// keyErr returns an error about key (a path relative to the item being
// compiled, "" for the item itself) whose text is format's.
func keyErr(key, format string, args ...any) error {
	return &adapters.FieldError{Key: key, Err: fmt.Errorf(format, args...)}
}

// within returns err, an error about an item's key (a *adapters.FieldError
// from keyErr, or any error about the item as a whole), as one about the
// device's key: its key under path ("attribute[2]") and its text after
// label (`attribute "temp": `).
func within(id, path, label string, err error) *adapters.FieldError {
	key := path
	var fe *adapters.FieldError
	if errors.As(err, &fe) {
		if fe.Key != "" {
			key = path + "." + fe.Key
			if path == "" {
				key = fe.Key
			}
		}
		err = fe.Err
	}
	return &adapters.FieldError{Device: id, Key: key, Err: fmt.Errorf("%s: %w", label, err)}
}

// modicon returns a warning when addr, on a 16-bit table, looks like a
// Modicon register number (30001-39999: input register; 40001-49999:
// holding register) rather than the protocol address the request carries,
// and nil otherwise. A device whose map is written in protocol addresses
// may use these addresses: it is a warning, not an error.
func modicon(table Table, addr int) error {
	if (table != Input && table != Holding) || addr < 30001 || addr > 49999 || addr == 40000 {
		return nil
	}
	numbered, base := Input, 30001
	if addr >= 40001 {
		numbered, base = Holding, 40001
	}
	if numbered == table {
		return fmt.Errorf("address %d looks like a Modicon number: %s register %d is protocol address %d; write address = %d unless the device's manual gives protocol addresses", addr, table, addr, addr-base, addr-base)
	}
	return fmt.Errorf("address %d looks like a Modicon number: %s register %d is protocol address %d of the %s table; write table = %q, address = %d unless the device's manual gives protocol addresses", addr, numbered, addr, addr-base, numbered, numbered, addr-base)
}
