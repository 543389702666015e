package modbus

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/classes"
	"github.com/osapgw/osapgw/model"
	"github.com/osapgw/osapgw/profiles"
)

// PointDefaults are the keys a device block, or a profile's [defaults],
// gives once for the points that do not set them: a profile's defaults
// apply to its points, a device's to every point it has (its profile's and
// its own), and a point's own keys win over both. Type, order and scale
// apply to register points only; order also to the writes of operations.
type PointDefaults struct {
	Table string   `toml:"table"`
	Type  string   `toml:"type"`
	Order string   `toml:"order"`
	Scale *float64 `toml:"scale"`
}

func (d PointDefaults) zero() bool { return d == PointDefaults{} }

// over returns d with the keys that o sets replaced by o's.
func (d PointDefaults) over(o PointDefaults) PointDefaults {
	if o.Table != "" {
		d.Table = o.Table
	}
	if o.Type != "" {
		d.Type = o.Type
	}
	if o.Order != "" {
		d.Order = o.Order
	}
	if o.Scale != nil {
		d.Scale = o.Scale
	}
	return d
}

// apply sets the keys of a that a does not set.
func (d PointDefaults) apply(a *AttributeConfig) {
	if a.Table == "" {
		a.Table = d.Table
	}
	if Table(strings.ToLower(a.Table)).bits() {
		return
	}
	if a.Type == "" && a.Bit == nil {
		a.Type = d.Type
	}
	if a.Order == "" {
		a.Order = d.Order
	}
	if typ := Type(strings.ToLower(a.Type)); a.Scale == nil && typ != Bool && typ != String {
		a.Scale = d.Scale
	}
}

// ProfileLink is a profile's [link]: the device's usual link settings,
// which a device block overrides key by key. Serial settings apply to
// rtu:// and ascii:// devices only.
type ProfileLink struct {
	Unit         *int     `toml:"unit"`
	Baud         int      `toml:"baud"`
	DataBits     int      `toml:"data_bits"`
	Parity       string   `toml:"parity"`
	StopBits     int      `toml:"stop_bits"`
	Timeout      Duration `toml:"timeout"`
	RequestDelay Duration `toml:"request_delay"`
	MaxRegisters int      `toml:"max_registers"`
	MaxGap       *int     `toml:"max_gap"`
}

// Duration is a time.Duration written as a string such as "500ms".
type Duration time.Duration

// UnmarshalText parses a duration such as "500ms"; it returns an error
// naming the text when it is not one.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (want e.g. \"500ms\", \"2s\")", b)
	}
	*d = Duration(v)
	return nil
}

// IdentityConfig is a register whose value identifies the device model,
// for discovery: value or one of values.
type IdentityConfig struct {
	Table   string `toml:"table"`
	Address *int   `toml:"address"`
	Type    string `toml:"type"`
	Order   string `toml:"order"`
	Length  int    `toml:"length"`
	Value   any    `toml:"value"`
	Values  []any  `toml:"values"`
}

// Profile is what a Modbus profile holds beyond its header
// (profiles.Profile): docs/profiles.md describes each key.
type Profile struct {
	Defaults   PointDefaults     `toml:"defaults"`
	Link       ProfileLink       `toml:"link"`
	Identity   []IdentityConfig  `toml:"identity"`
	Attributes []AttributeConfig `toml:"attribute"`
	Events     []EventConfig     `toml:"event"`
	Operations []OperationConfig `toml:"operation"`
}

type decodedProfile struct {
	p   *Profile
	err error
}

// DecodeProfile decodes the Modbus content of p, once for every caller
// (the result is shared: read it, never modify it). Errors name p's file,
// line and key.
func DecodeProfile(p *profiles.Profile) (*Profile, error) {
	if p.Kind != "modbus" {
		return nil, fmt.Errorf("profile %q: kind %q, not modbus", p.Name, p.Kind)
	}
	v := p.Memo(decodedProfile{}, func() any {
		var mp Profile
		if err := p.Decode(&mp); err != nil {
			return decodedProfile{err: err}
		}
		return decodedProfile{p: &mp}
	}).(decodedProfile)
	return v.p, v.err
}

// givenKeys are the keys a device block gives: of the block, and of each
// [[device.attribute]] and [[device.event]] by index.
type givenKeys struct {
	top    map[string]bool
	attrs  []map[string]bool
	events []map[string]bool
}

