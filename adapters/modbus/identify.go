package modbus

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/goburrow/modbus"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/profiles"
)

// sunSpecBases are the holding registers where a SunSpec device keeps its
// "SunS" marker, in the order Discover tries them.
var sunSpecBases = []uint16{40000, 50000, 0}

// sunSpecMarker is "SunS": registers 0x5375 0x6e53.
const sunSpecMarker = "SunS"

// Fingerprint is one identity register of a device profile: a unit is
// taken for Profile when the value at Address of Table, decoded as Type
// (byte order Order), is one of Values, or for type string (Length
// registers) one of Texts. A profile with several fingerprints matches
// when all of them do. Table and Type default to holding and uint16, as
// in an attribute.
type Fingerprint struct {
	Profile string
	Table   string
	Address uint16
	Type    string
	Order   string
	Length  int
	Values  []float64
	Texts   []string
}

// Identity is what a unit says of itself when asked Read Device
// Identification (function 43, MEI type 14): the basic objects.
type Identity struct {
	Vendor   string // object 0, VendorName
	Product  string // object 1, ProductCode
	Revision string // object 2, MajorMinorRevision
}

// identify asks unit f.Unit what it is: Read Device Identification, the
// SunSpec marker, the fingerprints. What fails (an exception, a timeout)
// is only a thing the unit does not tell; a request that breaks the
// connection ends the identification (f.broke).
func (s *scan) identify(ctx context.Context, sl *sharedLink, f *Found) {
	do := func(fn func(modbus.Client) ([]byte, error)) ([]byte, error) {
		if f.broke {
			return nil, errLinkDown
		}
		b, err := sl.do(ctx, f.Unit, s.timeout, fn)
		f.broke = f.broke || errors.Is(err, adapters.ErrOffline) || ctx.Err() != nil
		return b, err
	}
	if id, err := readIdentity(do); err == nil {
		f.Identity = id
	}
	for _, base := range sunSpecBases {
		b, err := do(readFn(Read{Table: Holding, Address: base, Count: 2}))
		if err == nil && len(b) >= 4 && string(b[:4]) == sunSpecMarker {
			f.SunSpec, f.SunSpecBase = true, base
			break
		}
	}
	f.Profiles = s.fps.match(func(r Read) ([]byte, error) { return do(readFn(r)) })
}

// maxIdentityRounds bounds the requests of one Read Device Identification
// (a unit answering "more follows" forever).
const maxIdentityRounds = 8

// readIdentity reads the basic objects of Read Device Identification,
// following "more follows" when the unit splits its answer.
func readIdentity(do func(func(modbus.Client) ([]byte, error)) ([]byte, error)) (*Identity, error) {
	objs := map[byte]string{}
	next := byte(0)
	for range maxIdentityRounds {
		b, err := do(pduFn(0x2B, []byte{0x0E, 0x01, next}))
		if err != nil {
			return nil, err
		}
		a, err := parseDeviceID(b[1:])
		if err != nil {
			return nil, err
		}
		for id, v := range a.objects {
			objs[id] = v
		}
		if !a.more || a.next <= next {
			break
		}
		next = a.next
	}
	id := &Identity{Vendor: objs[0], Product: objs[1], Revision: objs[2]}
	if *id == (Identity{}) {
		return nil, errors.New("modbus: device identification without basic objects")
	}
	return id, nil
}

// deviceIDAnswer is one answer to Read Device Identification.
type deviceIDAnswer struct {
	objects map[byte]string
	more    bool // "more follows": ask again from next
	next    byte
}

// parseDeviceID decodes the data of a Read Device Identification answer
// (after its function code 0x2B): MEI type 0x0E, read code, conformity
// level, more follows, next object id, number of objects, then each
// object's id, length and value. Values are cleaned of control
// characters and surrounding spaces and NULs.
func parseDeviceID(b []byte) (deviceIDAnswer, error) {
	var a deviceIDAnswer
	if len(b) < 6 {
		return a, fmt.Errorf("modbus: device identification answer of %d bytes, want at least 6", len(b))
	}
	if b[0] != 0x0E {
		return a, fmt.Errorf("modbus: device identification answer of MEI type %d, want 14", b[0])
	}
	a.more, a.next = b[3] == 0xFF, b[4]
	n := int(b[5])
	a.objects = make(map[byte]string, n)
	rest := b[6:]
	for i := range n {
		if len(rest) < 2 || len(rest) < 2+int(rest[1]) {
			return a, fmt.Errorf("modbus: device identification object #%d cut short", i+1)
		}
		a.objects[rest[0]] = cleanText(rest[2 : 2+int(rest[1])])
		rest = rest[2+int(rest[1]):]
	}
	return a, nil
}

// cleanText returns b as text fit for a comment: control characters and
// invalid bytes dropped, surrounding spaces removed.
func cleanText(b []byte) string {
	s := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7F || r == '\uFFFD' {
			return -1
		}
		return r
	}, strings.ToValidUTF8(string(b), ""))
	return strings.TrimSpace(s)
}

// fingerprint is a compiled Fingerprint.
type fingerprint struct {
	Fingerprint
	table Table
	codec Codec
}

