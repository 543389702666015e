// Package config is the schema of osapgw.toml: the gateway's identity, the
// upstream platform, the store, the HTTP endpoint, logging, and the
// [[device]] blocks whose kind selects an adapter, which owns and validates
// its own section.
//
// Parsing is pure: Parse reads nothing but the bytes it is given. Check
// adds what needs the file system (secret files) and builds each device's
// adapter to let it validate its section. Every error names the place:
// file:line where it can be found, the device id and the field.
package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/osap"
	"github.com/osapgw/osapgw/profiles"
)

// Defaults of the optional settings.
const (
	DefaultHeartbeat      = 30 * time.Second
	DefaultRequestTimeout = 10 * time.Second
	DefaultStorePath      = "/var/lib/osapgw/osapgw.db"
	DefaultMaxBytes       = 256 << 20
	DefaultMaxAge         = 7 * 24 * time.Hour
	DefaultPictureWait    = 5 * time.Second
	DefaultHTTPListen     = "127.0.0.1:9108"
)

// Config is a parsed osapgw.toml.
type Config struct {
	// Path is the file it was read from ("" when parsed from memory).
	Path     string   `toml:"-"`
	Gateway  Gateway  `toml:"gateway"`
	Upstream Upstream `toml:"upstream"`
	Store    Store    `toml:"store"`
	HTTP     HTTP     `toml:"http"`
	Log      Log      `toml:"log"`
	Profiles Profiles `toml:"profiles"`
	Devices  []Device `toml:"-"`
}

// Gateway is the gateway's identity as the platform knows it.
type Gateway struct {
	Serial               string `toml:"serial"`
	VerificationCodeFile string `toml:"verification_code_file"`
	Model                string `toml:"model"`
	ShareKeyDomain       string `toml:"share_key_domain"`
}

// Upstream is how the gateway reaches the platform.
type Upstream struct {
	// LBS is the load-balancing service: "tls://host:port" or
	// "tcp://host:port" (bench and tests only).
	LBS                string   `toml:"lbs"`
	CAFile             string   `toml:"ca_file"`
	Suites             []string `toml:"suites"`
	AllowLegacyCiphers bool     `toml:"allow_legacy_ciphers"`
	Heartbeat          Duration `toml:"heartbeat"`
	AttributeQoS       int      `toml:"attribute_qos"`
	RequestTimeout     Duration `toml:"request_timeout"`
}

// Store is where the outbox, credentials and last values live.
type Store struct {
	Path     string   `toml:"path"`
	MaxBytes Size     `toml:"max_bytes"`
	MaxAge   Duration `toml:"max_age"`
	// PictureWait bounds how long an event waits for its picture (from
	// its capture time) before it is sent without (binding 2.7).
	PictureWait Duration `toml:"picture_wait"`
}

// HTTP is the local observability endpoint.
type HTTP struct {
	Listen string `toml:"listen"`
}

// Log selects the log level (debug, info, warn, error) and format (text,
// json).
type Log struct {
	Level  string `toml:"level"`
	Format string `toml:"format"`
}

// Device is one [[device]] block. The adapter kind decodes its own keys
// through Decoder.
type Device struct {
	ID       string
	Kind     string
	Name     string
	Disabled bool
	// Line is the line of the block's [[device]] header.
	Line int
	// Hash identifies the block's content; a reload restarts a device only
	// when its hash changed.
	Hash string

	section string // the adapter's keys, re-encoded as TOML
	src     *source
	index   int // of the block among the file's [[device]] blocks
}

// source is the text a configuration was parsed from, kept (a copy) to
// place at their lines the errors that Check and Build find later. Its
// line index is built only for an error: a configuration of thousands of
// points would keep megabytes of it otherwise.
type source struct {
	name string
	data []byte
}

// prefix returns the path of the device's block ("device[2]").
func (d Device) prefix() string { return fmt.Sprintf("device[%d]", d.index) }

