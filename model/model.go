// Package model is the OSAP device model: a sub-device is made of Resources
// (independent parts such as a video channel or a register group), each
// grouping its functions into Areas; an Area holds Attributes (readable and
// possibly settable state), Operations (callable, with input and output
// parameters) and Events (reported at once, buffered while offline).
//
// The package is a leaf: it depends on nothing but the standard library, so
// adapters, the bridge, the protocol and the platform emulator can all share it.
package model

import (
	"errors"
	"fmt"
)

// Type is the data type of an attribute or parameter.
type Type string

// The data types of the model. Ints travel as JSON numbers without a
// fraction, floats as JSON numbers, JSON as any JSON value.
const (
	TypeBool   Type = "bool"
	TypeInt    Type = "int"
	TypeFloat  Type = "float"
	TypeString Type = "string"
	TypeJSON   Type = "json"
)

// Valid reports whether t is one of the model's types.
func (t Type) Valid() bool {
	switch t {
	case TypeBool, TypeInt, TypeFloat, TypeString, TypeJSON:
		return true
	}
	return false
}

// Device is one sub-device of the gateway, as announced in topo.add (its
// "DSL description").
type Device struct {
	ID           string     `json:"id"`
	Kind         string     `json:"kind"`
	Name         string     `json:"name,omitempty"`
	Manufacturer string     `json:"manufacturer,omitempty"`
	Model        string     `json:"model,omitempty"`
	Firmware     string     `json:"firmware,omitempty"`
	Serial       string     `json:"serial,omitempty"`
	Resources    []Resource `json:"resources"`
}

// Resource is a relatively independent component of a device that can
// handle requests on its own, such as a camera's video source or a Modbus
// unit's register group.
type Resource struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Class names the industry model template the resource follows
	// ("energy-meter/1"), or is empty; package classes defines them.
	Class string `json:"class,omitempty"`
	Areas []Area `json:"areas"`
}

// Area is a set of related functions of a resource, such as "imaging" or
// "environment".
type Area struct {
	Name       string      `json:"name"`
	Attributes []Attribute `json:"attributes,omitempty"`
	Operations []Operation `json:"operations,omitempty"`
	Events     []EventType `json:"events,omitempty"`
}

// Attribute describes a piece of state that can be read and, when Writable,
// set.
type Attribute struct {
	Name        string   `json:"name"`
	Type        Type     `json:"type"`
	Unit        string   `json:"unit,omitempty"`
	Min         *float64 `json:"min,omitempty"`
	Max         *float64 `json:"max,omitempty"`
	Writable    bool     `json:"writable,omitempty"`
	Description string   `json:"description,omitempty"`
}

// Param describes one input or output parameter of an operation, or one
// parameter of an event.
type Param struct {
	Name        string   `json:"name"`
	Type        Type     `json:"type"`
	Unit        string   `json:"unit,omitempty"`
	Min         *float64 `json:"min,omitempty"`
	Max         *float64 `json:"max,omitempty"`
	Enum        []string `json:"enum,omitempty"`
	Required    bool     `json:"required,omitempty"`
	Description string   `json:"description,omitempty"`
}

// Operation describes a method the platform can invoke on a resource.
type Operation struct {
	Name        string  `json:"name"`
	Inputs      []Param `json:"inputs,omitempty"`
	Outputs     []Param `json:"outputs,omitempty"`
	Description string  `json:"description,omitempty"`
}

// EventType describes an event a resource can report.
type EventType struct {
	Name        string  `json:"name"`
	Params      []Param `json:"params,omitempty"`
	Description string  `json:"description,omitempty"`
}

// Resource returns the resource called name, and false when there is none.
func (d *Device) Resource(name string) (*Resource, bool) {
	for i := range d.Resources {
		if d.Resources[i].Name == name {
			return &d.Resources[i], true
		}
	}
	return nil, false
}

// Attribute returns the attribute called name in any area of r, and false
// when there is none.
func (r *Resource) Attribute(name string) (Attribute, bool) {
	for _, a := range r.Areas {
		for _, at := range a.Attributes {
			if at.Name == name {
				return at, true
			}
		}
	}
	return Attribute{}, false
}

// Operation returns the operation called name in any area of r, and false
// when there is none.
func (r *Resource) Operation(name string) (Operation, bool) {
	for _, a := range r.Areas {
		for _, op := range a.Operations {
			if op.Name == name {
				return op, true
			}
		}
	}
	return Operation{}, false
}

// Event returns the event type called name in any area of r, and false when
// there is none.
func (r *Resource) Event(name string) (EventType, bool) {
	for _, a := range r.Areas {
		for _, ev := range a.Events {
			if ev.Name == name {
				return ev, true
			}
		}
	}
	return EventType{}, false
}

// Validate checks that d is well formed: an id, unique non-empty names for
// resources and, within a resource, for attributes, operations and events,
// and known types. The error names the place of every problem found.
func (d *Device) Validate() error {
	var errs []error
	if d.ID == "" {
		errs = append(errs, errors.New("device has no id"))
	}
	resources := map[string]bool{}
	for _, r := range d.Resources {
		if r.Name == "" {
			errs = append(errs, fmt.Errorf("device %q: resource with no name", d.ID))
			continue
		}
		if resources[r.Name] {
			errs = append(errs, fmt.Errorf("device %q: duplicate resource %q", d.ID, r.Name))
		}
		resources[r.Name] = true
		seen := map[string]bool{}
		check := func(what, name string) {
			key := what + "\x00" + name
			switch {
			case name == "":
				errs = append(errs, fmt.Errorf("device %q: resource %q: %s with no name", d.ID, r.Name, what))
			case seen[key]:
				errs = append(errs, fmt.Errorf("device %q: resource %q: duplicate %s %q", d.ID, r.Name, what, name))
			}
			seen[key] = true
		}
		checkType := func(what, name string, t Type) {
			if !t.Valid() {
				errs = append(errs, fmt.Errorf("device %q: resource %q: %s %q: unknown type %q", d.ID, r.Name, what, name, t))
			}
		}
		for _, a := range r.Areas {
			for _, at := range a.Attributes {
				check("attribute", at.Name)
				checkType("attribute", at.Name, at.Type)
			}
			for _, op := range a.Operations {
				check("operation", op.Name)
				for _, p := range append(append([]Param(nil), op.Inputs...), op.Outputs...) {
					checkType("operation "+op.Name+" parameter", p.Name, p.Type)
				}
			}
			for _, ev := range a.Events {
				check("event", ev.Name)
				for _, p := range ev.Params {
					checkType("event "+ev.Name+" parameter", p.Name, p.Type)
				}
			}
		}
	}
	return errors.Join(errs...)
}
