package modbus

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/osapgw/osapgw/adapters"
)

// blockBody turns a [[device]] block as written in osapgw.toml into the
// text adapters.TOMLDecoder takes: no header, tables relative to it.
func blockBody(s string) string {
	s = strings.Replace(s, "[[device]]\n", "", 1)
	return strings.ReplaceAll(s, "[[device.", "[[")
}

func TestSampleConf(t *testing.T) {
	k, ok := adapters.Lookup("modbus")
	if !ok {
		t.Fatal(`adapters.Lookup("modbus") = false`)
	}
	if k.Sample != sampleConf || !strings.Contains(k.Sample, `kind = "modbus"`) {
		t.Fatal("Kind.Sample is not sample.conf")
	}
	ad, err := k.New("boiler-1", adapters.TOMLDecoder(blockBody(sampleConf)), adapters.Env{})
	if err != nil {
		t.Fatalf("New(sample.conf) error: %v", err)
	}
	a := ad.(*Adapter)
	d, err := a.Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Validate(); err != nil {
		t.Fatalf("Describe(sample).Validate() = %v", err)
	}
	r, ok := d.Resource("main")
	if !ok {
		t.Fatal(`sample has no resource "main"`)
	}
	for _, name := range []string{"temperature", "setpoint", "alarm", "status_text"} {
		if _, ok := r.Attribute(name); !ok {
			t.Errorf("sample: no attribute %q", name)
		}
	}
	if _, ok := r.Operation("set_mode"); !ok {
		t.Error(`sample: no operation "set_mode"`)
	}
	if _, ok := r.Event("overheat"); !ok {
		t.Error(`sample: no event "overheat"`)
	}
	if at, _ := r.Attribute("setpoint"); at.Type != "float" || !at.Writable {
		t.Errorf("setpoint = %+v, want a writable float", at)
	}
}

