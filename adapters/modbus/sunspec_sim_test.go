package modbus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/classes"
	"github.com/osapgw/osapgw/model"
	sim "github.com/osapgw/osapgw/sim/modbus"
)

// simUnitsTCP serves units on 127.0.0.1 until the test ends.
func simUnitsTCP(t testing.TB, units map[byte]sim.Unit) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := sim.NewUnitServer(units)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeTCP(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sim ServeTCP() = %v", err)
		}
	})
	return "tcp://" + ln.Addr().String()
}

func sunspecConf(url string, extra string) string {
	return fmt.Sprintf(`url = %q
unit = 1
profile = "sunspec"
timeout = "300ms"
poll = "30ms"
skip_for = "200ms"
offline_after = 2
%s`, url, extra)
}

// TestSunSpecAgainstSim describes and polls the simulator's SunSpec
// inverter and meter over TCP, with reads small enough that points and
// their scale factors come in different reads.
func TestSunSpecAgainstSim(t *testing.T) {
	for _, tt := range []struct {
		base  uint16
		extra string
	}{
		{base: 40000},
		{base: 50000, extra: "max_registers = 10\nmax_gap = 0\n"},
		{base: 0, extra: "manufacturer = \"ACME\"\n"},
	} {
		t.Run(fmt.Sprint(tt.base), func(t *testing.T) {
			u := sim.NewSunSpec(tt.base, time.Hour)
			url := simUnitsTCP(t, map[byte]sim.Unit{1: u})
			a, err := New("pv-1", adaptersTOML(sunspecConf(url, tt.extra)), envForTest(t), WithPool(NewPool()))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			m, err := a.Describe(ctx)
			if err != nil {
				t.Fatalf("Describe() = %v", err)
			}
			manufacturer := "osapgw"
			if tt.extra != "" && strings.Contains(tt.extra, "ACME") {
				manufacturer = "ACME"
			}
			if m.Manufacturer != manufacturer || m.Model != "devsim-sunspec" || m.Firmware != "1.2.3" || m.Serial != "SIM-0001" || m.Kind != "modbus" || m.ID != "pv-1" {
				t.Errorf("Describe() = %s %q %q %q %q %q, want pv-1 modbus %q devsim-sunspec 1.2.3 SIM-0001", m.ID, m.Kind, m.Manufacturer, m.Model, m.Firmware, m.Serial, manufacturer)
			}
			for i := range m.Resources {
				if err := classes.Check(&m.Resources[i]); err != nil {
					t.Errorf("classes.Check(%q) = %v", m.Resources[i].Name, err)
				}
			}
			if err := m.Validate(); err != nil {
				t.Errorf("Validate() = %v", err)
			}

			rec := newRecorder()
			runAdapter(t, a, rec)
			waitFor(t, "online", func() bool { on, _ := rec.lastStatus(); return on })
			waitFor(t, "meter and modules", func() bool {
				_, ok1 := rec.value("meter", "energy_active_import")
				_, ok2 := rec.value("main", "module_2_energy_dc")
				return ok1 && ok2
			})
			checks := []struct {
				res, name string
				want      any
				err       string
			}{
				{"main", "power_ac", 3000.0, ""},
				{"main", "current_ac", 13.05, ""},
				{"main", "current_ac_l1", 4.35, ""},
				{"main", "voltage_ac_l1", 230.1, ""},
				{"main", "voltage_ac_l2", 230.5, ""},
				{"main", "voltage_ac_l3", 229.8, ""},
				{"main", "frequency", 50.0, ""},
				{"main", "energy_total", 12345.67, ""},
				{"main", "voltage_dc", 612.3, ""},
				{"main", "power_dc", 3090.0, ""},
				{"main", "temperature", 45.2, ""},
				{"main", "operating_state", int64(4), ""},
				{"main", "power_factor", nil, "not implemented"},
				{"main", "current_dc", nil, "not implemented"},
				{"main", "module_1_current_dc", 5.05, ""},
				{"main", "module_1_voltage_dc", 306.1, ""},
				{"main", "module_2_voltage_dc", 304.1, ""},
				{"main", "module_1_power_dc", 1545.0, ""},
				{"main", "module_1_energy_dc", 6000.0, ""},
				{"main", "module_2_energy_dc", 6001.0, ""},
				{"meter", "power_active", -2500.0, ""},
				{"meter", "power_active_l3", -834.0, ""},
				{"meter", "current_l1", 3.62, ""},
				{"meter", "voltage_l3", 229.9, ""},
				{"meter", "voltage_l1_l2", 399.0, ""},
				{"meter", "frequency", 49.99, ""},
				{"meter", "power_reactive", -150.0, ""},
				{"meter", "power_factor", -0.98, ""},
				{"meter", "energy_active_import", 4500.0, ""},
				{"meter", "energy_active_export", nil, "not implemented"},
				{"meter", "power_apparent", nil, "not implemented (scale factor VA_SF)"},
			}
			for _, c := range checks {
				got := rec.full(c.res, c.name)
				wantQ := model.QualityGood
				if c.err != "" {
					wantQ = model.QualityBad
				}
				if got.V != c.want || got.Quality != wantQ || got.Err != c.err {
					t.Errorf("%s/%s = %v (%T) q=%s err=%q, want %v (%T) q=%s err=%q", c.res, c.name, got.V, got.V, got.Quality, got.Err, c.want, c.want, wantQ, c.err)
				}
			}
			if got, want := len(a.ss.layout.Load().reads), map[uint16]int{40000: 3, 50000: 15, 0: 3}[tt.base]; got != want {
				t.Errorf("%d reads a poll, want %d", got, want)
			}

			// Get reads now, with the same quality.
			vs, err := a.Get(ctx, "meter", []string{"power_active", "power_apparent"})
			if err != nil {
				t.Fatalf("Get() = %v", err)
			}
			if v := vs["power_active"]; v.V != -2500.0 || v.Quality != model.QualityGood {
				t.Errorf("Get power_active = %+v, want -2500 good", v)
			}
			if v := vs["power_apparent"]; v.V != nil || v.Quality != model.QualityBad || v.Err != "not implemented (scale factor VA_SF)" {
				t.Errorf("Get power_apparent = %+v, want bad, not implemented", v)
			}
			if _, err := a.Get(ctx, "meter", []string{"nope"}); !errors.Is(err, adapters.ErrNotFound) {
				t.Errorf("Get(nope) = %v, want ErrNotFound", err)
			}
			if err := a.Set(ctx, "main", map[string]model.Value{"power_ac": {V: 1.0}}); !errors.Is(err, adapters.ErrNotWritable) {
				t.Errorf("Set(power_ac) = %v, want ErrNotWritable", err)
			}
		})
	}
}

