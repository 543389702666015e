package modbus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goburrow/modbus"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/classes"
	"github.com/osapgw/osapgw/model"
	sim "github.com/osapgw/osapgw/sim/modbus"
)

// unitReader reads holding registers from u directly, as the link would
// over the wire: exceptions become goburrow's errors, a dropped request a
// timeout.
func unitReader(u sim.Unit) regReader {
	return func(addr, count uint16) ([]uint16, error) {
		pdu := []byte{3, 0, 0, 0, 0}
		binary.BigEndian.PutUint16(pdu[1:], addr)
		binary.BigEndian.PutUint16(pdu[3:], count)
		resp, _, drop := u.Handle(pdu)
		switch {
		case drop:
			return nil, fmt.Errorf("%w: no answer", adapters.ErrTimeout)
		case resp[0]&0x80 != 0:
			return nil, &modbus.ModbusError{FunctionCode: resp[0], ExceptionCode: resp[1]}
		}
		return registersOf(resp[2:]), nil
	}
}

// TestSunSpecModelTables checks the tables of sunspec_models.go against
// themselves: every scale factor a point names is in its model, every
// point lies within the model's standard length, and no two points of a
// model share registers or an attribute.
func TestSunSpecModelTables(t *testing.T) {
	// L of each model as sunspec/models defines it (model 160: 2 modules).
	length := map[uint16]int{101: 50, 102: 50, 103: 50, 111: 60, 112: 60, 113: 60, 201: 105, 202: 105, 203: 105, 204: 105}
	for id, m := range sunspecModels {
		if id == 160 {
			continue
		}
		t.Run(fmt.Sprint(id), func(t *testing.T) {
			used := map[int]string{}
			for name, off := range m.sfs {
				used[off] = name
			}
			names := map[string]bool{}
			for _, p := range m.points {
				if p.sf != "" {
					if _, ok := m.sfs[p.sf]; !ok {
						t.Errorf("point %s: scale factor %s not in the model", p.name, p.sf)
					}
				}
				if end := p.offset + p.typ.registers(); end > length[id]+2 {
					t.Errorf("point %s: ends at %d, past L %d", p.name, end, length[id])
				}
				for r := p.offset; r < p.offset+p.typ.registers(); r++ {
					if other, ok := used[r]; ok {
						t.Errorf("point %s: register %d also holds %s", p.name, r, other)
					}
					used[r] = p.name
				}
				if names[p.attr] {
					t.Errorf("attribute %q twice", p.attr)
				}
				names[p.attr] = true
			}
		})
	}
	for k := 0; k < 2; k++ {
		for _, p := range mpptModule(k+1, k) {
			if _, ok := sunspecModels[160].sfs[p.sf]; !ok {
				t.Errorf("model 160 point %s: scale factor %s not in the model", p.name, p.sf)
			}
		}
	}
}