// at places err, about key (a path in the device's block, "" for the
// block), at its file and line as li finds it (li may be nil when the
// device was not parsed from a file).
func (d Device) at(li *lineIndex, key string, err error) error {
	if d.src == nil {
		return err
	}
	path := d.prefix()
	if key != "" {
		path = join(path, key)
	}
	line := d.Line
	if li != nil {
		line = li.find(path)
	}
	return &Error{File: d.src.name, Line: line, Key: path, Err: err}
}

// lines returns the line index of the device's file, nil when it has none.
func (d Device) lines() *lineIndex {
	if d.src == nil {
		return nil
	}
	li := indexLines(d.src.data)
	return &li
}

// Decoder returns a strict decoder of the device's own keys, whose errors
// name the file, line and key.
func (d Device) Decoder() adapters.Decoder { return deviceDecoder{d} }

// SuiteSet returns the cipher suites to offer: those named in suites, or
// the defaults (every suite when legacy ciphers are allowed) when none is
// named. It returns an error for an unknown suite name, or for a legacy
// suite named without allow_legacy_ciphers.
func (u Upstream) SuiteSet() (osap.SuiteSet, error) {
	if len(u.Suites) == 0 {
		if u.AllowLegacyCiphers {
			return osap.AllSuites, nil
		}
		return osap.DefaultSuites, nil
	}
	var set osap.SuiteSet
	for _, name := range u.Suites {
		s, err := osap.ParseSuite(name)
		if err != nil {
			return 0, err
		}
		if s.Legacy() && !u.AllowLegacyCiphers {
			return 0, fmt.Errorf("suite %q is legacy (no integrity); set allow_legacy_ciphers = true to offer it", name)
		}
		set |= osap.SuiteSet(s)
	}
	return set, nil
}

// Duration is a time.Duration written as a string such as "30s" or "7d"
// ("d" is 24 hours).
type Duration time.Duration