// readGiven decodes the block again to learn which keys it gives: an
// override of a profile's point changes only those.
func (c *Config) readGiven(dec adapters.Decoder) error {
	var k blockKeys
	if err := dec.Decode(&k); err != nil {
		return err
	}
	set := func(keys []string) map[string]bool {
		m := make(map[string]bool, len(keys))
		for _, key := range keys {
			m[key] = true
		}
		return m
	}
	g := &givenKeys{top: set(k.top)}
	for _, a := range k.attrs {
		g.attrs = append(g.attrs, set(a))
	}
	for _, e := range k.events {
		g.events = append(g.events, set(e))
	}
	c.given = g
	return nil
}

// blockKeys takes a whole block as the TOML library decodes it into a map,
// and keeps the names of its keys (a decoder's strictness does not apply
// to a type that decodes itself).
type blockKeys struct {
	top           []string
	attrs, events [][]string
}

// UnmarshalTOML keeps the keys of the block v, and those of each of its
// attribute and event tables. It never fails.
func (k *blockKeys) UnmarshalTOML(v any) error {
	m, _ := v.(map[string]any)
	for key := range m {
		k.top = append(k.top, key)
	}
	keys := func(v any) [][]string {
		tables, _ := v.([]map[string]any)
		out := make([][]string, len(tables))
		for i, t := range tables {
			for key := range t {
				out[i] = append(out[i], key)
			}
		}
		return out
	}
	k.attrs, k.events = keys(m["attribute"]), keys(m["event"])
	return nil
}

// gives reports whether the block gives key; without the keys (a Config
// built in code), whether the field is not zero.
func (c *Config) gives(key string, zero bool) bool {
	if c.given != nil {
		return c.given.top[key]
	}
	return !zero
}

// overlay copies into dst the fields of src whose TOML keys are in keys,
// or, when keys is nil, the fields of src that are not zero.
func overlay[T any](dst, src *T, keys map[string]bool) {
	dv, sv := reflect.ValueOf(dst).Elem(), reflect.ValueOf(src).Elem()
	for i := 0; i < dv.NumField(); i++ {
		key, _, _ := strings.Cut(dv.Type().Field(i).Tag.Get("toml"), ",")
		if keys != nil && keys[key] || keys == nil && !sv.Field(i).IsZero() {
			dv.Field(i).Set(sv.Field(i))
		}
	}
}

// withProfile returns c with its profile's points, link settings, class
// and names filled in, and the point defaults applied: the configuration
// compile checks. Errors name the device and the key.
func (c Config) withProfile(id string, hdr *profiles.Profile, p *Profile) (Config, error) {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("device %q: "+format, append([]any{id}, args...)...))
	}
	out := c
	defaults := c.PointDefaults
	if p != nil {
		defaults = p.Defaults.over(c.PointDefaults)
		if out.Manufacturer == "" {
			out.Manufacturer = hdr.Manufacturer
		}
		if out.Model == "" {
			out.Model = hdr.Model
		}
		if out.Class == "" {
			out.Class = hdr.Class
		}
		out.linkFrom(p.Link)

		excluded := map[string]bool{}
		for _, n := range c.Exclude {
			if !slices.ContainsFunc(p.Attributes, func(a AttributeConfig) bool { return a.Name == n }) &&
				!slices.ContainsFunc(p.Events, func(e EventConfig) bool { return e.Name == n }) &&
				!slices.ContainsFunc(p.Operations, func(o OperationConfig) bool { return o.Name == n }) {
				fail("exclude: profile %q has no point %q", hdr.Name, n)
			}
			excluded[n] = true
		}
		out.Attributes = nil
		for _, a := range p.Attributes {
			if !excluded[a.Name] {
				out.Attributes = append(out.Attributes, a)
			}
		}
		// The block's points replace the profile's of the same name, key
		// by key, or add to them.
		np := len(out.Attributes)
		for i, a := range c.Attributes {
			j := slices.IndexFunc(out.Attributes[:np], func(b AttributeConfig) bool { return b.Name == a.Name })
			if j < 0 || a.Name == "" {
				out.Attributes = append(out.Attributes, a)
				continue
			}
			overlay(&out.Attributes[j], &a, c.givenAt(c.given.attrKeys(), i))
		}
		out.Events = nil
		for _, e := range p.Events {
			if !excluded[e.Name] && !excluded[e.Attribute] {
				out.Events = append(out.Events, e)
			}
		}
		np = len(out.Events)
		for i, e := range c.Events {
			j := slices.IndexFunc(out.Events[:np], func(b EventConfig) bool { return b.Name == e.Name })
			if j < 0 || e.Name == "" {
				out.Events = append(out.Events, e)
				continue
			}
			keys := c.givenAt(c.given.eventKeys(), i)
			if keys == nil && (e.Above != nil || e.Below != nil || e.OnChange) || keys["above"] || keys["below"] || keys["on_change"] {
				// A new rule replaces the profile's: above, below and
				// on_change exclude each other.
				out.Events[j].Above, out.Events[j].Below, out.Events[j].OnChange = nil, nil, false
			}
			overlay(&out.Events[j], &e, keys)
		}
		out.Operations = nil
		for _, o := range p.Operations {
			if !excluded[o.Name] && !slices.ContainsFunc(c.Operations, func(d OperationConfig) bool { return d.Name == o.Name }) {
				out.Operations = append(out.Operations, o)
			}
		}
		out.Operations = append(out.Operations, c.Operations...)
	} else if len(c.Exclude) > 0 {
		fail("exclude: applies to a device with a profile only")
	}

	if !defaults.zero() {
		out.Attributes = slices.Clone(out.Attributes)
		for i := range out.Attributes {
			defaults.apply(&out.Attributes[i])
		}
		if defaults.Order != "" {
			out.Operations = slices.Clone(out.Operations)
			for i := range out.Operations {
				o := &out.Operations[i]
				o.Writes = slices.Clone(o.Writes)
				for k := range o.Writes {
					if w := &o.Writes[k]; w.Order == "" && !Table(strings.ToLower(w.Table)).bits() {
						w.Order = defaults.Order
					}
				}
			}
		}
	}
	return out, errors.Join(errs...)
}