func TestSunSpecValue(t *testing.T) {
	sf := func(v int) *uint16 { u := uint16(int16(v)); return &u }
	f32 := func(f float32) []uint16 { b := math.Float32bits(f); return []uint16{uint16(b >> 16), uint16(b)} }
	tests := []struct {
		name    string
		typ     ssType
		raw     []uint16
		sf      *uint16
		exp     int
		want    any
		wantErr string
	}{
		{name: "uint16, sf -1", typ: ssUint16, raw: []uint16{2305}, sf: sf(-1), want: 230.5},
		{name: "uint16, sf -2", typ: ssUint16, raw: []uint16{5001}, sf: sf(-2), want: 50.01},
		{name: "int16 negative, sf 0", typ: ssInt16, raw: []uint16{uint16(0xFFFF - 2499)}, sf: sf(0), want: -2500.0},
		{name: "int16, sf 2", typ: ssInt16, raw: []uint16{123}, sf: sf(2), want: 12300.0},
		{name: "acc32 Wh to kWh, sf 1", typ: ssAcc32, raw: []uint16{0x0012, 0xD687}, sf: sf(1), exp: -3, want: 12345.67},
		{name: "acc32 Wh to kWh, sf 0", typ: ssAcc32, raw: []uint16{0x0044, 0xAA20}, sf: sf(0), exp: -3, want: 4500.0},
		{name: "PF percent to factor", typ: ssInt16, raw: []uint16{uint16(0x10000 - 9800)}, sf: sf(-2), exp: -2, want: -0.98},
		{name: "uint32", typ: ssUint32, raw: []uint16{1, 0}, sf: sf(-3), want: 65.536},
		{name: "int32 negative", typ: ssInt32, raw: []uint16{0xFFFF, 0xFFFE}, want: -2.0},
		{name: "float32", typ: ssFloat32, raw: f32(230.5), want: 230.5},
		{name: "float32 Wh to kWh", typ: ssFloat32, raw: f32(1500), exp: -3, want: 1.5},
		{name: "enum16", typ: ssEnum16, raw: []uint16{4}, want: int64(4)},
		{name: "count", typ: ssCount, raw: []uint16{2}, want: 2.0},

		{name: "int16 not implemented", typ: ssInt16, raw: []uint16{0x8000}, sf: sf(0), wantErr: "not implemented"},
		{name: "uint16 not implemented", typ: ssUint16, raw: []uint16{0xFFFF}, sf: sf(-2), wantErr: "not implemented"},
		{name: "enum16 not implemented", typ: ssEnum16, raw: []uint16{0xFFFF}, wantErr: "not implemented"},
		{name: "acc32 not implemented", typ: ssAcc32, raw: []uint16{0, 0}, sf: sf(0), wantErr: "not implemented"},
		{name: "uint32 not implemented", typ: ssUint32, raw: []uint16{0xFFFF, 0xFFFF}, wantErr: "not implemented"},
		{name: "int32 not implemented", typ: ssInt32, raw: []uint16{0x8000, 0}, wantErr: "not implemented"},
		{name: "float32 NaN", typ: ssFloat32, raw: []uint16{0x7FC0, 0}, wantErr: "not implemented"},
		{name: "float32 other NaN", typ: ssFloat32, raw: []uint16{0xFFC0, 1}, wantErr: "not implemented"},
		{name: "float32 infinite", typ: ssFloat32, raw: []uint16{0x7F80, 0}, wantErr: "register value is +Inf, not a number"},
		{name: "sunssf not implemented", typ: ssInt16, raw: []uint16{100}, sf: sf(-32768), wantErr: "not implemented (scale factor X_SF)"},
		{name: "sunssf out of range", typ: ssInt16, raw: []uint16{100}, sf: sf(11), wantErr: "scale factor X_SF is 11, want -10 to 10"},
		{name: "int16 0x8000 is checked before its sf", typ: ssInt16, raw: []uint16{0x8000}, sf: sf(-32768), wantErr: "not implemented"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ssValue(tt.typ, tt.raw, tt.sf, "X_SF", tt.exp)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ssValue(%s, %04x) = %v, %v, want error %q", tt.typ, tt.raw, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ssValue(%s, %04x) = %v (%T), %v, want %v (%T)", tt.typ, tt.raw, got, got, err, tt.want, tt.want)
			}
		})
	}
}

func TestSunSpecFindMarker(t *testing.T) {
	for _, base := range SunSpecBases {
		t.Run(fmt.Sprint(base), func(t *testing.T) {
			u := sim.NewSunSpec(base, time.Hour)
			got, err := findMarker(unitReader(u), time.Second)
			if err != nil || got != base {
				t.Fatalf("findMarker() = %d, %v, want %d", got, err, base)
			}
		})
	}
	t.Run("none", func(t *testing.T) {
		// A sensor answers 40000 and 50000 with exception 2, and other
		// registers at 0.
		_, err := findMarker(unitReader(sim.NewSensor(time.Hour, 0)), time.Second)
		want := `sunspec: no "SunS" marker (5375 6e53) in holding registers 40000: exception 2 (illegal data address); 50000: exception 2 (illegal data address); 0: 00d7 0000: not a SunSpec device`
		if err == nil || err.Error() != want || !errors.Is(err, errNoSunSpec) {
			t.Fatalf("findMarker() = %v, want %s", err, want)
		}
	})
	t.Run("no answer", func(t *testing.T) {
		u := sim.NewSunSpec(0, time.Hour)
		u.SetFault(sim.Fault{Drop: true})
		_, err := findMarker(unitReader(u), time.Second)
		if !errors.Is(err, adapters.ErrTimeout) || !strings.Contains(err.Error(), "holding 40000") {
			t.Fatalf("findMarker() = %v, want a timeout at holding 40000", err)
		}
	})
}

