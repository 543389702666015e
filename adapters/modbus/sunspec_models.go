package modbus

import (
	"fmt"
	"strings"
)

// The SunSpec models osapgw maps, and how.
//
// Source of the facts (point names, offsets from the model's ID register,
// types, scale factor points, units): the SunSpec Alliance's model
// definitions, github.com/sunspec/models, json/model_1.json,
// model_101.json, model_102.json, model_103.json, model_111.json,
// model_112.json, model_113.json, model_160.json, model_201.json,
// model_202.json, model_203.json and model_204.json at commit
// 7abdf8982d5364f8ae916deee18aac86c11be36d (Apache-2.0). Only the points
// mapped here are listed; the offsets of one family (101-103, 111-113,
// 201-204) are the same in each of its models. What each point becomes
// (attribute, class unit, power of ten) is osapgw's.

// ssType is the type of a SunSpec point, as the model definitions name it.
type ssType uint8

const (
	ssInt16 ssType = iota + 1
	ssUint16
	ssEnum16
	ssCount
	ssAcc32
	ssUint32
	ssInt32
	ssFloat32
	ssSunssf
	ssString
)

func (t ssType) String() string {
	return [...]string{"", "int16", "uint16", "enum16", "count", "acc32", "uint32", "int32", "float32", "sunssf", "string"}[t]
}

// registers returns the size of a point of type t, strings aside.
func (t ssType) registers() int {
	switch t {
	case ssAcc32, ssUint32, ssInt32, ssFloat32:
		return 2
	}
	return 1
}

// ssPoint is one point of a SunSpec model that osapgw maps, and the
// attribute it becomes.
type ssPoint struct {
	name   string // SunSpec point name
	offset int    // registers from the model's ID register
	typ    ssType
	sf     string // its scale factor point, or ""
	attr   string // the attribute
	unit   string // the attribute's unit (the class's)
	// exp is the power of ten from the SunSpec unit to unit: -3 from Wh
	// to kWh, -2 from Pct to a factor, 0 where they agree.
	exp int
}

// ssKind is what a model describes, which decides its resource.
type ssKind uint8

const (
	ssCommon ssKind = iota + 1
	ssInverter
	ssMPPT
	ssMeter
)

// ssModel is a SunSpec model osapgw maps.
type ssModel struct {
	id     uint16
	label  string
	kind   ssKind
	points []ssPoint
	// sfs are the offsets of its scale factor points.
	sfs map[string]int
}

// sunspecModels are the models osapgw maps, by ID.
var sunspecModels = map[uint16]*ssModel{}

func init() {
	for _, m := range []*ssModel{
		inverterInt(101, "single-phase inverter", 1),
		inverterInt(102, "split-phase inverter", 2),
		inverterInt(103, "three-phase inverter", 3),
		inverterFloat(111, "single-phase inverter (float)", 1),
		inverterFloat(112, "split-phase inverter (float)", 2),
		inverterFloat(113, "three-phase inverter (float)", 3),
		meter(201, "single-phase meter", 1, true),
		meter(202, "split-phase meter", 2, true),
		meter(203, "three-phase wye meter", 3, true),
		meter(204, "three-phase delta meter", 3, false),
		{id: 160, label: "MPPT extension", kind: ssMPPT,
			sfs: map[string]int{"DCA_SF": 2, "DCV_SF": 3, "DCW_SF": 4, "DCWH_SF": 5}},
	} {
		sunspecModels[m.id] = m
	}
}

// Model 1, common: the strings that name the device.
const (
	ssCommonMn  = 2  // manufacturer, string of 16 registers
	ssCommonMd  = 18 // model, 16
	ssCommonVr  = 42 // version, 8
	ssCommonSN  = 50 // serial number, 16
	ssCommonLen = 66 // L of model 1 (65 without its pad)
)

// Model 160, MPPT: a fixed part of 10 registers (ID and L included), then
// N modules of 20 registers each.
const (
	ssMPPTFixed  = 10
	ssMPPTModule = 20
)

// mpptModule returns the points of the k-th module (from 0) of a model
// 160, as attributes module_NUM_*.
func mpptModule(num, k int) []ssPoint {
	at := ssMPPTFixed + ssMPPTModule*k
	name := func(s string) string { return fmt.Sprintf("module_%d_%s", num, s) }
	return []ssPoint{
		{name: "DCA", offset: at + 9, typ: ssUint16, sf: "DCA_SF", attr: name("current_dc"), unit: "A"},
		{name: "DCV", offset: at + 10, typ: ssUint16, sf: "DCV_SF", attr: name("voltage_dc"), unit: "V"},
		{name: "DCW", offset: at + 11, typ: ssUint16, sf: "DCW_SF", attr: name("power_dc"), unit: "W"},
		{name: "DCWH", offset: at + 12, typ: ssAcc32, sf: "DCWH_SF", attr: name("energy_dc"), unit: "kWh", exp: -3},
	}
}