func (g *givenKeys) attrKeys() []map[string]bool {
	if g == nil {
		return nil
	}
	return g.attrs
}

func (g *givenKeys) eventKeys() []map[string]bool {
	if g == nil {
		return nil
	}
	return g.events
}

// givenAt returns the keys of the i-th table of keys, or nil when the
// block's keys are not known.
func (c *Config) givenAt(keys []map[string]bool, i int) map[string]bool {
	if c.given == nil || i >= len(keys) {
		return nil
	}
	return keys[i]
}

// linkFrom fills in the link settings the block does not give from a
// profile's [link].
func (c *Config) linkFrom(l ProfileLink) {
	if l.Unit != nil && !c.gives("unit", c.Unit == nil) {
		u := *l.Unit
		c.Unit = &u
	}
	if u := strings.ToLower(c.URL); strings.HasPrefix(u, "rtu:") || strings.HasPrefix(u, "ascii:") {
		if c.Baud == 0 {
			c.Baud = l.Baud
		}
		if c.DataBits == 0 {
			c.DataBits = l.DataBits
		}
		if c.Parity == "" {
			c.Parity = l.Parity
		}
		if c.StopBits == 0 {
			c.StopBits = l.StopBits
		}
	}
	if c.Timeout == 0 {
		c.Timeout = time.Duration(l.Timeout)
	}
	if c.RequestDelay == 0 {
		c.RequestDelay = time.Duration(l.RequestDelay)
	}
	if c.MaxRegisters == 0 {
		c.MaxRegisters = l.MaxRegisters
	}
	if c.MaxGap == nil {
		c.MaxGap = l.MaxGap
	}
}

// build resolves c's profile in env's catalog, applies it and the point
// defaults, compiles the result and checks its class. A device that takes
// its profile's points as they are shares them, compiled, with every
// other such device: a hundred meters of one model keep one copy.
func (c Config) build(id string, env adapters.Env) (*device, error) {
	var hdr *profiles.Profile
	var p *Profile
	if c.Profile != "" {
		cat := env.Profiles
		if cat == nil {
			cat = profiles.Embedded()
		}
		var err error
		if hdr, err = cat.Lookup(c.Profile); err == nil {
			p, err = DecodeProfile(hdr)
		}
		if err != nil {
			return nil, &adapters.FieldError{Device: id, Key: "profile", Err: fmt.Errorf("profile: %w", err)}
		}
	}
	m, err := c.withProfile(id, hdr, p)
	if err != nil {
		return nil, err
	}
	d, err := m.compile(id)
	if err != nil {
		return nil, err
	}
	if err := d.setClass(m.Class); err != nil {
		// The class comes from the block's class key, or from its profile.
		key := "profile"
		if c.Class != "" {
			key = "class"
		}
		return nil, &adapters.FieldError{Device: id, Key: key, Err: err}
	}
	if p != nil && c.sharesProfile() {
		d.share(hdr.Memo(sharedKey{poll: m.Poll}, func() any { return d.points() }).(*points))
	}
	return d, nil
}