func TestSunSpecWalkChain(t *testing.T) {
	const base = 40000
	tests := []struct {
		name    string
		set     map[uint16]uint16 // registers to change
		want    string
		wantErr string
	}{
		{name: "whole", want: "[1@40002+66 103@40070+50 160@40122+48 203@40172+105]"},
		{name: "end marker missing",
			set:     map[uint16]uint16{base + sim.SunSpecEnd: 42},
			wantErr: "sunspec: SunSpec model chain broken at holding 40281 (after model 42 at 40279, length 0): exception 2 (illegal data address)"},
		{name: "length too long",
			set:     map[uint16]uint16{base + sim.SunSpecInverter + 1: 500},
			wantErr: "sunspec: SunSpec model chain broken at holding 40572 (after model 103 at 40070, length 500): exception 2 (illegal data address)"},
		{name: "model ID 0",
			set:     map[uint16]uint16{base + sim.SunSpecMPPT: 0},
			wantErr: "sunspec: SunSpec model chain broken at holding 40122 (after model 103 at 40070, length 50): model ID 0"},
		{name: "past 65535",
			set:     map[uint16]uint16{base + sim.SunSpecCommon + 1: 65000},
			wantErr: "sunspec: SunSpec model chain broken: model 1 at 40002, length 65000 runs past register 65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := sim.NewSunSpec(base, time.Hour)
			for addr, v := range tt.set {
				u.SetRegister(addr, v)
			}
			chain, err := walkChain(unitReader(u), base, time.Second)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || !errors.Is(err, errBrokenChain) {
					t.Fatalf("walkChain() = %v, %v, want error %s", chain, err, tt.wantErr)
				}
				return
			}
			var got []string
			for _, b := range chain {
				got = append(got, fmt.Sprintf("%d@%d+%d", b.ID, b.Addr, b.Len))
			}
			if err != nil || fmt.Sprint(got) != tt.want {
				t.Fatalf("walkChain() = %v, %v, want %s", got, err, tt.want)
			}
		})
	}
}

func TestSunSpecCommon(t *testing.T) {
	u := sim.NewSunSpec(0, time.Hour)
	got, err := readCommon(unitReader(u), ssBlock{ID: 1, Addr: sim.SunSpecCommon, Len: 66})
	want := ssIdentity{Manufacturer: "osapgw", Model: "devsim-sunspec", Version: "1.2.3", Serial: "SIM-0001"}
	if err != nil || got != want {
		t.Fatalf("readCommon() = %+v, %v, want %+v", got, err, want)
	}
}

// names lists the attributes of each resource of m, with their classes.
func resourceNames(m model.Device) map[string][]string {
	out := map[string][]string{}
	for _, r := range m.Resources {
		key := r.Name + " " + r.Class
		for _, a := range r.Areas {
			for _, at := range a.Attributes {
				out[key] = append(out[key], at.Name)
			}
		}
	}
	return out
}

