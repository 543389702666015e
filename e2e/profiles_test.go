package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/osapgw/osapgw/adapters/modbus"
	"github.com/osapgw/osapgw/classes"
	"github.com/osapgw/osapgw/model"
	"github.com/osapgw/osapgw/osap/platform"
	"github.com/osapgw/osapgw/profiles"
)

// profileCase is one embedded profile under test: the unit devsim serves
// it on, its points, and the one point devsim leaves out.
type profileCase struct {
	p       *profiles.Profile
	unit    int
	points  []string
	missing string
}

// profileCases returns a case for every embedded Modbus profile, each
// with a point to leave out: the first that its class does not require
// and that is not written (voltage_l1 of most meters, read in one request
// with its neighbours, so the gateway must isolate it).
func profileCases(t testing.TB) []profileCase {
	var out []profileCase
	for _, p := range profiles.Embedded().Profiles() {
		mp, err := modbus.DecodeProfile(p)
		if err != nil {
			t.Logf("profile %q is not a Modbus register map (%v): not served by devsim --profile here", p.Name, err)
			continue
		}
		c := profileCase{p: p, unit: len(out) + 1}
		class, _ := classes.Lookup(p.Class)
		for _, a := range mp.Points() {
			c.points = append(c.points, a.Name)
			if c.missing != "" || a.Writable || class == nil {
				continue
			}
			if ca, ok := class.Attribute(a.Name); !ok || !ca.Required {
				c.missing = a.Name
			}
		}
		out = append(out, c)
	}
	return out
}

// waitListening waits until addr accepts TCP connections.
func waitListening(t testing.TB, addr string) {
	t.Helper()
	waitFor(t, addr+" to listen", 30*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// plausibleClassValue returns the range a class attribute's value must be
// in: devsim's values, decoded by the gateway with the profile's scales.
func plausibleClassValue(name, unit string) (lo, hi float64) {
	switch {
	case strings.HasSuffix(name, "_dc") && unit == "V":
		return 500, 700
	case name == "power_factor":
		return 0.8, 1
	case name == "dew_point":
		return -10, 30
	}
	r, ok := map[string][2]float64{
		"V": {200, 450}, "A": {0, 60}, "W": {0, 15000}, "VA": {0, 15000}, "var": {0, 15000}, "Hz": {49.9, 50.1},
		"kWh": {0.001, 1e7}, "kvarh": {0.001, 1e7}, "°C": {15, 30}, "%": {0, 100}, "ppm": {400, 1200},
		"hPa": {900, 1100}, "lx": {0, 1000},
	}[unit]
	if !ok {
		return -1e9, 1e9
	}
	return r[0], r[1]
}

func asFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}

// TestProfiles polls, through the gateway, one devsim serving every
// embedded Modbus profile (one unit each, on one port, one point of each
// left out): the platform emulator gets, for each, the resource "main"
// with the profile's class and the class's units, a good value for every
// point, plausible for the class attributes, and the left-out point bad
// with exception 2.
func TestProfiles(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end with real processes; skipped with -short")
	}
	cases := profileCases(t)
	if len(cases) < 12 {
		t.Fatalf("%d embedded Modbus profiles, want at least 12", len(cases))
	}
	s := newSite(t)
	port := freePort(t)
	var names, missing []string
	var blocks strings.Builder
	for _, c := range cases {
		names = append(names, c.p.Name)
		if c.missing != "" {
			missing = append(missing, c.p.Name+":"+c.missing)
		}
		fmt.Fprintf(&blocks, "\n[[device]]\nid = %q\nkind = \"modbus\"\nprofile = %q\nurl = \"tcp://127.0.0.1:%d\"\nunit = %d\npoll = \"500ms\"\n",
			c.p.Name, c.p.Name, port, c.unit)
	}
	start(t, "devsim", "modbus", "-listen", fmt.Sprintf("127.0.0.1:%d", port),
		"-profile", strings.Join(names, ","), "-missing", strings.Join(missing, ","))
	// The gateway must find devsim up: a poll group whose first read
	// meets a refused connection waits its whole interval (10 minutes for
	// some profiles' settings) before it is read again.
	waitListening(t, fmt.Sprintf("127.0.0.1:%d", port))
	s.writeConfig(blocks.String())
	s.startGateway()
	devID := s.devID()

	// lacking says what the platform does not hold yet: a model, or a
	// value of a point.
	var subs map[string]platform.SubDevice
	lacking := func() []string {
		subs = map[string]platform.SubDevice{}
		for _, sd := range s.device(devID).SubDevices {
			subs[sd.ID] = sd
		}
		var out []string
		for _, c := range cases {
			sd, ok := subs[c.p.Name]
			if !ok || sd.Model == nil {
				out = append(out, c.p.Name+" (no model)")
				continue
			}
			for _, name := range c.points {
				if v, ok := sd.Attributes["main"][name]; !ok || v.Quality == "" {
					out = append(out, c.p.Name+"/"+name)
				}
			}
		}
		return out
	}
	for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		l := lacking()
		if len(l) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting 45s for a value of every point of every profile at the platform: it lacks %s", strings.Join(l, ", "))
		}
	}

	for _, c := range cases {
		t.Run(c.p.Name, func(t *testing.T) {
			sd := subs[c.p.Name]
			r, ok := sd.Model.Resource("main")
			if !ok {
				t.Fatalf("topo.add model has no resource main: %+v", sd.Model)
			}
			if r.Class != c.p.Class {
				t.Errorf("resource main class = %q, want the profile's %q", r.Class, c.p.Class)
			}
			if err := classes.Check(r); err != nil {
				t.Errorf("resource main does not implement %s: %v", r.Class, err)
			}
			class, _ := classes.Lookup(c.p.Class)
			values := sd.Attributes["main"]
			for _, name := range c.points {
				v := values[name]
				if name == c.missing {
					if v.Quality != model.QualityBad || v.V != nil || !strings.Contains(v.Err, "exception 2") {
						t.Errorf("%s (left out) = %+v, want q bad with exception 2 and no value", name, v)
					}
					continue
				}
				if v.Quality != model.QualityGood || v.V == nil {
					t.Errorf("%s = %+v, want a good value", name, v)
					continue
				}
				ca, ok := class.Attribute(name)
				if !ok {
					continue
				}
				got, _ := r.Attribute(name)
				if got.Unit != ca.Unit || got.Type != ca.Type {
					t.Errorf("%s: model says %s in %q, want the class's %s in %q", name, got.Type, got.Unit, ca.Type, ca.Unit)
				}
				if f, ok := asFloat(v.V); ca.Type == model.TypeFloat {
					if lo, hi := plausibleClassValue(name, ca.Unit); !ok || f < lo || f > hi {
						t.Errorf("%s = %v %s, want %v to %v", name, v.V, ca.Unit, lo, hi)
					}
				}
			}
			for name := range values {
				if !slices.Contains(c.points, name) {
					t.Errorf("platform has %s, which the profile does not map", name)
				}
			}
		})
	}
}
