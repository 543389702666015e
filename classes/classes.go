package classes

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/osapgw/osapgw/model"
)

// Class is one industry model template.
type Class struct {
	// ID names the class and its version: "energy-meter/1".
	ID          string
	Description string
	// AppliesTo says which resources of a device follow the class, for
	// the docs ("main", "video/N").
	AppliesTo  string
	Attributes []Attribute
	Events     []Event
	Operations []Operation
}

// Attribute is an attribute a class fixes.
type Attribute struct {
	Name        string
	Type        model.Type
	Unit        string
	Required    bool
	Description string
}

// Event is an event a class fixes, with its parameters.
type Event struct {
	Name        string
	Params      []model.Param
	Required    bool
	Description string
}

// Operation is an operation a class fixes, with its inputs and outputs.
type Operation struct {
	Name        string
	Inputs      []model.Param
	Outputs     []model.Param
	Required    bool
	Description string
}

// Attribute returns the class's attribute called name, and false when it
// fixes none.
func (c *Class) Attribute(name string) (Attribute, bool) {
	i := slices.IndexFunc(c.Attributes, func(a Attribute) bool { return a.Name == name })
	if i < 0 {
		return Attribute{}, false
	}
	return c.Attributes[i], true
}

// Lookup returns the class called id, and false when this build defines
// none.
func Lookup(id string) (*Class, bool) {
	for _, c := range all {
		if c.ID == id {
			return c, true
		}
	}
	return nil, false
}

// All returns every class, sorted by ID. The classes are shared: read
// them, never modify them.
func All() []*Class { return slices.Clone(all) }

// IDs returns the identifiers of every class, sorted.
func IDs() []string {
	ids := make([]string, len(all))
	for i, c := range all {
		ids[i] = c.ID
	}
	return ids
}

// Check checks that r implements the class it names in r.Class; a
// resource that names none passes. The error wraps ErrUnknown for a class
// this build does not define, and otherwise joins one error per problem,
// each wrapping ErrNotConforming and naming the class, the attribute,
// event or operation, and what differs.
func Check(r *model.Resource) error {
	if r.Class == "" {
		return nil
	}
	c, ok := Lookup(r.Class)
	if !ok {
		return fmt.Errorf("class %q: %w (known: %s)", r.Class, ErrUnknown, strings.Join(IDs(), ", "))
	}
	return c.Check(r)
}

// Check checks that r implements c, whatever r.Class says; see the
// package's guarantees. The error joins one error per problem, each
// wrapping ErrNotConforming.
func (c *Class) Check(r *model.Resource) error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("class %q: %s: %w", c.ID, fmt.Sprintf(format, args...), ErrNotConforming))
	}
	for _, want := range c.Attributes {
		got, ok := r.Attribute(want.Name)
		switch {
		case !ok && want.Required:
			bad("attribute %q: missing (required, %s)", want.Name, typeUnit(want.Type, want.Unit))
		case !ok:
		case got.Type != want.Type || got.Unit != want.Unit:
			bad("attribute %q: %s, want %s", want.Name, typeUnit(got.Type, got.Unit), typeUnit(want.Type, want.Unit))
		}
	}
	for _, want := range c.Events {
		got, ok := r.Event(want.Name)
		switch {
		case !ok && want.Required:
			bad("event %q: missing (required)", want.Name)
		case !ok:
		default:
			for _, e := range params(want.Params, got.Params, true) {
				bad("event %q: %s", want.Name, e)
			}
		}
	}
	for _, want := range c.Operations {
		got, ok := r.Operation(want.Name)
		switch {
		case !ok && want.Required:
			bad("operation %q: missing (required)", want.Name)
		case !ok:
		default:
			for _, e := range params(want.Inputs, got.Inputs, false) {
				bad("operation %q: input %s", want.Name, e)
			}
			for _, p := range got.Inputs {
				if p.Required && !slices.ContainsFunc(want.Inputs, func(w model.Param) bool { return w.Name == p.Name }) {
					bad("operation %q: input %q: required, but the class has no such input", want.Name, p.Name)
				}
			}
			for _, e := range params(want.Outputs, got.Outputs, false) {
				bad("operation %q: output %s", want.Name, e)
			}
		}
	}
	return errors.Join(errs...)
}

// params compares the parameters a resource declares with the class's:
// each of want must be in got with its type (and unit, when units says).
func params(want, got []model.Param, units bool) []string {
	var out []string
	for _, w := range want {
		i := slices.IndexFunc(got, func(g model.Param) bool { return g.Name == w.Name })
		if i < 0 {
			out = append(out, fmt.Sprintf("parameter %q: missing, want %s", w.Name, typeUnit(w.Type, w.Unit)))
			continue
		}
		g := got[i]
		if g.Type != w.Type || units && g.Unit != w.Unit {
			if !units {
				g.Unit, w.Unit = "", ""
			}
			out = append(out, fmt.Sprintf("parameter %q: %s, want %s", w.Name, typeUnit(g.Type, g.Unit), typeUnit(w.Type, w.Unit)))
		}
	}
	return out
}

func typeUnit(t model.Type, unit string) string {
	if unit == "" {
		return fmt.Sprintf("%s with no unit", t)
	}
	return fmt.Sprintf("%s in %q", t, unit)
}

// Resource returns a resource called name that has every name of c, and
// nothing else, in one area "data": what a device that implements all of
// the class would declare. Simulators and tests start from it.
func (c *Class) Resource(name string) model.Resource {
	a := model.Area{Name: "data"}
	for _, at := range c.Attributes {
		a.Attributes = append(a.Attributes, model.Attribute{Name: at.Name, Type: at.Type, Unit: at.Unit, Description: at.Description})
	}
	for _, ev := range c.Events {
		a.Events = append(a.Events, model.EventType{Name: ev.Name, Params: slices.Clone(ev.Params), Description: ev.Description})
	}
	for _, op := range c.Operations {
		a.Operations = append(a.Operations, model.Operation{Name: op.Name, Inputs: slices.Clone(op.Inputs), Outputs: slices.Clone(op.Outputs), Description: op.Description})
	}
	return model.Resource{Name: name, Class: c.ID, Areas: []model.Area{a}}
}