// UnmarshalText parses a duration such as "30s" or "7d"; it returns an
// error naming the text when it is not one.
func (d *Duration) UnmarshalText(b []byte) error {
	s := string(b)
	if strings.HasSuffix(s, "d") {
		n, err := strconv.ParseFloat(strings.TrimSuffix(s, "d"), 64)
		if err != nil {
			return fmt.Errorf("invalid duration %q", s)
		}
		*d = Duration(time.Duration(n * float64(24*time.Hour)))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q (want e.g. \"30s\", \"5m\", \"7d\")", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalText formats the duration as time.Duration.String does; it never
// fails.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Size is a byte count written as a string such as "256MiB" or a number.
type Size int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}

// UnmarshalText parses a size such as "256MiB" or a plain byte count; it
// returns an error naming the text when it is not one or is negative.
func (s *Size) UnmarshalText(b []byte) error {
	str := strings.TrimSpace(string(b))
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(str, u.suffix) {
			str, mult = strings.TrimSpace(strings.TrimSuffix(str, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(str, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("invalid size %q (want e.g. \"256MiB\")", string(b))
	}
	*s = Size(n * mult)
	return nil
}

// Load reads and parses the file at path. It returns an error wrapping the
// file system's when the file cannot be read, and otherwise, like Parse,
// every problem found, joined.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes and validates a configuration; name is used in errors. It
// opens nothing. The error, when not nil, joins every problem found.
func Parse(name string, data []byte) (*Config, error) {
	if name == "" {
		name = "osapgw.toml"
	}
	var raw struct {
		Config
		Device []map[string]any `toml:"device"`
	}
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&raw)
	if err != nil {
		var pe toml.ParseError
		if len(md.Keys()) == 0 && errors.As(err, &pe) { // a syntax error
			return nil, fmt.Errorf("%s:%d:%d: %s", name, pe.Position.Line, pe.Position.Col, pe.Message)
		}
		if key, msg := keyOf(err); key != "" { // a value that does not fit
			return nil, &Error{File: name, Line: indexLines(data).find(key), Key: key, Err: fmt.Errorf("%s: %s", key, msg)}
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	lines := indexLines(data)
	var errs []error
	at := func(key string, err error) error {
		return &Error{File: name, Line: lines.find(key), Key: key, Err: err}
	}
	for _, k := range unknown(md.Undecoded()) {
		if k[0] == "device" {
			continue // a device's keys are its kind's to check (Device.Decoder)
		}
		errs = append(errs, at(k.String(), fmt.Errorf("unknown key %q", k.String())))
	}
	c := raw.Config
	c.Path = name
	c.applyDefaults()
	errs = append(errs, c.validate(at)...)

	var src *source
	if len(raw.Device) > 0 {
		src = &source{name: name, data: bytes.Clone(data)}
	}
	ids := map[string]int{}
	for i, m := range raw.Device {
		prefix := fmt.Sprintf("device[%d]", i)
		d, derrs := parseDevice(m, i, func(key string, err error) error { return at(join(prefix, key), err) })
		d.Line = lines.find(prefix)
		d.src, d.index = src, i
		errs = append(errs, derrs...)
		if d.ID != "" {
			if first, dup := ids[d.ID]; dup {
				errs = append(errs, at(prefix, fmt.Errorf("device %q: duplicate id (first at line %d)", d.ID, first)))
			}
			ids[d.ID] = d.Line
		}
		c.Devices = append(c.Devices, d)
	}
	// Keep nothing of data alive: what the decoder returned shares it.
	detach(reflect.ValueOf(&c).Elem())
	if len(errs) > 0 {
		sortByLine(errs)
		return &c, errors.Join(errs...)
	}
	return &c, nil
}

func (c *Config) applyDefaults() {
	if c.Upstream.Heartbeat == 0 {
		c.Upstream.Heartbeat = Duration(DefaultHeartbeat)
	}
	if c.Upstream.RequestTimeout == 0 {
		c.Upstream.RequestTimeout = Duration(DefaultRequestTimeout)
	}
	if c.Store.Path == "" {
		c.Store.Path = DefaultStorePath
	}
	if c.Store.MaxBytes == 0 {
		c.Store.MaxBytes = DefaultMaxBytes
	}
	if c.Store.MaxAge == 0 {
		c.Store.MaxAge = Duration(DefaultMaxAge)
	}
	if c.Store.PictureWait == 0 {
		c.Store.PictureWait = Duration(DefaultPictureWait)
	}
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = DefaultHTTPListen
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.Profiles.Dir == "" {
		c.Profiles.Dir = profiles.DefaultDir
	}
	if c.Gateway.Model == "" {
		c.Gateway.Model = "osapgw"
	}
}

func (c *Config) validate(at func(key string, err error) error) []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, at(key, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...))))
	}
	if c.Gateway.Serial == "" {
		bad("gateway.serial", "missing: the serial printed on the box label")
	}
	if c.Gateway.VerificationCodeFile == "" {
		bad("gateway.verification_code_file", "missing: a file (mode 0600) holding the verification code from the box label")
	}
	if c.Upstream.LBS == "" {
		bad("upstream.lbs", "missing: the platform's load-balancing service, e.g. \"tls://lbs.example.net:7700\"")
	} else if _, _, err := c.Upstream.LBSAddress(); err != nil {
		bad("upstream.lbs", "%v", err)
	}
	if _, err := c.Upstream.SuiteSet(); err != nil {
		bad("upstream.suites", "%v", err)
	}
	if q := c.Upstream.AttributeQoS; q != 0 && q != 1 {
		bad("upstream.attribute_qos", "%d is not 0 or 1", q)
	}
	if time.Duration(c.Upstream.Heartbeat) < time.Second {
		bad("upstream.heartbeat", "%v is under 1s", time.Duration(c.Upstream.Heartbeat))
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil && c.HTTP.Listen != "off" {
		bad("http.listen", "%q is not host:port or \"off\"", c.HTTP.Listen)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "%q is not text or json", c.Log.Format)
	}
	return errs
}

// LBSAddress returns the LBS host:port and whether to use TLS (tls://, the
// default, or tcp://). It returns an error when lbs is not scheme://host:port
// with one of those schemes.
func (u Upstream) LBSAddress() (addr string, useTLS bool, err error) {
	s := u.LBS
	if !strings.Contains(s, "://") {
		s = "tls://" + s
	}
	p, err := url.Parse(s)
	if err != nil {
		return "", false, fmt.Errorf("%q is not a URL: %w", u.LBS, err)
	}
	switch p.Scheme {
	case "tls":
		useTLS = true
	case "tcp":
	default:
		return "", false, fmt.Errorf("%q: scheme %q is not tls or tcp", u.LBS, p.Scheme)
	}
	if p.Port() == "" || p.Hostname() == "" || p.Path != "" {
		return "", false, fmt.Errorf("%q: want scheme://host:port", u.LBS)
	}
	return p.Host, useTLS, nil
}

func parseDevice(m map[string]any, idx int, at func(key string, err error) error) (Device, []error) {
	var d Device
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, at(key, fmt.Errorf(format, args...)))
	}
	str := func(key string) string {
		v, ok := m[key]
		if !ok {
			return ""
		}
		s, ok := v.(string)
		if !ok {
			bad(key, "device #%d: %s: want a string, got %T", idx+1, key, v)
		}
		return s
	}
	d.ID, d.Kind, d.Name = str("id"), str("kind"), str("name")
	if v, ok := m["disabled"]; ok {
		b, ok := v.(bool)
		if !ok {
			bad("disabled", "device %q: disabled: want a bool, got %T", d.ID, v)
		}
		d.Disabled = b
	}
	switch {
	case d.ID == "":
		bad("id", "device #%d: id: missing", idx+1)
	case !validID(d.ID):
		bad("id", "device %q: id: use letters, digits, '-', '_' and '.' only (it becomes part of topics and metric labels)", d.ID)
	}
	if d.Kind == "" {
		bad("kind", "device %q: kind: missing (one of %s)", d.ID, strings.Join(adapters.Kinds(), ", "))
	} else if _, ok := adapters.Lookup(d.Kind); !ok {
		if why, omitted := adapters.Omitted(d.Kind); omitted {
			bad("kind", "device %q: kind: %q is not in this build of osapgw: %s", d.ID, d.Kind, why)
		} else {
			bad("kind", "device %q: kind: unknown kind %q (one of %s)", d.ID, d.Kind, strings.Join(adapters.Kinds(), ", "))
		}
	}
	own := make(map[string]any, len(m))
	for k, v := range m {
		if !adapters.CommonKey(k) {
			own[k] = v
		}
	}
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(own); err != nil {
		bad("", "device %q: %w", d.ID, err)
	}
	d.section = buf.String()
	sum := sha256.Sum256([]byte(d.ID + "\x00" + d.Kind + "\x00" + d.Name + "\x00" + strconv.FormatBool(d.Disabled) + "\x00" + d.section))
	d.Hash = hex.EncodeToString(sum[:8])
	return d, errs
}

