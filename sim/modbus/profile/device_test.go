package profile

import (
	"encoding/binary"
	"encoding/hex"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/osapgw/osapgw/adapters/modbus"
	"github.com/osapgw/osapgw/profiles"
)

// at makes d's clock read tick change intervals after its start.
func at(d *Device, tick *int64) {
	d.now = func() time.Time { return d.start.Add(time.Duration(*tick) * d.change) }
}

func lookup(t *testing.T, name string) *profiles.Profile {
	t.Helper()
	p, err := profiles.Embedded().Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// read reads pt through Handle and decodes it with its codec, as the
// adapter does; it returns the exception code instead when there is one.
func read(t *testing.T, d *Device, table modbus.Table, addr uint16, codec modbus.Codec) (any, byte) {
	t.Helper()
	fc := map[modbus.Table]byte{modbus.Coil: 1, modbus.Discrete: 2, modbus.Holding: 3, modbus.Input: 4}[table]
	n := codec.Registers()
	req := []byte{fc, byte(addr >> 8), byte(addr), byte(n >> 8), byte(n)}
	resp, _, drop := d.Handle(req)
	if drop {
		t.Fatalf("Handle(%x) dropped the request", req)
	}
	if resp[0]&0x80 != 0 {
		return nil, resp[1]
	}
	if table.Bits() {
		return resp[2]&1 == 1, 0
	}
	v, err := codec.Decode(resp[2:])
	if err != nil {
		t.Fatalf("Decode(%x) = %v", resp[2:], err)
	}
	return v, 0
}

// plausible returns the range a point's value must be in.
func plausible(name, unit string) (lo, hi float64) {
	switch {
	case strings.Contains(name, "correction") || strings.Contains(name, "offset"):
		return 0, 0
	case strings.Contains(name, "dew"):
		return -10, 30
	case strings.Contains(name, "_dc") && unit == "V":
		return 550, 650
	case lineToLine.MatchString(name) && unit == "V":
		return 380, 420
	case strings.Contains(name, "power_factor"):
		return 0.8, 1
	}
	ranges := map[string][2]float64{
		"V": {220, 240}, "A": {0, 60}, "W": {0, 15000}, "VA": {0, 15000}, "var": {0, 15000}, "Hz": {49.9, 50.1},
		"kWh": {0, 1e6}, "kvarh": {0, 1e6}, "°C": {15, 30}, "%": {0, 100}, "ppm": {400, 1200}, "ppb": {0, 500},
		"lx": {0, 1000}, "dB": {30, 60}, "°": {0, 40}, "s": {1, 3600}, "m": {0, 0},
	}
	if r, ok := ranges[unit]; ok {
		return r[0], r[1]
	}
	return 0, 65535
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	}
	return 0, false
}

// TestEveryEmbeddedProfile reads every point of every embedded profile
// over a simulated hour, decoding with the adapter's codec: each value
// is in its unit's plausible range, counters never go back and grow, and
// the identity registers answer their declared value.
func TestEveryEmbeddedProfile(t *testing.T) {
	for _, p := range profiles.Embedded().Profiles() {
		t.Run(p.Name, func(t *testing.T) {
			mp, err := modbus.DecodeProfile(p)
			if err != nil {
				t.Fatal(err)
			}
			d, err := New(p, Options{Unit: 7})
			if err != nil {
				t.Fatalf("New(%q) = %v", p.Name, err)
			}
			var tick int64
			at(d, &tick)
			last := map[string]float64{}
			changed := map[string]bool{}
			for tick = 0; tick < 3600; tick += 37 {
				for _, a := range mp.Points() {
					table, codec, err := a.Codec()
					if err != nil {
						t.Fatal(err)
					}
					v, exc := read(t, d, table, uint16(*a.Address), codec)
					if exc != 0 {
						t.Fatalf("%s: read = exception %d, want a value", a.Name, exc)
					}
					pt := d.points[indexOf(d, a.Name)]
					if _, err := pt.codec.Encode(pt.value(d.state(tick)), 0); err != nil {
						t.Fatalf("%s at tick %d: Encode(%v) = %v", a.Name, tick, pt.value(d.state(tick)), err)
					}
					f, ok := number(v)
					if !ok {
						continue
					}
					if lo, hi := plausible(a.Name, a.Unit); f < lo-1e-6 || f > hi+1e-6 {
						t.Errorf("%s at tick %d = %v %s, want %v to %v", a.Name, tick, f, a.Unit, lo, hi)
					}
					if prev, ok := last[a.Name]; ok {
						changed[a.Name] = changed[a.Name] || f != prev
						if (a.Unit == "kWh" || a.Unit == "kvarh") && f < prev {
							t.Errorf("counter %s went back from %v to %v at tick %d", a.Name, prev, f, tick)
						}
					}
					last[a.Name] = f
				}
			}
			for _, a := range mp.Points() {
				if (a.Unit == "kWh" || a.Unit == "kvarh" || a.Unit == "V" || a.Unit == "°C") && !a.Writable && !changed[a.Name] && !strings.Contains(a.Name, "correction") {
					t.Errorf("%s stayed at %v for an hour, want it to change", a.Name, last[a.Name])
				}
			}
			for i, id := range mp.Identity {
				table, codec, err := id.Codec()
				if err != nil {
					t.Fatal(err)
				}
				want := id.Value
				if want == nil {
					want = id.Values[0]
				}
				if got, exc := read(t, d, table, uint16(*id.Address), codec); got != want {
					t.Errorf("identity #%d = %v (exception %d), want %v", i+1, got, exc, want)
				}
			}
		})
	}
}

