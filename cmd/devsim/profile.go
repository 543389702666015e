package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/osapgw/osapgw/adapters/modbus"
	"github.com/osapgw/osapgw/profiles"
	sim "github.com/osapgw/osapgw/sim/modbus"
	simprofile "github.com/osapgw/osapgw/sim/modbus/profile"
)

// unitMakers make the simulated device of a --profile name that is not a
// register map in the catalog (such as "sunspec"), by name: a simulator
// of such a device registers itself here with one line.
var unitMakers = map[string]func(unit byte, o simprofile.Options) (sim.Unit, error){
	// A SunSpec inverter with an MPPT extension and a meter, its chain at
	// 40000 (sim.NewSunSpec).
	"sunspec": func(_ byte, o simprofile.Options) (sim.Unit, error) { return sim.NewSunSpec(40000, o.Change), nil },
}

// profileUnits says which profile each unit serves, and how.
type profileUnits struct {
	byUnit  map[byte]string
	catalog *profiles.Catalog
	missing map[string][]string // by profile
	change  time.Duration
}

// parseProfiles pairs the comma-separated profile names of list with
// units: one profile is served on every unit; several on one unit each,
// in order (units 1 to n when unitsSet is false). Each name must be a
// Modbus profile of the embedded ones or dir's, or a name in
// unitMakers. missing lists POINT (every served profile that has it) or
// PROFILE:POINT.
func parseProfiles(list, dir, missing string, units []byte, unitsSet bool, change time.Duration) (*profileUnits, error) {
	names := strings.Split(list, ",")
	for i := range names {
		names[i] = strings.TrimSpace(names[i])
	}
	if len(names) > 1 && !unitsSet {
		units = nil
		for i := range names {
			units = append(units, byte(i+1))
		}
	}
	if len(names) > 1 && len(units) != len(names) {
		return nil, fmt.Errorf("--profile: %d profiles for %d units: give one unit each (--units) or one profile", len(names), len(units))
	}
	cat, err := profiles.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("--profiles-dir: %w", err)
	}
	pu := &profileUnits{byUnit: map[byte]string{}, catalog: cat, missing: map[string][]string{}, change: change}
	for i, u := range units {
		name := names[min(i, len(names)-1)]
		if _, ok := unitMakers[name]; !ok {
			p, err := cat.Lookup(name)
			if err != nil {
				return nil, fmt.Errorf("--profile: %w", err)
			}
			if p.Kind != "modbus" {
				return nil, fmt.Errorf("--profile: %q is a %s profile, not a Modbus one", name, p.Kind)
			}
		}
		pu.byUnit[u] = name
	}
	for _, m := range strings.Split(missing, ",") {
		if m = strings.TrimSpace(m); m == "" {
			continue
		}
		prof, point, ok := strings.Cut(m, ":")
		if !ok {
			point = prof
		}
		found := false
		for _, name := range names {
			if ok && name != prof {
				continue
			}
			if !ok && !hasPoint(cat, name, point) {
				continue
			}
			if !slices.Contains(pu.missing[name], point) {
				pu.missing[name] = append(pu.missing[name], point)
			}
			found = true
		}
		if !found {
			return nil, fmt.Errorf("--missing %q: no profile served has that point", m)
		}
	}
	// Make each once, so that a bad --missing fails here, not at serving.
	if _, err := pu.units(); err != nil {
		return nil, err
	}
	return pu, nil
}

// hasPoint reports whether the Modbus profile name has an attribute
// called point.
func hasPoint(cat *profiles.Catalog, name, point string) bool {
	p, err := cat.Lookup(name)
	if err != nil {
		return false
	}
	mp, err := modbus.DecodeProfile(p)
	return err == nil && slices.ContainsFunc(mp.Attributes, func(a modbus.AttributeConfig) bool { return a.Name == point })
}

// units returns a new simulated device for each unit.
func (pu *profileUnits) units() (map[byte]sim.Unit, error) {
	out := map[byte]sim.Unit{}
	var errs []error
	for u, name := range pu.byUnit {
		o := simprofile.Options{Change: pu.change, Missing: pu.missing[name], Unit: u}
		if mk, ok := unitMakers[name]; ok {
			unit, err := mk(u, o)
			errs = append(errs, err)
			out[u] = unit
			continue
		}
		p, err := pu.catalog.Lookup(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		d, err := simprofile.New(p, o)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[u] = d
	}
	return out, errors.Join(errs...)
}

// describe says which unit serves which profile: "unit 1 eastron-sdm630,
// unit 2 xy-md02 (missing humidity)".
func (pu *profileUnits) describe() string {
	units := make([]byte, 0, len(pu.byUnit))
	for u := range pu.byUnit {
		units = append(units, u)
	}
	slices.Sort(units)
	var parts []string
	for _, u := range units {
		s := fmt.Sprintf("unit %d %s", u, pu.byUnit[u])
		if m := pu.missing[pu.byUnit[u]]; len(m) > 0 {
			s += " (missing " + strings.Join(m, " ") + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}