func validID(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return len(s) <= 64
}

// typeErr matches the library's type errors, which carry the key but not
// as a ParseError.
var typeErr = regexp.MustCompile(`^toml: (?:line \d+ )?\(last key "([^"]+)"\): (.*)$`)

// keyOf returns the key and the message of a decoding error about a
// value (a ParseError from an UnmarshalText, or a type error), or "".
func keyOf(err error) (key, msg string) {
	var pe toml.ParseError
	if errors.As(err, &pe) && pe.LastKey != "" {
		return pe.LastKey, pe.Message
	}
	if m := typeErr.FindStringSubmatch(err.Error()); m != nil {
		return m[1], m[2]
	}
	return "", ""
}

// unknown returns the undecoded keys in order, once each (the library
// lists a key once per array element that has it), leaving out the keys
// inside an unknown table.
func unknown(keys []toml.Key) []toml.Key {
	keys = slices.Clone(keys)
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	var out []toml.Key
	seen := map[string]bool{}
next:
	for _, k := range keys {
		for i := 1; i <= len(k); i++ {
			if seen[k[:i].String()] {
				continue next
			}
		}
		seen[k.String()] = true
		out = append(out, k)
	}
	return out
}

type deviceDecoder struct{ d Device }

// Decode decodes the device's own keys into v; unknown keys and type errors
// are *adapters.FieldError naming the device and key, which Build places
// at their file and line. The strings it stores in v share no memory with
// the configuration's text.
func (dd deviceDecoder) Decode(v any) error {
	d := dd.d
	md, err := toml.Decode(d.section, v)
	if err != nil {
		key, msg := keyOf(err)
		if key == "" {
			return &adapters.FieldError{Device: d.ID, Err: err}
		}
		return &adapters.FieldError{Device: d.ID, Key: d.locate(key, v), Err: fmt.Errorf("%s: %s", key, msg)}
	}
	detach(reflect.ValueOf(v))
	und := unknown(md.Undecoded())
	if len(und) == 0 {
		return nil
	}
	var errs []error
	li := d.lines()
	for _, k := range und {
		err := fmt.Errorf("unknown key %q", "device."+k.String())
		keys := d.occurrences(li, k.String())
		if len(keys) == 0 {
			keys = []string{k.String()}
		}
		for _, key := range keys {
			errs = append(errs, &adapters.FieldError{Device: d.ID, Key: key, Err: err})
		}
	}
	return errors.Join(errs...)
}