// TestSunSpecValuesMove checks that a changed register is reported: the
// scale factor of the next poll applies to the value of that poll.
func TestSunSpecValuesMove(t *testing.T) {
	u := sim.NewSunSpec(40000, time.Hour)
	url := simUnitsTCP(t, map[byte]sim.Unit{1: u})
	a, err := New("pv-1", adaptersTOML(sunspecConf(url, "")), envForTest(t), WithPool(NewPool()))
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	runAdapter(t, a, rec)
	waitFor(t, "power_ac", func() bool { v, _ := rec.value("main", "power_ac"); return v == 3000.0 })
	inv := uint16(40000 + sim.SunSpecInverter)
	u.SetRegister(inv+14, 1234) // W
	u.SetRegister(inv+15, 1)    // W_SF
	waitFor(t, "power_ac 12340", func() bool { v, _ := rec.value("main", "power_ac"); return v == 12340.0 })
	u.SetRegister(inv+14, 0x8000)
	waitFor(t, "power_ac bad", func() bool { return rec.full("main", "power_ac").Err == "not implemented" })
	u.SetRegister(inv+14, 100)
	waitFor(t, "power_ac recovered", func() bool { return rec.full("main", "power_ac").V == 1000.0 })
	// A read the unit refuses makes its points bad, the others stay good.
	u.SetFault(sim.Fault{Exception: sim.ServerDeviceBusy, From: 40000 + sim.SunSpecMeter, To: 40000 + sim.SunSpecMeter + 105})
	waitFor(t, "meter bad", func() bool {
		return rec.full("meter", "power_active").Err == "exception 6 (server device busy)"
	})
	if v := rec.full("main", "power_ac"); v.Quality != model.QualityGood {
		t.Errorf("power_ac = %+v while the meter is refused, want good", v)
	}
	if on, _ := rec.lastStatus(); !on {
		t.Error("unit offline while it answers the inverter's reads")
	}
}

// TestSunSpecOffline: a unit that does not answer is not described; Run
// reports it offline with the reason, and describes it once it answers.
func TestSunSpecOffline(t *testing.T) {
	u := sim.NewSunSpec(40000, time.Hour)
	u.SetFault(sim.Fault{Drop: true})
	url := simUnitsTCP(t, map[byte]sim.Unit{1: u})
	a, err := New("pv-1", adaptersTOML(sunspecConf(url, "")), envForTest(t), WithPool(NewPool()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.Describe(ctx); !errors.Is(err, adapters.ErrTimeout) || !strings.Contains(err.Error(), `device "pv-1": sunspec: looking for the marker at holding 40000`) {
		t.Fatalf("Describe() of a silent unit = %v, want a timeout looking for the marker", err)
	}
	rec := newRecorder()
	runAdapter(t, a, rec)
	waitFor(t, "offline", func() bool { on, known := rec.lastStatus(); return known && !on })
	rec.mu.Lock()
	reason := rec.errs[len(rec.errs)-1]
	rec.mu.Unlock()
	if !errors.Is(reason, adapters.ErrTimeout) {
		t.Errorf("offline reason = %v, want a timeout", reason)
	}
	u.SetFault(sim.Fault{})
	waitFor(t, "online", func() bool { on, _ := rec.lastStatus(); return on })
	waitFor(t, "power_ac", func() bool { _, ok := rec.value("main", "power_ac"); return ok })
}

// TestSunSpecNotSunSpec: a unit with no marker is not described, and
// says why.
func TestSunSpecNotSunSpec(t *testing.T) {
	url := simUnitsTCP(t, map[byte]sim.Unit{1: sim.NewSensor(time.Hour, 0)})
	a, err := New("pv-1", adaptersTOML(sunspecConf(url, "")), envForTest(t), WithPool(NewPool()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Describe(context.Background())
	if !errors.Is(err, errNoSunSpec) || !strings.HasPrefix(err.Error(), `device "pv-1": sunspec: no "SunS" marker`) {
		t.Fatalf("Describe() = %v, want no marker", err)
	}
}

// TestSunSpecBrokenChainOverTCP: Describe names the address where the
// chain breaks.
func TestSunSpecBrokenChainOverTCP(t *testing.T) {
	u := sim.NewSunSpec(40000, time.Hour)
	u.SetRegister(40000+sim.SunSpecEnd, 42)
	url := simUnitsTCP(t, map[byte]sim.Unit{1: u})
	a, err := New("pv-1", adaptersTOML(sunspecConf(url, "")), envForTest(t), WithPool(NewPool()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Describe(context.Background())
	want := `device "pv-1": sunspec: SunSpec model chain broken at holding 40281 (after model 42 at 40279, length 0): exception 2 (illegal data address)`
	if err == nil || err.Error() != want {
		t.Fatalf("Describe() = %v, want %s", err, want)
	}
}
