package profile

import (
	"hash/fnv"
	"math"
	"regexp"
	"strings"

	"github.com/osapgw/osapgw/adapters/modbus"
	"github.com/osapgw/osapgw/profiles"
)

// state is the electrical and climatic state of a device at one tick,
// which its points read from.
type state struct {
	tick        int64
	v, i, pf    [3]float64 // phase to neutral voltage (V), current (A), power factor
	freq        float64    // Hz
	temp, humid float64    // °C, %
	co2         float64    // ppm
}

func wave(t, period, phase float64) float64 { return math.Sin(2*math.Pi*t/period + phase) }

// state returns the state at tick.
func (d *Device) state(tick int64) *state {
	t := float64(tick)
	s := &state{tick: tick}
	for k := range 3 {
		ph := float64(k) * 2 * math.Pi / 3
		// A swing common to the phases and one of each phase's own, so
		// that totals and averages change too.
		s.v[k] = 230 + 2*wave(t, 200, 0) + 2*wave(t, 60, ph)
		s.i[k] = 9 + 3*wave(t, 170, 0) + 4*wave(t, 45, ph)
		s.pf[k] = 0.9 + 0.04*wave(t, 230, 0) + 0.04*wave(t, 75, ph)
	}
	s.freq = 50 + 0.05*wave(t, 30, 0)
	s.temp = 22.5 + 7.5*wave(t, 120, 0)
	s.humid = 50 + 20*wave(t, 90, 1)
	s.co2 = 800 + 400*wave(t, 150, 2)
	return s
}

// power returns active, apparent and reactive power of phase k.
func (s *state) power(k int) (p, va, q float64) {
	va = s.v[k] * s.i[k]
	p = va * s.pf[k]
	return p, va, math.Sqrt(va*va - p*p)
}

var (
	phaseSuffix = regexp.MustCompile(`_l([123])(?:_|$)`)
	lineToLine  = regexp.MustCompile(`_l[123]_l[123](?:_|$)|_ll(?:_|$)`)
)

