package modbus

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/classes"
	"github.com/osapgw/osapgw/model"
	"github.com/osapgw/osapgw/profiles"
)

const testProfiles = "../../profiles/testdata"

// testCatalog returns the embedded profiles and those of
// profiles/testdata/dir.
func testCatalog(t testing.TB, dir string) *profiles.Catalog {
	t.Helper()
	c, err := profiles.Load(testProfiles + "/" + dir)
	if err != nil && dir == "good" {
		t.Fatal(err)
	}
	return c
}

// newProfiled builds a device from conf with the good test profiles.
func newProfiled(t testing.TB, conf string) (*Adapter, error) {
	t.Helper()
	return New("m1", adapters.TOMLDecoder(conf), adapters.Env{Profiles: testCatalog(t, "good")})
}

// pointOf is what a test compares of a compiled attribute.
type pointOf struct {
	Table, Type, Order, Unit string
	Addr                     uint16
	Scale                    float64
	Model                    model.Type
}

func pointsOf(a *Adapter) map[string]pointOf {
	out := map[string]pointOf{}
	for _, at := range a.dev.attrs {
		c := at.enc.codec
		out[at.m.Name] = pointOf{Table: string(at.enc.table), Type: string(c.Type), Order: string(c.Order), Unit: at.m.Unit,
			Addr: at.addr, Scale: c.Scale, Model: at.m.Type}
	}
	return out
}

func TestProfileDevice(t *testing.T) {
	a, err := newProfiled(t, "profile = \"test-meter\"\nurl = \"tcp://127.0.0.1:5020\"\n")
	if err != nil {
		t.Fatal(err)
	}
	d, _ := a.Describe(context.Background())
	if d.Manufacturer != "Osapgw Test" || d.Model != "TM-3" || len(d.Resources) != 1 {
		t.Fatalf("model = %+v", d)
	}
	main := d.Resources[0]
	if main.Class != "energy-meter/1" {
		t.Errorf("class = %q, want energy-meter/1", main.Class)
	}
	if err := classes.Check(&main); err != nil {
		t.Error(err)
	}
	if a.dev.unit != 1 {
		t.Errorf("unit = %d, want the profile's 1", a.dev.unit)
	}
	if a.dev.maxRegisters != 60 {
		t.Errorf("max_registers = %d, want the profile's 60", a.dev.maxRegisters)
	}
	got := pointsOf(a)
	want := map[string]pointOf{
		"voltage_l1":    {Table: "input", Type: "float32", Order: "ABCD", Unit: "V", Addr: 0, Scale: 1, Model: model.TypeFloat},
		"serial_number": {Table: "holding", Type: "uint32", Order: "ABCD", Addr: 64512, Scale: 1, Model: model.TypeInt},
	}
	for n, w := range want {
		if diff := cmp.Diff(w, got[n]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", n, diff)
		}
	}
	if len(got) != 8 {
		t.Errorf("%d attributes, want the profile's 8", len(got))
	}
	if _, ok := main.Operation("energy.reset"); !ok {
		t.Error("no energy.reset")
	}
}