// TestSunSpecLayout maps chains to models: which resources, which
// attributes, and that each resource implements its class.
func TestSunSpecLayout(t *testing.T) {
	lim := Limits{MaxGap: DefaultMaxGap, MaxRegisters: DefaultMaxRegisters, MaxBits: DefaultMaxBits}
	inv3 := []string{"current_ac", "current_ac_l1", "current_ac_l2", "current_ac_l3", "voltage_ac_l1", "voltage_ac_l2", "voltage_ac_l3",
		"power_ac", "frequency", "power_factor", "energy_total", "current_dc", "voltage_dc", "power_dc", "temperature", "operating_state"}
	meter3 := []string{"current_l1", "current_l2", "current_l3", "voltage_l1", "voltage_l2", "voltage_l3", "voltage_l1_l2", "voltage_l2_l3", "voltage_l3_l1",
		"frequency", "power_active", "power_active_l1", "power_active_l2", "power_active_l3", "power_apparent", "power_reactive", "power_factor",
		"energy_active_export", "energy_active_import"}
	module := func(k int) []string {
		return []string{fmt.Sprintf("module_%d_current_dc", k), fmt.Sprintf("module_%d_voltage_dc", k), fmt.Sprintf("module_%d_power_dc", k), fmt.Sprintf("module_%d_energy_dc", k)}
	}
	tests := []struct {
		name    string
		chain   []ssBlock
		want    map[string][]string
		wantErr string
	}{
		{
			name:  "the simulator's",
			chain: []ssBlock{{1, 2, 66}, {103, 70, 50}, {160, 122, 48}, {203, 172, 105}},
			want: map[string][]string{
				"main pv-inverter/1":   append(slices.Clone(inv3), append(module(1), module(2)...)...),
				"meter energy-meter/1": meter3,
			},
		},
		{
			name:  "single phase, float",
			chain: []ssBlock{{1, 2, 66}, {111, 70, 60}},
			want: map[string][]string{"main pv-inverter/1": {"current_ac", "current_ac_l1", "voltage_ac_l1", "power_ac", "frequency", "power_factor",
				"energy_total", "current_dc", "voltage_dc", "power_dc", "temperature", "operating_state"}},
		},
		{
			name:  "a meter alone is main; a delta meter has no phase voltages",
			chain: []ssBlock{{204, 2, 105}, {201, 109, 105}},
			want: map[string][]string{
				"main energy-meter/1": {"current_l1", "current_l2", "current_l3", "voltage_l1_l2", "voltage_l2_l3", "voltage_l3_l1",
					"frequency", "power_active", "power_active_l1", "power_active_l2", "power_active_l3", "power_apparent", "power_reactive",
					"power_factor", "energy_active_export", "energy_active_import"},
				"meter_2 energy-meter/1": {"current_l1", "voltage_l1", "frequency", "power_active", "power_active_l1", "power_apparent",
					"power_reactive", "power_factor", "energy_active_export", "energy_active_import"},
			},
		},
		{
			name:  "two inverters, modules numbered per inverter",
			chain: []ssBlock{{102, 2, 50}, {160, 54, 28}, {101, 84, 50}, {160, 136, 48}},
			want: map[string][]string{
				"main pv-inverter/1": {"current_ac", "current_ac_l1", "current_ac_l2", "voltage_ac_l1", "voltage_ac_l2", "power_ac", "frequency",
					"power_factor", "energy_total", "current_dc", "voltage_dc", "power_dc", "temperature", "operating_state",
					"module_1_current_dc", "module_1_voltage_dc", "module_1_power_dc", "module_1_energy_dc"},
				"inverter_2 pv-inverter/1": append([]string{"current_ac", "current_ac_l1", "voltage_ac_l1", "power_ac", "frequency",
					"power_factor", "energy_total", "current_dc", "voltage_dc", "power_dc", "temperature", "operating_state"}, append(module(1), module(2)...)...),
			},
		},
		{
			name:  "a short model keeps the points within its length",
			chain: []ssBlock{{103, 2, 27}},
			want: map[string][]string{"main pv-inverter/1": {"current_ac", "current_ac_l1", "current_ac_l2", "current_ac_l3",
				"voltage_ac_l1", "voltage_ac_l2", "voltage_ac_l3", "power_ac", "frequency", "power_factor", "energy_total", "current_dc"}},
		},
		{
			name:    "nothing osapgw maps",
			chain:   []ssBlock{{1, 2, 66}, {701, 70, 153}},
			wantErr: "sunspec: the chain at holding 0 holds models 1, 701: none that osapgw maps (101-103, 111-113, 160, 201-204)",
		},
		{
			name:    "an inverter too short for its class",
			chain:   []ssBlock{{103, 2, 20}},
			wantErr: `sunspec: resource "main": class "pv-inverter/1": attribute "energy_total": missing (required, float in "kWh"): does not implement its class`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := layoutSunSpec("inv", 0, tt.chain, ssIdentity{}, lim)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("layoutSunSpec() = %v, want error %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := resourceNames(l.model); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("resources = %v\nwant %v", got, tt.want)
			}
			for i := range l.model.Resources {
				r := &l.model.Resources[i]
				if r.Class == "" {
					t.Errorf("resource %q has no class", r.Name)
				}
				if err := classes.Check(r); err != nil {
					t.Errorf("classes.Check(%q) = %v", r.Name, err)
				}
			}
			for _, at := range l.attrs {
				if got, ok := l.model.Resources[slices.IndexFunc(l.model.Resources, func(r model.Resource) bool { return r.Name == at.resource })].Attribute(at.m.Name); !ok || got != *at.m {
					t.Errorf("attribute %q does not point into its resource %q", at.m.Name, at.resource)
				}
			}
		})
	}
}