// generator returns the function giving the value of a point, from its
// name, unit and encoding (see the package's documentation).
func generator(name, unit string, codec modbus.Codec, table modbus.Table, phases int, unitID byte, p *profiles.Profile) func(*state) any {
	n := strings.ToLower(name)
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(n, s) {
				return true
			}
		}
		return false
	}
	phase := -1 // all phases: a total
	if m := phaseSuffix.FindStringSubmatch(n); m != nil {
		phase = int(m[1][0] - '1')
	}
	if phase >= phases {
		phase = phases - 1
	}
	avg := strings.HasSuffix(n, "_avg")
	dc := has("_dc", "dc_")
	// each sums a phase quantity over the device's phases, or gives the
	// point's phase, or the average.
	each := func(f func(s *state, k int) float64) func(*state) any {
		return func(s *state) any {
			if phase >= 0 {
				return f(s, phase)
			}
			sum := 0.0
			for k := range phases {
				sum += f(s, k)
			}
			if avg {
				return sum / float64(phases)
			}
			return sum
		}
	}
	constant := func(v any) func(*state) any { return func(*state) any { return v } }

	switch codec.Type {
	case modbus.Bool:
		switch {
		case has("enable", "power_ok", "running"):
			return constant(true)
		case has("alarm", "fault", "error", "heater", "buzzer", "led"), table == modbus.Coil:
			return constant(false)
		}
		return func(s *state) any { return s.tick/7%2 == 1 }
	case modbus.String:
		text := p.Model
		if len(text) > 2*codec.Length {
			text = text[:2*codec.Length]
		}
		return constant(text)
	}

	switch unit {
	case "V":
		switch {
		case dc:
			return func(s *state) any { return 600 + 30*wave(float64(s.tick), 100, 0) }
		case lineToLine.MatchString(n):
			k := max(phase, 0)
			return func(s *state) any { return (s.v[k] + s.v[(k+1)%3]) / 2 * math.Sqrt(3) }
		}
		if phase < 0 {
			avg = true // a voltage of no phase is the phases' average
		}
		return each(func(s *state, k int) float64 { return s.v[k] })
	case "A":
		switch {
		case dc:
			return func(s *state) any { return acPower(s, phases) / 0.97 / (600 + 30*wave(float64(s.tick), 100, 0)) }
		case strings.HasSuffix(n, "_n"):
			return func(s *state) any { return 0.5 + 0.3*wave(float64(s.tick), 40, 0) }
		}
		return each(func(s *state, k int) float64 { return s.i[k] })
	case "W", "kW":
		scale := 1.0
		if unit == "kW" {
			scale = 0.001
		}
		if dc {
			return func(s *state) any { return acPower(s, phases) / 0.97 * scale }
		}
		return each(func(s *state, k int) float64 { p, _, _ := s.power(k); return p * scale })
	case "VA":
		return each(func(s *state, k int) float64 { _, va, _ := s.power(k); return va })
	case "var":
		return each(func(s *state, k int) float64 { _, _, q := s.power(k); return q })
	case "Hz":
		return func(s *state) any { return s.freq }
	case "kWh", "kvarh", "Wh", "varh":
		return counter(n, unit, phase)
	case "°C":
		switch {
		case has("correction", "offset"):
			return constant(0.0)
		case has("dew"):
			return func(s *state) any { return dewPoint(s.temp, s.humid) }
		}
		return func(s *state) any { return s.temp }
	case "%":
		if has("humid", "rh") {
			if has("correction", "offset") {
				return constant(0.0)
			}
			return func(s *state) any { return s.humid }
		}
		return func(s *state) any { return 5 + 3*wave(float64(s.tick), 50, float64(max(phase, 0))) }
	case "°":
		k := max(phase, 0)
		return func(s *state) any { return math.Acos(s.pf[k]) * 180 / math.Pi }
	case "ppm":
		return func(s *state) any { return s.co2 }
	case "ppb":
		return func(s *state) any { return 175 + 125*wave(float64(s.tick), 110, 0) }
	case "lx":
		return func(s *state) any { return 300 + 250*wave(float64(s.tick), 200, 0) }
	case "dB":
		return func(s *state) any { return 45 + 10*wave(float64(s.tick), 20, 0) }
	case "hPa", "mbar":
		return func(s *state) any { return 1013 + 10*wave(float64(s.tick), 300, 0) }
	case "s":
		return constant(2.0)
	case "m":
		return constant(0.0)
	}
	if has("power_factor", "cos_phi", "cosphi") || n == "pf" {
		avg = true // a total power factor is the phases' average
		return each(func(s *state, k int) float64 { return s.pf[k] })
	}
	switch {
	case n == "operating_state" || n == "state":
		return constant(4.0) // SunSpec St 4: MPPT
	case has("baud"):
		return constant(9600.0)
	case has("modbus_unit", "unit_id", "slave_id"):
		return constant(float64(unitID))
	case has("motion", "level"):
		return func(s *state) any { return float64(s.tick / 5 % 3 * 20) }
	}
	return constant(0.0)
}

// acPower is the active power of all phases.
func acPower(s *state, phases int) float64 {
	sum := 0.0
	for k := range phases {
		p, _, _ := s.power(k)
		sum += p
	}
	return sum
}

// counter returns an energy counter that starts at a value of its own
// and grows every tick: 0.01 kWh (kvarh) a tick for a total, a third of
// that for a phase's, a tenth for an export.
func counter(name, unit string, phase int) func(*state) any {
	h := fnv.New32a()
	h.Write([]byte(name))
	start := 1000 + float64(h.Sum32()%9000)
	rate := 0.01
	switch {
	case strings.Contains(name, "_day"):
		start = float64(h.Sum32() % 20)
	case strings.Contains(name, "export"):
		start /= 10
		rate /= 10
	}
	if phase >= 0 {
		start /= 3
		rate /= 3
	}
	if unit == "Wh" || unit == "varh" {
		start *= 1000
		rate *= 1000
	}
	return func(s *state) any { return start + rate*float64(s.tick) }
}

// dewPoint is the dew point (°C) at temperature t (°C) and relative
// humidity rh (%), by the Magnus formula.
func dewPoint(t, rh float64) float64 {
	const b, c = 17.62, 243.12
	g := math.Log(rh/100) + b*t/(c+t)
	return c * g / (b - g)
}