func TestProfileOverrides(t *testing.T) {
	const head = "profile = \"test-meter\"\nurl = \"tcp://127.0.0.1:5020\"\n"
	tests := []struct {
		name    string
		conf    string
		want    map[string]pointOf // points to compare
		absent  []string
		check   func(t *testing.T, a *Adapter)
		wantErr string
	}{
		{
			name: "key by key",
			conf: head + "[[attribute]]\nname = \"voltage_l1\"\naddress = 100\n",
			want: map[string]pointOf{"voltage_l1": {Table: "input", Type: "float32", Order: "ABCD", Unit: "V", Addr: 100, Scale: 1, Model: model.TypeFloat}},
		},
		{
			name: "zero value given",
			conf: head + "[[attribute]]\nname = \"voltage_l2\"\naddress = 0\ntable = \"holding\"\n",
			want: map[string]pointOf{"voltage_l2": {Table: "holding", Type: "float32", Order: "ABCD", Unit: "V", Addr: 0, Scale: 1, Model: model.TypeFloat}},
		},
		{
			name: "added point takes the profile's defaults",
			conf: head + "[[attribute]]\nname = \"power_reactive\"\naddress = 60\nunit = \"var\"\n",
			want: map[string]pointOf{"power_reactive": {Table: "input", Type: "float32", Order: "ABCD", Unit: "var", Addr: 60, Scale: 1, Model: model.TypeFloat}},
		},
		{
			name: "device defaults win over the profile's",
			conf: head + "order = \"CDAB\"\n",
			want: map[string]pointOf{
				"voltage_l1":    {Table: "input", Type: "float32", Order: "CDAB", Unit: "V", Addr: 0, Scale: 1, Model: model.TypeFloat},
				"serial_number": {Table: "holding", Type: "uint32", Order: "CDAB", Addr: 64512, Scale: 1, Model: model.TypeInt},
			},
		},
		{
			name:   "exclude",
			conf:   head + "exclude = [\"voltage_l2\", \"voltage_l1\"]\n",
			absent: []string{"voltage_l1", "voltage_l2"},
			check: func(t *testing.T, a *Adapter) {
				// The event on voltage_l1 goes with it.
				if len(a.dev.events) != 0 {
					t.Errorf("events = %d, want 0", len(a.dev.events))
				}
			},
		},
		{
			name:    "exclude what the profile lacks",
			conf:    head + "exclude = [\"voltage_l9\"]\n",
			wantErr: `device "m1": exclude: profile "test-meter" has no point "voltage_l9"`,
		},
		{
			name: "event rule replaced",
			conf: head + "[[event]]\nname = \"voltage_high\"\nbelow = 207.0\n",
			check: func(t *testing.T, a *Adapter) {
				e := a.dev.events[0]
				if e.Above != nil || e.Below == nil || *e.Below != 207 || e.Hysteresis != 2 || e.Attribute != "voltage_l1" {
					t.Errorf("event = %+v, want below 207 with the profile's hysteresis", e.EventConfig)
				}
			},
		},
		{
			name: "event threshold changed",
			conf: head + "[[event]]\nname = \"voltage_high\"\nhysteresis = 5.0\n",
			check: func(t *testing.T, a *Adapter) {
				if e := a.dev.events[0]; e.Above == nil || *e.Above != 253 || e.Hysteresis != 5 {
					t.Errorf("event = %+v, want above 253, hysteresis 5", e.EventConfig)
				}
			},
		},
		{
			name: "operation replaced",
			conf: head + "[[operation]]\nname = \"energy.reset\"\n[[operation.write]]\ntable = \"coil\"\naddress = 7\nvalue = true\n",
			check: func(t *testing.T, a *Adapter) {
				if o := a.dev.ops[0]; len(a.dev.ops) != 1 || o.writes[0].table != Coil {
					t.Errorf("operations = %+v", a.dev.ops)
				}
			},
		},
		{
			name: "unit from the profile, or given",
			conf: head + "unit = 0\n",
			check: func(t *testing.T, a *Adapter) {
				if a.dev.unit != 0 {
					t.Errorf("unit = %d, want the block's 0", a.dev.unit)
				}
			},
		},
		{
			name: "serial settings on a serial link",
			conf: "profile = \"test-meter\"\nurl = \"rtu:///dev/ttyUSB0\"\nbaud = 19200\n",
			check: func(t *testing.T, a *Adapter) {
				if l := a.dev.link; l.Baud != 19200 || l.Parity != "N" || l.DataBits != 8 {
					t.Errorf("link = %+v", l)
				}
			},
		},
		{
			name:    "class broken by an override",
			conf:    head + "[[attribute]]\nname = \"voltage_l1\"\nunit = \"kV\"\n",
			wantErr: `device "m1": class "energy-meter/1": attribute "voltage_l1": float in "kV", want float in "V": does not implement its class`,
		},
		{
			name:    "class broken by a type",
			conf:    head + "[[attribute]]\nname = \"power_active\"\ntype = \"int32\"\n",
			wantErr: `device "m1": class "energy-meter/1": attribute "power_active": int in "W", want float in "W"`,
		},
		{
			name:    "required point excluded",
			conf:    head + "exclude = [\"power_active\"]\n",
			wantErr: `device "m1": class "energy-meter/1": attribute "power_active": missing (required, float in "W")`,
		},
		{
			name:    "unknown profile",
			conf:    "profile = \"test-metre\"\nurl = \"tcp://127.0.0.1:5020\"\n",
			wantErr: `device "m1": profile: unknown profile "test-metre" (did you mean "test-meter"?)`,
		},
		{
			name:    "a profile point compiles as the device's",
			conf:    head + "[[attribute]]\nname = \"frequency\"\ntype = \"float64\"\n",
			wantErr: `device "m1": attribute "energy_active_import": input registers 72-73 overlap attribute "frequency" (70-73)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := newProfiled(t, tt.conf)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New = %v", err)
			}
			got := pointsOf(a)
			for n, w := range tt.want {
				if diff := cmp.Diff(w, got[n]); diff != "" {
					t.Errorf("%s (-want +got):\n%s", n, diff)
				}
			}
			for _, n := range tt.absent {
				if _, ok := got[n]; ok {
					t.Errorf("%s present, want it excluded", n)
				}
			}
			if tt.check != nil {
				tt.check(t, a)
			}
		})
	}
}

func TestPointDefaults(t *testing.T) {
	const conf = `url = "tcp://127.0.0.1:5020"
unit = 1
table = "holding"
type = "int16"
order = "CDAB"
scale = 0.1
attribute = [
  {name = "t1", address = 0, unit = "°C"},
  {name = "t2", address = 1, type = "uint16"},
  {name = "e", address = 2, type = "uint32", scale = 1.0},
  {name = "b", address = 4, type = "bool", bit = 3},
  {name = "s", address = 5, type = "string", length = 4},
  {name = "in", table = "input", address = 0, order = "ABCD"},
  {name = "c", table = "coil", address = 0},
]
[[operation]]
name = "w"
[[operation.write]]
table = "holding"
address = 10
type = "uint32"
value = 1
`
	a, err := New("d", adapters.TOMLDecoder(conf), adapters.Env{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]pointOf{
		"t1": {Table: "holding", Type: "int16", Order: "CDAB", Unit: "°C", Addr: 0, Scale: 0.1, Model: model.TypeFloat},
		"t2": {Table: "holding", Type: "uint16", Order: "CDAB", Addr: 1, Scale: 0.1, Model: model.TypeFloat},
		"e":  {Table: "holding", Type: "uint32", Order: "CDAB", Addr: 2, Scale: 1, Model: model.TypeInt},
		"b":  {Table: "holding", Type: "bool", Order: "CDAB", Addr: 4, Scale: 1, Model: model.TypeBool},
		"s":  {Table: "holding", Type: "string", Order: "CDAB", Addr: 5, Scale: 1, Model: model.TypeString},
		"in": {Table: "input", Type: "int16", Order: "ABCD", Addr: 0, Scale: 0.1, Model: model.TypeFloat},
		"c":  {Table: "coil", Type: "bool", Order: "ABCD", Addr: 0, Scale: 1, Model: model.TypeBool},
	}
	if diff := cmp.Diff(want, pointsOf(a)); diff != "" {
		t.Errorf("points (-want +got):\n%s", diff)
	}
	if o := a.dev.ops[0].writes[0].codec.Order; o != CDAB {
		t.Errorf("write order = %s, want the device's CDAB", o)
	}
}

// TestInlineForm: an inline array of tables decodes as [[attribute]]
// blocks do.
func TestInlineForm(t *testing.T) {
	const tables = `[[attribute]]
name = "a"
table = "input"
address = 0
scale = 0.5
[[attribute]]
name = "b"
table = "coil"
address = 3
`
	const inline = `attribute = [
  {name = "a", table = "input", address = 0, scale = 0.5},
  {name = "b", table = "coil", address = 3},
]
`
	var c1, c2 Config
	if err := adapters.TOMLDecoder(tables).Decode(&c1); err != nil {
		t.Fatal(err)
	}
	if err := adapters.TOMLDecoder(inline).Decode(&c2); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c1.Attributes, c2.Attributes); diff != "" || len(c1.Attributes) != 2 {
		t.Errorf("inline form (-tables +inline):\n%s", diff)
	}
	// An unknown key in the inline form is refused like any other.
	var c3 Config
	err := adapters.TOMLDecoder(`attribute = [{name = "a", colour = "red"}]`).Decode(&c3)
	if err == nil || !strings.Contains(err.Error(), "colour") {
		t.Errorf("Decode(unknown inline key) = %v, want an error naming it", err)
	}
}

// TestHundredPoints: a 100-point device in the inline form, with device
// defaults, fits in well under 100 lines.
func TestHundredPoints(t *testing.T) {
	var b strings.Builder
	b.WriteString("url = \"tcp://127.0.0.1:5020\"\nunit = 1\ntable = \"holding\"\ntype = \"float32\"\norder = \"CDAB\"\nattribute = [\n")
	for i := 0; i < 100; i += 2 {
		fmt.Fprintf(&b, "  {name = \"p%d\", address = %d}, {name = \"p%d\", address = %d},\n", i, 2*i, i+1, 2*i+2)
	}
	b.WriteString("]\n")
	if n := strings.Count(b.String(), "\n"); n > 60 {
		t.Fatalf("%d lines", n)
	}
	a, err := New("d", adapters.TOMLDecoder(b.String()), adapters.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if got := pointsOf(a)["p99"]; len(a.dev.attrs) != 100 || got.Addr != 198 || got.Order != "CDAB" || got.Type != "float32" {
		t.Errorf("%d points, p99 = %+v", len(a.dev.attrs), got)
	}
}

func TestProfileShared(t *testing.T) {
	cat := testCatalog(t, "good")
	build := func(id, extra string) *Adapter {
		t.Helper()
		a, err := New(id, adapters.TOMLDecoder("profile = \"test-meter\"\nurl = \"tcp://127.0.0.1:5020\"\n"+extra), adapters.Env{Profiles: cat})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	a, b := build("m1", "unit = 2\n"), build("m2", "unit = 3\n")
	if &a.dev.attrs[0] != &b.dev.attrs[0] || &a.dev.model.Resources[0] != &b.dev.model.Resources[0] {
		t.Error("two devices of one profile do not share its compiled points")
	}
	if a.dev.model.ID != "m1" || b.dev.model.ID != "m2" || a.dev.unit != 2 || b.dev.unit != 3 {
		t.Errorf("devices mixed up: %s unit %d, %s unit %d", a.dev.model.ID, a.dev.unit, b.dev.model.ID, b.dev.unit)
	}
	for _, extra := range []string{"order = \"CDAB\"\n", "exclude = [\"voltage_l3\"]\n", "poll = \"1s\"\n", "[[attribute]]\nname = \"voltage_l1\"\naddress = 100\n"} {
		c := build("m3", extra)
		if &c.dev.attrs[0] == &a.dev.attrs[0] {
			t.Errorf("%q: shares the profile's points", extra)
		}
	}
	// The attributes point into the shared model.
	for i := range b.dev.attrs {
		at := &b.dev.attrs[i]
		if r, _ := b.dev.model.Resource(at.resource); r == nil || !containsPtr(r, at.m) {
			t.Fatalf("attribute %s points outside the model", at.m.Name)
		}
	}
}

func containsPtr(r *model.Resource, m *model.Attribute) bool {
	for i := range r.Areas {
		for k := range r.Areas[i].Attributes {
			if &r.Areas[i].Attributes[k] == m {
				return true
			}
		}
	}
	return false
}

func TestCheckProfile(t *testing.T) {
	tests := []struct {
		dir, name string
		wantErr   []string
	}{
		{dir: "good", name: "test-meter"},
		{dir: "good", name: "test-sensor"},
		{dir: "bad", name: "wrong-unit", wantErr: []string{
			`testdata/bad/wrong-unit.toml: class "energy-meter/1": attribute "power_active": float in "kW", want float in "W"`,
			`class "energy-meter/1": attribute "energy_active_import": int in "kWh", want float in "kWh"`,
		}},
		{dir: "bad", name: "missing-required", wantErr: []string{
			`attribute "temperature": missing (required, float in "°C")`,
			`event "temperature_high": parameter "value": float in "%", want float in "°C"`,
		}},
		{dir: "bad", name: "bad-point", wantErr: []string{`testdata/bad/bad-point.toml:7: unknown key "attribute.colour"`}},
		{dir: "bad", name: "bad-identity", wantErr: []string{`testdata/bad/bad-identity.toml: identity #1: value 70000 (raw 70000) out of range of uint16`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := testCatalog(t, tt.dir).Lookup(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			err = CheckProfile(p)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("CheckProfile = %v", err)
				}
				return
			}
			for _, w := range tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("CheckProfile = %v, want it to contain %q", err, w)
				}
			}
			if strings.Contains(tt.name, "unit") && !errors.Is(err, classes.ErrNotConforming) {
				t.Errorf("CheckProfile = %v, does not wrap classes.ErrNotConforming", err)
			}
		})
	}
}

