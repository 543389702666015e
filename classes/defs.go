package classes

import "github.com/osapgw/osapgw/model"

// The classes, sorted by ID. docs/profiles.md has a table per class; a
// test keeps the two alike.
var all = []*Class{EnergyMeter, EnvironmentSensor, IPCamera, PVInverter}

func float(name, unit, desc string) Attribute {
	return Attribute{Name: name, Type: model.TypeFloat, Unit: unit, Description: desc}
}

func required(a Attribute) Attribute { a.Required = true; return a }

// thresholdEvent is an event the Modbus adapter raises when an attribute
// crosses a threshold: value is the attribute's value, active whether the
// condition now holds.
func thresholdEvent(name, unit, desc string) Event {
	return Event{Name: name, Description: desc, Params: []model.Param{
		{Name: "value", Type: model.TypeFloat, Unit: unit},
		{Name: "active", Type: model.TypeBool},
	}}
}

// EnergyMeter is energy-meter/1: an electricity meter, single or three
// phase. Phase voltages are phase to neutral.
var EnergyMeter = &Class{
	ID:          "energy-meter/1",
	Description: "electricity meter, single or three phase",
	AppliesTo:   `the Modbus resource "main"`,
	Attributes: []Attribute{
		float("voltage_l1", "V", "voltage L1 to neutral"),
		float("voltage_l2", "V", "voltage L2 to neutral"),
		float("voltage_l3", "V", "voltage L3 to neutral"),
		float("voltage_l1_l2", "V", "voltage L1 to L2"),
		float("voltage_l2_l3", "V", "voltage L2 to L3"),
		float("voltage_l3_l1", "V", "voltage L3 to L1"),
		float("current_l1", "A", "current L1"),
		float("current_l2", "A", "current L2"),
		float("current_l3", "A", "current L3"),
		float("current_n", "A", "neutral current"),
		required(float("power_active", "W", "total active power; positive when importing")),
		float("power_active_l1", "W", "active power L1"),
		float("power_active_l2", "W", "active power L2"),
		float("power_active_l3", "W", "active power L3"),
		float("power_reactive", "var", "total reactive power"),
		float("power_apparent", "VA", "total apparent power"),
		float("power_factor", "", "total power factor, -1 to 1"),
		float("frequency", "Hz", "line frequency"),
		required(float("energy_active_import", "kWh", "active energy imported, total")),
		float("energy_active_export", "kWh", "active energy exported, total"),
		float("energy_reactive_import", "kvarh", "reactive energy imported, total"),
		float("energy_reactive_export", "kvarh", "reactive energy exported, total"),
	},
	Operations: []Operation{
		{Name: "energy.reset", Description: "reset the resettable energy counters (where the meter has them)"},
	},
}

// EnvironmentSensor is environment-sensor/1: a room or duct sensor.
var EnvironmentSensor = &Class{
	ID:          "environment-sensor/1",
	Description: "temperature, humidity and air quality sensor",
	AppliesTo:   `the Modbus resource "main"`,
	Attributes: []Attribute{
		required(float("temperature", "°C", "air temperature")),
		float("humidity", "%", "relative humidity"),
		float("dew_point", "°C", "dew point"),
		float("co2", "ppm", "CO2 concentration"),
		float("pressure", "hPa", "air pressure"),
		float("illuminance", "lx", "illuminance"),
	},
	Events: []Event{
		thresholdEvent("temperature_high", "°C", "temperature above its threshold"),
		thresholdEvent("temperature_low", "°C", "temperature below its threshold"),
		thresholdEvent("humidity_high", "%", "humidity above its threshold"),
	},
}

// PVInverter is pv-inverter/1: a photovoltaic inverter, single or three
// phase, as SunSpec's models 101-103 describe it.
var PVInverter = &Class{
	ID:          "pv-inverter/1",
	Description: "photovoltaic inverter, single or three phase",
	AppliesTo:   `the Modbus resource "main"`,
	Attributes: []Attribute{
		required(float("power_ac", "W", "AC active power")),
		required(float("energy_total", "kWh", "AC energy produced, lifetime")),
		float("voltage_ac_l1", "V", "AC voltage L1 to neutral"),
		float("voltage_ac_l2", "V", "AC voltage L2 to neutral"),
		float("voltage_ac_l3", "V", "AC voltage L3 to neutral"),
		float("current_ac", "A", "AC current, total"),
		float("current_ac_l1", "A", "AC current L1"),
		float("current_ac_l2", "A", "AC current L2"),
		float("current_ac_l3", "A", "AC current L3"),
		float("frequency", "Hz", "AC frequency"),
		float("power_dc", "W", "DC power"),
		float("voltage_dc", "V", "DC voltage"),
		float("current_dc", "A", "DC current"),
		float("temperature", "°C", "cabinet or heat sink temperature"),
		{Name: "operating_state", Type: model.TypeInt, Description: "SunSpec St: 1 off, 2 sleeping, 3 starting, 4 MPPT, 5 throttled, 6 shutting down, 7 fault, 8 standby"},
		float("power_factor", "", "power factor, -1 to 1"),
	},
}

// IPCamera is ip-camera/1: one video source of an IP camera (the ONVIF
// adapter's video/N resources, one per media profile).
var IPCamera = &Class{
	ID:          "ip-camera/1",
	Description: "video source of an IP camera",
	AppliesTo:   `the ONVIF resources "video/N"`,
	Attributes: []Attribute{
		{Name: "profile", Type: model.TypeString, Description: "media profile token"},
		{Name: "name", Type: model.TypeString, Description: "media profile name"},
		{Name: "stream_uri", Type: model.TypeString, Required: true, Description: "RTSP stream address"},
		{Name: "snapshot_uri", Type: model.TypeString, Description: "JPEG snapshot address"},
		{Name: "encoding", Type: model.TypeString, Description: "H264, H265, JPEG, ..."},
		{Name: "resolution", Type: model.TypeString, Description: "WIDTHxHEIGHT"},
		{Name: "width", Type: model.TypeInt, Unit: "px"},
		{Name: "height", Type: model.TypeInt, Unit: "px"},
		{Name: "quality", Type: model.TypeFloat, Description: "encoder quality, camera's scale"},
		{Name: "frame_rate", Type: model.TypeInt, Unit: "fps"},
		{Name: "bitrate", Type: model.TypeInt, Unit: "kbit/s"},
	},
	Events: []Event{
		{Name: "motion", Description: "motion detected", Params: []model.Param{{Name: "state", Type: model.TypeBool}}},
		{Name: "tamper", Description: "camera tampered with", Params: []model.Param{{Name: "state", Type: model.TypeBool}}},
		{Name: "video_loss", Description: "video signal lost", Params: []model.Param{{Name: "state", Type: model.TypeBool}}},
	},
	Operations: []Operation{
		{Name: "snapshot", Description: "take a JPEG snapshot", Outputs: []model.Param{
			{Name: "size", Type: model.TypeInt, Unit: "B"}, {Name: "sha256", Type: model.TypeString}}},
	},
}