// occurrences returns the paths of key (named without array indexes) in
// the device's block, one per array element that has it, in the order of
// the text; nil without li.
func (d Device) occurrences(li *lineIndex, key string) []string {
	if li == nil {
		return nil
	}
	return li.within(d.prefix(), key)
}

// locate returns the path of the occurrence of key (as the TOML library
// names it, without array indexes) that v cannot take: the library
// stops at the first value of the wrong type but does not say in which
// array element it is. Each occurrence is decoded alone into a new value
// of v's type until one fails.
func (d Device) locate(key string, v any) string {
	keys := d.occurrences(d.lines(), key)
	if len(keys) <= 1 {
		if len(keys) == 1 {
			return keys[0]
		}
		return key
	}
	var all map[string]any
	if _, err := toml.Decode(d.section, &all); err != nil {
		return keys[0]
	}
	t := reflect.TypeOf(v)
	if t.Kind() != reflect.Pointer {
		return keys[0]
	}
	for _, k := range keys {
		one, ok := extract(all, k)
		if !ok {
			continue
		}
		var buf bytes.Buffer
		if err := toml.NewEncoder(&buf).Encode(one); err != nil {
			continue
		}
		if _, err := toml.Decode(buf.String(), reflect.New(t.Elem()).Interface()); err != nil {
			return k
		}
	}
	return keys[0]
}

// extract returns a copy of the part of m on the way to path
// ("attribute[2].address"), arrays reduced to the one element.
func extract(m map[string]any, path string) (map[string]any, bool) {
	name, rest, _ := strings.Cut(path, ".")
	idx := -1
	if i := strings.IndexByte(name, '['); i >= 0 && strings.HasSuffix(name, "]") {
		n, err := strconv.Atoi(name[i+1 : len(name)-1])
		if err != nil {
			return nil, false
		}
		name, idx = name[:i], n
	}
	v, ok := m[name]
	if !ok {
		return nil, false
	}
	if idx >= 0 {
		switch arr := v.(type) {
		case []map[string]any:
			if idx >= len(arr) {
				return nil, false
			}
			v = arr[idx]
		case []any:
			if idx >= len(arr) {
				return nil, false
			}
			v = arr[idx]
		default:
			return nil, false
		}
	}
	if rest != "" {
		sub, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = extract(sub, rest); !ok {
			return nil, false
		}
	}
	if idx >= 0 {
		v = []any{v}
	}
	return map[string]any{name: v}, true
}