// TestEmbeddedProfiles checks every profile of profiles/data: it decodes,
// compiles and implements its class.
func TestEmbeddedProfiles(t *testing.T) {
	all := profiles.Embedded().Profiles()
	t.Logf("%d embedded profiles", len(all))
	for _, p := range all {
		t.Run(p.Name, func(t *testing.T) {
			if p.Kind != "modbus" {
				t.Skipf("kind %q", p.Kind)
			}
			if err := CheckProfile(p); err != nil {
				t.Error(err)
			}
			// A device that names it builds.
			if _, err := New("d", adapters.TOMLDecoder("profile = \""+p.Name+"\"\nurl = \"tcp://127.0.0.1:502\"\nunit = 1\n"), adapters.Env{}); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestProfileMemory: a hundred devices of one 60-point profile keep less
// memory than the same hundred devices written out point by point, since
// they share the compiled profile.
func TestProfileMemory(t *testing.T) {
	var points strings.Builder
	for i := 0; i < 60; i++ {
		fmt.Fprintf(&points, "[[attribute]]\nname = \"point_%02d\"\ntable = \"input\"\naddress = %d\ntype = \"float32\"\nunit = \"V\"\ndescription = \"point number %d\"\n", i, 2*i, i)
	}
	dir := t.TempDir()
	prof := "name = \"sixty\"\nsource = \"tests\"\n" + points.String()
	if err := os.WriteFile(filepath.Join(dir, "sixty.toml"), []byte(prof), 0o644); err != nil {
		t.Fatal(err)
	}
	cat, err := profiles.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	heap := func(conf func(i int) string) (uint64, []*Adapter) {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		var keep []*Adapter
		for i := 0; i < 100; i++ {
			a, err := New(fmt.Sprintf("m%d", i), adapters.TOMLDecoder(conf(i)), adapters.Env{Profiles: cat})
			if err != nil {
				t.Fatal(err)
			}
			keep = append(keep, a)
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		return after.HeapAlloc - min(before.HeapAlloc, after.HeapAlloc), keep
	}
	profiled, k1 := heap(func(i int) string {
		return fmt.Sprintf("profile = \"sixty\"\nurl = \"tcp://127.0.0.1:5020\"\nunit = %d\n", i%247+1)
	})
	written, k2 := heap(func(i int) string {
		return fmt.Sprintf("url = \"tcp://127.0.0.1:5020\"\nunit = %d\n", i%247+1) + points.String()
	})
	runtime.KeepAlive(k1)
	runtime.KeepAlive(k2)
	t.Logf("100 devices of 60 points: %d KiB with a profile, %d KiB written out", profiled>>10, written>>10)
	if profiled*2 > written {
		t.Errorf("with a profile %d B, written out %d B: want less than half", profiled, written)
	}
}
