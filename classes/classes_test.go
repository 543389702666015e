package classes

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/osapgw/osapgw/model"
)

// meter is a resource that implements energy-meter/1 with two extra names.
func meter() model.Resource {
	return model.Resource{Name: "main", Class: "energy-meter/1", Areas: []model.Area{{
		Name: "data",
		Attributes: []model.Attribute{
			{Name: "power_active", Type: model.TypeFloat, Unit: "W"},
			{Name: "energy_active_import", Type: model.TypeFloat, Unit: "kWh"},
			{Name: "voltage_l1", Type: model.TypeFloat, Unit: "V"},
			{Name: "serial_number", Type: model.TypeInt},
		},
		Operations: []model.Operation{{Name: "energy.reset"}},
		Events:     []model.EventType{{Name: "voltage_high", Params: []model.Param{{Name: "value", Type: model.TypeFloat, Unit: "V"}}}},
	}}}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(r *model.Resource)
		wantErr []string // substrings, one per problem; none: conforms
	}{
		{name: "conforms", edit: func(*model.Resource) {}},
		{name: "no class", edit: func(r *model.Resource) { r.Class = ""; r.Areas = nil }},
		{name: "unknown class", edit: func(r *model.Resource) { r.Class = "energy-meter/9" },
			wantErr: []string{`class "energy-meter/9": unknown class (known: energy-meter/1, environment-sensor/1, ip-camera/1, pv-inverter/1)`}},
		{name: "required missing", edit: func(r *model.Resource) { r.Areas[0].Attributes = r.Areas[0].Attributes[1:] },
			wantErr: []string{`class "energy-meter/1": attribute "power_active": missing (required, float in "W")`}},
		{name: "wrong unit", edit: func(r *model.Resource) { r.Areas[0].Attributes[2].Unit = "kV" },
			wantErr: []string{`class "energy-meter/1": attribute "voltage_l1": float in "kV", want float in "V"`}},
		{name: "wrong type and unit lost", edit: func(r *model.Resource) {
			r.Areas[0].Attributes[1] = model.Attribute{Name: "energy_active_import", Type: model.TypeInt}
		}, wantErr: []string{`attribute "energy_active_import": int with no unit, want float in "kWh"`}},
		{name: "operation with a required input", edit: func(r *model.Resource) {
			r.Areas[0].Operations[0].Inputs = []model.Param{{Name: "which", Type: model.TypeInt, Required: true}}
		}, wantErr: []string{`operation "energy.reset": input "which": required, but the class has no such input`}},
		{name: "two problems", edit: func(r *model.Resource) {
			r.Areas[0].Attributes[0].Unit = "kW"
			r.Areas[0].Attributes[2].Type = model.TypeString
		}, wantErr: []string{`"power_active": float in "kW", want float in "W"`, `"voltage_l1": string in "V", want float in "V"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := meter()
			tt.edit(&r)
			err := Check(&r)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check = nil, want %q", tt.wantErr)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.wantErr) {
				t.Errorf("Check = %d problems:\n%v\nwant %d", len(lines), err, len(tt.wantErr))
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Check = %v, want it to contain %q", err, w)
				}
			}
			if !errors.Is(err, ErrUnknown) && !errors.Is(err, ErrNotConforming) {
				t.Errorf("Check = %v, wraps neither ErrUnknown nor ErrNotConforming", err)
			}
		})
	}
}

func TestEventParams(t *testing.T) {
	r := model.Resource{Name: "main", Class: "environment-sensor/1", Areas: []model.Area{{
		Name:       "data",
		Attributes: []model.Attribute{{Name: "temperature", Type: model.TypeFloat, Unit: "°C"}},
		Events: []model.EventType{
			// What the Modbus adapter declares for a threshold on temperature.
			{Name: "temperature_high", Params: []model.Param{{Name: "value", Type: model.TypeFloat, Unit: "°C"}, {Name: "active", Type: model.TypeBool}}},
			// A threshold on the wrong attribute, and an on_change rule.
			{Name: "humidity_high", Params: []model.Param{{Name: "value", Type: model.TypeFloat, Unit: "°C"}, {Name: "active", Type: model.TypeBool}}},
			{Name: "temperature_low", Params: []model.Param{{Name: "value", Type: model.TypeFloat, Unit: "°C"}}},
		},
	}}}
	err := Check(&r)
	want := []string{
		`class "environment-sensor/1": event "temperature_low": parameter "active": missing, want bool with no unit: does not implement its class`,
		`class "environment-sensor/1": event "humidity_high": parameter "value": float in "°C", want float in "%": does not implement its class`,
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Errorf("Check = %v, want\n%s", err, strings.Join(want, "\n"))
	}
}

func TestDefinitions(t *testing.T) {
	if !slices.IsSorted(IDs()) {
		t.Errorf("IDs() = %v, want sorted", IDs())
	}
	for _, c := range All() {
		if c2, ok := Lookup(c.ID); !ok || c2 != c {
			t.Errorf("Lookup(%q) = %v, %v", c.ID, c2, ok)
		}
		// A class's own model, made of all its names, must conform and
		// validate: names unique, types known.
		r := c.Resource("main")
		if err := c.Check(&r); err != nil {
			t.Errorf("%s: own model: %v", c.ID, err)
		}
		d := model.Device{ID: "x", Resources: []model.Resource{r}}
		if err := d.Validate(); err != nil {
			t.Errorf("%s: %v", c.ID, err)
		}
		req := 0
		for _, a := range c.Attributes {
			if a.Required {
				req++
			}
		}
		if req == 0 {
			t.Errorf("%s: no required attribute", c.ID)
		}
	}
}

func TestEnergyMeterNames(t *testing.T) {
	// Profiles are written against these exact names: never rename one.
	want := "voltage_l1 voltage_l2 voltage_l3 voltage_l1_l2 voltage_l2_l3 voltage_l3_l1 current_l1 current_l2 current_l3 current_n " +
		"power_active power_active_l1 power_active_l2 power_active_l3 power_reactive power_apparent power_factor frequency " +
		"energy_active_import energy_active_export energy_reactive_import energy_reactive_export"
	var got []string
	for _, a := range EnergyMeter.Attributes {
		got = append(got, a.Name)
	}
	if strings.Join(got, " ") != want {
		t.Errorf("energy-meter/1 attributes = %s, want %s", strings.Join(got, " "), want)
	}
}