func indexOf(d *Device, name string) int {
	for i, pt := range d.points {
		if pt.name == name {
			return i
		}
	}
	return -1
}

// TestPointsAgree checks that a meter's points describe one state: power
// is V·I·PF per phase and the total is the phases' sum.
func TestPointsAgree(t *testing.T) {
	d, err := New(lookup(t, "eastron-sdm630"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	tick := int64(123)
	at(d, &tick)
	get := func(name string) float64 {
		pt := d.points[indexOf(d, name)]
		v, _ := read(t, d, pt.table, pt.addr, pt.codec)
		f, _ := number(v)
		return f
	}
	sum := 0.0
	for _, l := range []string{"l1", "l2", "l3"} {
		p, v, i, pf := get("power_active_"+l), get("voltage_"+l), get("current_"+l), get("power_factor_"+l)
		if math.Abs(p-v*i*pf) > 0.01*p {
			t.Errorf("power_active_%s = %v, want voltage × current × power factor = %v", l, p, v*i*pf)
		}
		sum += p
	}
	if total := get("power_active"); math.Abs(total-sum) > 1 {
		t.Errorf("power_active = %v, want the phases' sum %v", total, sum)
	}
}

func TestHandle(t *testing.T) {
	d, err := New(lookup(t, "xy-md02"), Options{Missing: []string{"humidity"}, Unit: 5})
	if err != nil {
		t.Fatal(err)
	}
	var tick int64
	at(d, &tick)
	tests := []struct {
		name string
		pdu  string
		want string
	}{
		{name: "missing point alone", pdu: "0400020001", want: "8402"},
		{name: "read spanning the missing point", pdu: "0400010002", want: "8402"},
		{name: "temperature beside it (22.5 °C)", pdu: "0400010001", want: "040200e1"},
		{name: "unmapped register", pdu: "0400640001", want: "04020000"},
		{name: "unit setting", pdu: "0301010001", want: "03020005"},
		{name: "baud setting", pdu: "0301020001", want: "03022580"},
		{name: "write a setting", pdu: "0601030005", want: "0601030005"},
		{name: "read it back", pdu: "0301030001", want: "03020005"},
		{name: "write several", pdu: "10020000020400010002", want: "1002000002"},
		{name: "read them back", pdu: "0302000002", want: "030400010002"},
		{name: "write a coil", pdu: "050003ff00", want: "050003ff00"},
		{name: "read it back", pdu: "0100030001", want: "010101"},
		{name: "too many registers", pdu: "0400000080", want: "8402"},
		{name: "past the end", pdu: "04ffff0002", want: "8402"},
		{name: "unknown function", pdu: "0700000001", want: "8701"},
		{name: "short request", pdu: "0400", want: "8403"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pdu, _ := hex.DecodeString(tt.pdu)
			got, _, drop := d.Handle(pdu)
			if drop || hex.EncodeToString(got) != tt.want {
				t.Fatalf("Handle(%s) = %x (drop %v), want %s", tt.pdu, got, drop, tt.want)
			}
		})
	}
	if got := d.Requests(); got != uint64(len(tests)) {
		t.Errorf("Requests() = %d, want %d", got, len(tests))
	}
}

func TestNewErrors(t *testing.T) {
	_, err := New(lookup(t, "xy-md02"), Options{Missing: []string{"voltage_l1"}})
	if want := `profile "xy-md02": no point "voltage_l1" to leave out`; err == nil || err.Error() != want {
		t.Errorf("New with an unknown missing point = %v, want %s", err, want)
	}
	bad, err := profiles.Parse("bad.toml", []byte("name = \"bad\"\nsource = \"test\"\n[[attribute]]\nname = \"t\"\ntable = \"input\"\n[[attribute]]\nname = \"u\"\ntable = \"register\"\naddress = 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(bad, Options{})
	if want := "profile \"bad\": attribute \"t\": address: missing\nprofile \"bad\": attribute \"u\": table: unknown table \"register\" (want coil, discrete, input or holding)"; err == nil || err.Error() != want {
		t.Errorf("New of a bad profile = %v, want %s", err, want)
	}
	p, err := profiles.Parse("onvif-cam.toml", []byte("name = \"onvif-cam\"\nkind = \"onvif\"\nsource = \"test\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(p, Options{}); err == nil || !strings.Contains(err.Error(), "not modbus") {
		t.Errorf("New of an ONVIF profile = %v, want an error saying it is not modbus", err)
	}
}

// TestRegisterBools checks bools in bits of one register: each keeps
// the others.
func TestRegisterBools(t *testing.T) {
	p, err := profiles.Parse("bits.toml", []byte(`name = "bits"
source = "test"
[defaults]
table = "holding"
[[attribute]]
name = "running"
address = 4
type = "bool"
bit = 0
[[attribute]]
name = "power_ok"
address = 4
type = "bool"
bit = 3
`))
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	resp, _, _ := d.Handle([]byte{3, 0, 4, 0, 1})
	if got := binary.BigEndian.Uint16(resp[2:]); got != 0b1001 {
		t.Errorf("register 4 = %04b, want 1001 (running, power ok)", got)
	}
}