// inverterInt is model 101, 102 or 103: integers with scale factors.
func inverterInt(id uint16, label string, phases int) *ssModel {
	p := []ssPoint{
		{name: "A", offset: 2, typ: ssUint16, sf: "A_SF", attr: "current_ac", unit: "A"},
		{name: "AphA", offset: 3, typ: ssUint16, sf: "A_SF", attr: "current_ac_l1", unit: "A"},
		{name: "AphB", offset: 4, typ: ssUint16, sf: "A_SF", attr: "current_ac_l2", unit: "A"},
		{name: "AphC", offset: 5, typ: ssUint16, sf: "A_SF", attr: "current_ac_l3", unit: "A"},
		{name: "PhVphA", offset: 10, typ: ssUint16, sf: "V_SF", attr: "voltage_ac_l1", unit: "V"},
		{name: "PhVphB", offset: 11, typ: ssUint16, sf: "V_SF", attr: "voltage_ac_l2", unit: "V"},
		{name: "PhVphC", offset: 12, typ: ssUint16, sf: "V_SF", attr: "voltage_ac_l3", unit: "V"},
		{name: "W", offset: 14, typ: ssInt16, sf: "W_SF", attr: "power_ac", unit: "W"},
		{name: "Hz", offset: 16, typ: ssUint16, sf: "Hz_SF", attr: "frequency", unit: "Hz"},
		{name: "PF", offset: 22, typ: ssInt16, sf: "PF_SF", attr: "power_factor", exp: -2},
		{name: "WH", offset: 24, typ: ssAcc32, sf: "WH_SF", attr: "energy_total", unit: "kWh", exp: -3},
		{name: "DCA", offset: 27, typ: ssUint16, sf: "DCA_SF", attr: "current_dc", unit: "A"},
		{name: "DCV", offset: 29, typ: ssUint16, sf: "DCV_SF", attr: "voltage_dc", unit: "V"},
		{name: "DCW", offset: 31, typ: ssInt16, sf: "DCW_SF", attr: "power_dc", unit: "W"},
		{name: "TmpCab", offset: 33, typ: ssInt16, sf: "Tmp_SF", attr: "temperature", unit: "°C"},
		{name: "St", offset: 38, typ: ssEnum16, attr: "operating_state"},
	}
	return &ssModel{id: id, label: label, kind: ssInverter, points: phased(p, phases),
		sfs: map[string]int{"A_SF": 6, "V_SF": 13, "W_SF": 15, "Hz_SF": 17, "PF_SF": 23, "WH_SF": 26,
			"DCA_SF": 28, "DCV_SF": 30, "DCW_SF": 32, "Tmp_SF": 37}}
}

// inverterFloat is model 111, 112 or 113: float32 values, no scale factors.
func inverterFloat(id uint16, label string, phases int) *ssModel {
	p := []ssPoint{
		{name: "A", offset: 2, typ: ssFloat32, attr: "current_ac", unit: "A"},
		{name: "AphA", offset: 4, typ: ssFloat32, attr: "current_ac_l1", unit: "A"},
		{name: "AphB", offset: 6, typ: ssFloat32, attr: "current_ac_l2", unit: "A"},
		{name: "AphC", offset: 8, typ: ssFloat32, attr: "current_ac_l3", unit: "A"},
		{name: "PhVphA", offset: 16, typ: ssFloat32, attr: "voltage_ac_l1", unit: "V"},
		{name: "PhVphB", offset: 18, typ: ssFloat32, attr: "voltage_ac_l2", unit: "V"},
		{name: "PhVphC", offset: 20, typ: ssFloat32, attr: "voltage_ac_l3", unit: "V"},
		{name: "W", offset: 22, typ: ssFloat32, attr: "power_ac", unit: "W"},
		{name: "Hz", offset: 24, typ: ssFloat32, attr: "frequency", unit: "Hz"},
		{name: "PF", offset: 30, typ: ssFloat32, attr: "power_factor", exp: -2},
		{name: "WH", offset: 32, typ: ssFloat32, attr: "energy_total", unit: "kWh", exp: -3},
		{name: "DCA", offset: 34, typ: ssFloat32, attr: "current_dc", unit: "A"},
		{name: "DCV", offset: 36, typ: ssFloat32, attr: "voltage_dc", unit: "V"},
		{name: "DCW", offset: 38, typ: ssFloat32, attr: "power_dc", unit: "W"},
		{name: "TmpCab", offset: 40, typ: ssFloat32, attr: "temperature", unit: "°C"},
		{name: "St", offset: 48, typ: ssEnum16, attr: "operating_state"},
	}
	return &ssModel{id: id, label: label, kind: ssInverter, points: phased(p, phases)}
}