// sharesProfile reports whether the block changes nothing of its
// profile's points: no points of its own, no point defaults, no exclude,
// no other class.
func (c Config) sharesProfile() bool {
	return len(c.Attributes) == 0 && len(c.Events) == 0 && len(c.Operations) == 0 &&
		len(c.Exclude) == 0 && c.PointDefaults.zero() && c.Class == ""
}

// sharedKey keys the compiled points a profile keeps (profiles.Profile.Memo)
// by what, beyond the profile, they depend on.
type sharedKey struct{ poll time.Duration }

// points is what a device compiles from its points: the part that devices
// of one profile share. Nothing in it is modified after compile.
type points struct {
	attrs  []attr
	events []*event
	ops    []*operation
	model  []model.Resource
}

func (d *device) points() *points {
	return &points{attrs: d.attrs, events: d.events, ops: d.ops, model: d.model.Resources}
}

// share makes d use p, compiled alike by an earlier device, and drops its own.
func (d *device) share(p *points) {
	d.attrs, d.events, d.ops, d.model.Resources = p.attrs, p.events, p.ops, p.model
}

// setClass marks the resource "main" as following class and checks that
// it does. The error names the device and every difference.
func (d *device) setClass(class string) error {
	if class == "" {
		return nil
	}
	r, ok := d.model.Resource(DefaultResource)
	if !ok {
		return fmt.Errorf("class %q: no resource %q, which the class applies to", class, DefaultResource)
	}
	r.Class = class
	return classes.Check(r)
}

// splitJoined returns the errors err joins (as errors.Join does, at any
// depth), or err alone.
func splitJoined(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, splitJoined(e)...)
		}
		return out
	}
	return []error{err}
}

// CheckProfile checks a Modbus profile whole, as `osapgw profile check`
// and the tests of the embedded profiles do: it decodes; its points
// compile as a device's would (on a TCP link, or a serial one when its
// [link] gives serial settings); its identity registers are valid; and
// it implements its class. The error names the profile's file and every
// problem found.
func CheckProfile(hdr *profiles.Profile) error {
	p, err := DecodeProfile(hdr)
	if err != nil {
		return err
	}
	unit := 1
	c := Config{URL: "tcp://127.0.0.1:502", Unit: &unit, Profile: hdr.Name}
	if l := p.Link; l.Baud != 0 || l.DataBits != 0 || l.Parity != "" || l.StopBits != 0 {
		c.URL = "rtu:///dev/null"
	}
	var errs []error
	m, err := c.withProfile(hdr.Name, hdr, p)
	errs = append(errs, err)
	if d, err := m.compile(hdr.Name); err != nil {
		errs = append(errs, err)
	} else {
		errs = append(errs, d.setClass(m.Class))
	}
	for i, id := range p.Identity {
		for _, err := range id.check() {
			errs = append(errs, fmt.Errorf("identity #%d: %w", i+1, err))
		}
	}
	var out []error
	for _, err := range splitJoined(errors.Join(errs...)) {
		out = append(out, fmt.Errorf("%s: %w", hdr.Path, err))
	}
	return errors.Join(out...)
}

// check returns the problems of an identity register.
func (id IdentityConfig) check() []error {
	table := Table(strings.ToLower(id.Table))
	if !table.valid() {
		return []error{fmt.Errorf("table: unknown table %q (want coil, discrete, input or holding)", id.Table)}
	}
	var errs []error
	if id.Address == nil || *id.Address < 0 || *id.Address > 65535 {
		errs = append(errs, fmt.Errorf("address: missing or out of 0 to 65535"))
	}
	codec, cerrs := compileCodec(table, id.Type, id.Order, nil, id.Length, nil, 0)
	errs = append(errs, cerrs...)
	if (id.Value == nil) == (len(id.Values) == 0) {
		errs = append(errs, fmt.Errorf("give exactly one of value, values"))
	}
	for _, v := range append([]any{id.Value}, id.Values...) {
		if v == nil || len(cerrs) > 0 {
			continue
		}
		if _, err := codec.Encode(v, 0); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// Points returns the profile's attributes with its [defaults] applied: the
// points of a device that takes them as they are, as `osapgw profile
// show` prints them.
func (p *Profile) Points() []AttributeConfig {
	out := slices.Clone(p.Attributes)
	for i := range out {
		p.Defaults.apply(&out[i])
	}
	return out
}