// read is the request that reads the fingerprint's register(s).
func (f *fingerprint) read() Read {
	return Read{Table: f.table, Address: f.Address, Count: uint16(f.codec.Registers())}
}

// matches reports whether the answer b to f.read() holds one of f's values.
func (f *fingerprint) matches(b []byte) bool {
	if f.table.bits() {
		if len(b) < 1 {
			return false
		}
		return slices.Contains(f.Values, float64(b[0]&1))
	}
	if len(b) < 2*f.codec.Registers() {
		return false
	}
	v, err := f.codec.Decode(b)
	if err != nil {
		return false
	}
	if s, ok := v.(string); ok {
		return slices.Contains(f.Texts, s)
	}
	x, err := toFloat(v)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(f.Values, func(w float64) bool { return math.Abs(x-w) <= 1e-9*math.Max(1, math.Abs(w)) })
}

// fingerprints are the compiled fingerprints of Discover, by profile in
// the order given.
type fingerprints struct {
	profiles []string
	of       map[string][]*fingerprint
}

// compileFingerprints checks fps and groups them by profile. Errors name
// the profile and the fingerprint.
func compileFingerprints(fps []Fingerprint) (fingerprints, error) {
	out := fingerprints{of: map[string][]*fingerprint{}}
	var errs []error
	for i, fp := range fps {
		where := fmt.Sprintf("profile %q: fingerprint #%d", fp.Profile, i+1)
		table := Table(strings.ToLower(fp.Table))
		if fp.Table == "" {
			table = Holding
		}
		if fp.Profile == "" {
			errs = append(errs, fmt.Errorf("fingerprint #%d: no profile", i+1))
			continue
		}
		if !table.valid() {
			errs = append(errs, fmt.Errorf("%s: table: unknown table %q", where, fp.Table))
			continue
		}
		c, cerrs := compileCodec(table, fp.Type, fp.Order, nil, fp.Length, nil, 0)
		if table.bits() {
			c, cerrs = Codec{Type: Bool, Bit: -1, Scale: 1}, nil
		}
		for _, e := range cerrs {
			errs = append(errs, fmt.Errorf("%s: %w", where, e))
		}
		if c.Type == String && len(fp.Texts) == 0 || c.Type != String && len(fp.Values) == 0 {
			errs = append(errs, fmt.Errorf("%s: no value to match (values for numbers and bits, texts for strings)", where))
		}
		if len(cerrs) > 0 {
			continue
		}
		if _, ok := out.of[fp.Profile]; !ok {
			out.profiles = append(out.profiles, fp.Profile)
		}
		out.of[fp.Profile] = append(out.of[fp.Profile], &fingerprint{Fingerprint: fp, table: table, codec: c})
	}
	return out, errors.Join(errs...)
}

// match returns the profiles whose fingerprints all match the unit, the
// one with the most fingerprints first; read reads a register range of
// the unit (each range is read once).
func (fs fingerprints) match(read func(Read) ([]byte, error)) []string {
	type answer struct {
		b  []byte
		ok bool
	}
	seen := map[string]answer{}
	get := func(r Read) ([]byte, bool) {
		key := string(r.Table) + " " + strconv.Itoa(int(r.Address)) + "+" + strconv.Itoa(int(r.Count))
		a, done := seen[key]
		if !done {
			b, err := read(r)
			a = answer{b: b, ok: err == nil}
			seen[key] = a
		}
		return a.b, a.ok
	}
	var out []string
	for _, p := range fs.profiles {
		all := true
		for _, f := range fs.of[p] {
			b, ok := get(f.read())
			if !ok || !f.matches(b) {
				all = false
				break
			}
		}
		if all {
			out = append(out, p)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return len(fs.of[out[i]]) > len(fs.of[out[j]]) })
	return out
}

// ProfileFingerprints returns the identity registers ([[identity]]) of the
// Modbus profiles in cat, one Fingerprint each, for Discover. A profile
// that does not decode, or an identity whose value is neither a number nor
// a string, fails with an error naming the profile.
func ProfileFingerprints(cat *profiles.Catalog) ([]Fingerprint, error) {
	var out []Fingerprint
	for _, hdr := range cat.Profiles() {
		if hdr.Kind != "modbus" {
			continue
		}
		p, err := DecodeProfile(hdr)
		if err != nil {
			return nil, err
		}
		for i, id := range p.Identity {
			if id.Address == nil || *id.Address < 0 || *id.Address > 0xffff {
				return nil, fmt.Errorf("profile %q: identity #%d: address missing or out of range", hdr.Name, i+1)
			}
			fp := Fingerprint{Profile: hdr.Name, Table: id.Table, Address: uint16(*id.Address), Type: id.Type, Order: id.Order, Length: id.Length}
			vals := id.Values
			if id.Value != nil {
				vals = append([]any{id.Value}, vals...)
			}
			for _, v := range vals {
				switch x := v.(type) {
				case int64:
					fp.Values = append(fp.Values, float64(x))
				case float64:
					fp.Values = append(fp.Values, x)
				case string:
					fp.Texts = append(fp.Texts, x)
				default:
					return nil, fmt.Errorf("profile %q: identity #%d: value %v is neither a number nor a string", hdr.Name, i+1, v)
				}
			}
			out = append(out, fp)
		}
	}
	return out, nil
}