// TestSunSpecReads checks the reads of a poll: every register a point or
// its scale factor needs is read, no read exceeds max_registers, and
// blocks are read in few requests.
func TestSunSpecReads(t *testing.T) {
	chain := []ssBlock{{1, 40002, 66}, {103, 40070, 50}, {160, 40122, 48}, {203, 40172, 105}}
	for _, tt := range []struct {
		max, maxGap, want int
	}{
		{max: 125, maxGap: 8, want: 3},
		{max: 125, maxGap: 20, want: 2},
		{max: 40, maxGap: 8, want: 5},
		{max: 10, maxGap: 0, want: 15},
	} {
		t.Run(fmt.Sprintf("max %d gap %d", tt.max, tt.maxGap), func(t *testing.T) {
			l, err := layoutSunSpec("inv", 40000, chain, ssIdentity{}, Limits{MaxGap: tt.maxGap, MaxRegisters: tt.max})
			if err != nil {
				t.Fatal(err)
			}
			read := map[int]bool{}
			for _, r := range l.reads {
				if int(r.Count) > tt.max || r.Table != Holding {
					t.Errorf("read %v: more than %d registers", r, tt.max)
				}
				for a := int(r.Address); a < int(r.Address)+int(r.Count); a++ {
					read[a] = true
				}
			}
			for _, at := range l.attrs {
				for a := int(at.addr); a < int(at.addr)+at.typ.registers(); a++ {
					if !read[a] {
						t.Errorf("attribute %q: register %d not read", at.m.Name, a)
					}
				}
				if at.sfAddr >= 0 && !read[at.sfAddr] {
					t.Errorf("attribute %q: scale factor %s at %d not read", at.m.Name, at.sfName, at.sfAddr)
				}
			}
			if len(l.reads) != tt.want {
				t.Errorf("%d reads, want %d: %v", len(l.reads), tt.want, l.reads)
			}
		})
	}
}

func TestSunSpecConfig(t *testing.T) {
	tests := []struct {
		name, conf, wantErr string
	}{
		{name: "link only", conf: "url = \"tcp://127.0.0.1:502\"\nunit = 1\nprofile = \"sunspec\"\npoll = \"10s\"\n"},
		{name: "points", conf: "url = \"tcp://127.0.0.1:502\"\nunit = 1\nprofile = \"sunspec\"\n[[attribute]]\nname = \"x\"\ntable = \"holding\"\naddress = 1\n",
			wantErr: `device "inv": attribute: not with profile = "sunspec": the device's SunSpec models give its points`},
		{name: "point defaults", conf: "url = \"tcp://127.0.0.1:502\"\nunit = 1\nprofile = \"sunspec\"\norder = \"CDAB\"\n",
			wantErr: `device "inv": order: not with profile = "sunspec": the device's SunSpec models give its points`},
		{name: "bad link", conf: "url = \"tcp://127.0.0.1:502\"\nunit = 1\nprofile = \"sunspec\"\ntimeout = \"-1s\"\n",
			wantErr: `timeout: -1s is negative`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := New("inv", adaptersTOML(tt.conf), adapters.Env{})
			if tt.wantErr == "" {
				if err != nil || a.ss == nil || a.ss.poll != 10*time.Second {
					t.Fatalf("New() = %v, want a SunSpec adapter polling every 10s", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New() = %v, want an error with %q", err, tt.wantErr)
			}
		})
	}
}