func TestConfigErrors(t *testing.T) {
	const head = "url = \"tcp://127.0.0.1:5020\"\nunit = 1\n"
	tests := []struct {
		name    string
		conf    string
		wantErr []string
	}{
		{name: "overlapping registers", conf: head + `
[[attribute]]
name = "a"
table = "holding"
address = 10
type = "float32"
[[attribute]]
name = "b"
table = "holding"
address = 11
`, wantErr: []string{`device "dev": attribute "b": holding registers 11-11 overlap attribute "a" (10-11)`}},
		{name: "bits of one register may share it", conf: head + `
[[attribute]]
name = "a"
table = "input"
address = 5
type = "bool"
bit = 0
[[attribute]]
name = "b"
table = "input"
address = 5
type = "bool"
bit = 1
`},
		{name: "same bit twice", conf: head + `
[[attribute]]
name = "a"
table = "input"
address = 5
type = "bool"
bit = 1
[[attribute]]
name = "b"
table = "input"
address = 5
type = "bool"
bit = 1
`, wantErr: []string{`attribute "b": input registers 5-5 overlap attribute "a"`}},
		{name: "type needs more registers", conf: head + `
[[attribute]]
name = "t"
table = "input"
address = 0
type = "float64"
length = 2
`, wantErr: []string{`device "dev": attribute "t": length: type float64 needs 4 registers, length gives 2`}},
		{name: "unknown order", conf: head + `
[[attribute]]
name = "t"
table = "input"
address = 0
type = "int32"
order = "ACBD"
`, wantErr: []string{`device "dev": attribute "t": order: unknown byte order "ACBD"`}},
		{name: "unknown type and table", conf: head + `
[[attribute]]
name = "t"
table = "input"
address = 0
type = "int24"
[[attribute]]
name = "u"
table = "register"
address = 0
`, wantErr: []string{`attribute "t": type: unknown type "int24"`, `attribute "u": table: unknown table "register"`}},
		{name: "bad url", conf: `url = "udp://x:1"
[[attribute]]
name = "t"
table = "coil"
address = 0
`, wantErr: []string{`device "dev": url "udp://x:1": unknown scheme "udp"`}},
		{name: "rtu url with host", conf: `url = "rtu://dev/ttyUSB0"
unit = 1
[[attribute]]
name = "t"
table = "coil"
address = 0
`, wantErr: []string{`want rtu:///dev/PORT`}},
		{name: "serial keys on tcp", conf: head + `baud = 9600
[[attribute]]
name = "t"
table = "coil"
address = 0
`, wantErr: []string{"apply to rtu:// and ascii:// links only"}},
		{name: "coil not bool, input writable, bool without bit", conf: head + `
[[attribute]]
name = "c"
table = "coil"
address = 0
type = "uint16"
[[attribute]]
name = "i"
table = "input"
address = 0
writable = true
[[attribute]]
name = "b"
table = "holding"
address = 0
type = "bool"
`, wantErr: []string{`attribute "c": type: a coil holds bits`, `attribute "i": writable: a input is read-only`, `attribute "b": bit: a bool in a holding register needs bit`}},
		{name: "string without length", conf: head + `
[[attribute]]
name = "s"
table = "input"
address = 0
type = "string"
`, wantErr: []string{`attribute "s": length: a string needs length`}},
		{name: "unknown key", conf: head + `
[[attribute]]
name = "s"
table = "input"
address = 0
adress = 3
`, wantErr: []string{`unknown keys: attribute.adress`}},
		{name: "event on missing attribute", conf: head + `
[[attribute]]
name = "t"
table = "input"
address = 0
[[event]]
name = "hot"
attribute = "temp"
above = 3.0
`, wantErr: []string{`event "hot": attribute: no attribute "temp"`}},
		{name: "operation with unknown param", conf: head + `
[[attribute]]
name = "t"
table = "input"
address = 0
[[operation]]
name = "go"
[[operation.write]]
table = "holding"
address = 3
value = "{speed}"
`, wantErr: []string{`operation "go": write #1: value: no param "speed"`}},
		{name: "serial unit 0 and bad parity", conf: `url = "rtu:///dev/ttyS0"
unit = 0
parity = "X"
[[attribute]]
name = "t"
table = "input"
address = 0
`, wantErr: []string{"parity: \"X\"", "unit: 0 is the broadcast address"}},
		{name: "duplicate operation and event", conf: head + `
[[attribute]]
name = "t"
table = "input"
address = 0
[[event]]
name = "hot"
attribute = "t"
above = 3.0
[[event]]
name = "hot"
attribute = "t"
below = 1.0
[[operation]]
name = "go"
[[operation.write]]
table = "holding"
address = 3
value = 1
[[operation]]
name = "go"
[[operation.write]]
table = "coil"
address = 3
value = true
`, wantErr: []string{`device "dev": event "hot": name: resource "main" has event "hot" already`, `device "dev": operation "go": name: resource "main" has operation "go" already`}},
		{name: "tcp without unit", conf: `url = "tcp://127.0.0.1:5020"
[[attribute]]
name = "t"
table = "coil"
address = 0
`, wantErr: []string{`device "dev": unit: missing: give the unit id the device answers to (often 1; 0 or 255 for some TCP gateways)`}},
		{name: "tcp unit 0 given", conf: `url = "tcp://127.0.0.1:5020"
unit = 0
[[attribute]]
name = "t"
table = "coil"
address = 0
`},
		{name: "serial without unit", conf: `url = "rtu:///dev/ttyS0"
[[attribute]]
name = "t"
table = "coil"
address = 0
`, wantErr: []string{`device "dev": unit: missing: give the unit id of the device on the bus (1 to 247)`}},
		{name: "serial unit 248", conf: `url = "ascii:///dev/ttyS0"
unit = 248
[[attribute]]
name = "t"
table = "coil"
address = 0
`, wantErr: []string{`device "dev": unit: 248, want 1 to 247 on a serial bus`}},
		{name: "tcp unit 256", conf: `url = "tcp://h"
unit = 256
[[attribute]]
name = "t"
table = "coil"
address = 0
`, wantErr: []string{`device "dev": unit: 256, want 0 to 255`}},
		{name: "limits", conf: head + `max_registers = 200
max_bits = 0
[[attribute]]
name = "t"
table = "input"
address = 65535
type = "uint32"
`, wantErr: []string{"max_registers: 200, want 1 to 125", "address: 65535 + 2 registers runs past 65535"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New("dev", adapters.TOMLDecoder(tt.conf), adapters.Env{})
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("New() error %v, want none", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New() = nil error, want %q", tt.wantErr)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("New() error:\n%v\nwant it to contain %q", err, want)
				}
			}
		})
	}
}