// meter is model 201, 202, 203 or 204. wye: the meter has a neutral, so
// phase-to-neutral voltages (204, delta, has none).
func meter(id uint16, label string, phases int, wye bool) *ssModel {
	// 201 and 202 call the line-to-line voltages PPVphAB..; 203 and 204
	// PhVphAB..: the same offsets.
	ll := "PhVph"
	if id < 203 {
		ll = "PPVph"
	}
	p := []ssPoint{
		{name: "AphA", offset: 3, typ: ssInt16, sf: "A_SF", attr: "current_l1", unit: "A"},
		{name: "AphB", offset: 4, typ: ssInt16, sf: "A_SF", attr: "current_l2", unit: "A"},
		{name: "AphC", offset: 5, typ: ssInt16, sf: "A_SF", attr: "current_l3", unit: "A"},
	}
	if wye {
		p = append(p,
			ssPoint{name: "PhVphA", offset: 8, typ: ssInt16, sf: "V_SF", attr: "voltage_l1", unit: "V"},
			ssPoint{name: "PhVphB", offset: 9, typ: ssInt16, sf: "V_SF", attr: "voltage_l2", unit: "V"},
			ssPoint{name: "PhVphC", offset: 10, typ: ssInt16, sf: "V_SF", attr: "voltage_l3", unit: "V"})
	}
	if phases > 1 {
		p = append(p, ssPoint{name: ll + "AB", offset: 12, typ: ssInt16, sf: "V_SF", attr: "voltage_l1_l2", unit: "V"})
	}
	if phases > 2 {
		p = append(p,
			ssPoint{name: ll + "BC", offset: 13, typ: ssInt16, sf: "V_SF", attr: "voltage_l2_l3", unit: "V"},
			ssPoint{name: ll + "CA", offset: 14, typ: ssInt16, sf: "V_SF", attr: "voltage_l3_l1", unit: "V"})
	}
	p = append(p,
		ssPoint{name: "Hz", offset: 16, typ: ssInt16, sf: "Hz_SF", attr: "frequency", unit: "Hz"},
		ssPoint{name: "W", offset: 18, typ: ssInt16, sf: "W_SF", attr: "power_active", unit: "W"},
		ssPoint{name: "WphA", offset: 19, typ: ssInt16, sf: "W_SF", attr: "power_active_l1", unit: "W"},
		ssPoint{name: "WphB", offset: 20, typ: ssInt16, sf: "W_SF", attr: "power_active_l2", unit: "W"},
		ssPoint{name: "WphC", offset: 21, typ: ssInt16, sf: "W_SF", attr: "power_active_l3", unit: "W"},
		ssPoint{name: "VA", offset: 23, typ: ssInt16, sf: "VA_SF", attr: "power_apparent", unit: "VA"},
		ssPoint{name: "VAR", offset: 28, typ: ssInt16, sf: "VAR_SF", attr: "power_reactive", unit: "var"},
		ssPoint{name: "PF", offset: 33, typ: ssInt16, sf: "PF_SF", attr: "power_factor", exp: -2},
		ssPoint{name: "TotWhExp", offset: 38, typ: ssAcc32, sf: "TotWh_SF", attr: "energy_active_export", unit: "kWh", exp: -3},
		ssPoint{name: "TotWhImp", offset: 46, typ: ssAcc32, sf: "TotWh_SF", attr: "energy_active_import", unit: "kWh", exp: -3},
	)
	return &ssModel{id: id, label: label, kind: ssMeter, points: phased(p, phases),
		sfs: map[string]int{"A_SF": 6, "V_SF": 15, "Hz_SF": 17, "W_SF": 22, "VA_SF": 27, "VAR_SF": 32, "PF_SF": 37, "TotWh_SF": 54}}
}

// phased drops the points of the phases a model does not have: those
// whose attribute ends in _l2 (_l3) when it has one phase (two).
func phased(p []ssPoint, phases int) []ssPoint {
	out := p[:0:0]
	for _, pt := range p {
		end := func(s string) bool { return strings.HasSuffix(pt.attr, s) }
		if phases < 2 && (end("_l2") || end("_l1_l2")) || phases < 3 && (end("_l3") || end("_l3_l1")) {
			continue
		}
		out = append(out, pt)
	}
	return out
}