// TestModiconWarning: an address that looks like a Modicon register
// number is accepted, with a warning naming the key and the likely
// protocol address.
func TestModiconWarning(t *testing.T) {
	const conf = `url = "tcp://127.0.0.1:5020"
unit = 1
[[attribute]]
name = "ok"
table = "holding"
address = 40000
[[attribute]]
name = "flow"
table = "holding"
address = 40001
[[attribute]]
name = "temp"
table = "input"
address = 30010
[[attribute]]
name = "level"
table = "input"
address = 40108
[[attribute]]
name = "pump"
table = "coil"
address = 40001
[[operation]]
name = "reset"
[[operation.write]]
table = "holding"
address = 49999
value = 1
`
	a, err := New("dev", adapters.TOMLDecoder(conf), adapters.Env{})
	if err != nil {
		t.Fatalf("New() = %v, want no error", err)
	}
	var got []string
	for _, w := range a.Warnings() {
		var fe *adapters.FieldError
		if !errors.As(w, &fe) {
			t.Fatalf("warning %v is not an *adapters.FieldError", w)
		}
		got = append(got, fe.Key+" | "+w.Error())
	}
	want := []string{
		`attribute[1].address | device "dev": attribute "flow": address 40001 looks like a Modicon number: holding register 40001 is protocol address 0; write address = 0 unless the device's manual gives protocol addresses`,
		`attribute[2].address | device "dev": attribute "temp": address 30010 looks like a Modicon number: input register 30010 is protocol address 9; write address = 9 unless the device's manual gives protocol addresses`,
		`attribute[3].address | device "dev": attribute "level": address 40108 looks like a Modicon number: holding register 40108 is protocol address 107 of the holding table; write table = "holding", address = 107 unless the device's manual gives protocol addresses`,
		`operation[0].write[0].address | device "dev": operation "reset": write #1: address 49999 looks like a Modicon number: holding register 49999 is protocol address 9998; write address = 9998 unless the device's manual gives protocol addresses`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Warnings() mismatch (-want +got):\n%s", diff)
	}
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		in, key string
	}{
		{in: "tcp://10.0.0.5", key: "tcp://10.0.0.5:502"},
		{in: "tcp://[::1]:1502", key: "tcp://[::1]:1502"},
		{in: "rtu:///dev/ttyUSB0", key: "rtu:///dev/ttyUSB0?baud=9600&data_bits=8&parity=N&stop_bits=1"},
		{in: "ascii:///dev/ttyS1", key: "ascii:///dev/ttyS1?baud=9600&data_bits=7&parity=E&stop_bits=1"},
	}
	for _, tt := range tests {
		l, err := ParseURL(tt.in)
		if err != nil || l.key() != tt.key {
			t.Errorf("ParseURL(%q) = %q, %v, want %q", tt.in, l.key(), err, tt.key)
		}
	}
}

// TestSampleModelGolden pins the device model (the DSL description sent in
// topo.add) that sample.conf gives.
func TestSampleModelGolden(t *testing.T) {
	a, err := New("boiler-1", adapters.TOMLDecoder(blockBody(sampleConf)), adapters.Env{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := a.Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	golden := filepath.Join("testdata", "sample_model.golden.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("model of sample.conf mismatch (-want +got):\n%s", diff)
	}
}
