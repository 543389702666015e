package model

import (
	"encoding/json"
	"strings"
	"testing"
)

func ptr(f float64) *float64 { return &f }

func TestCoerce(t *testing.T) {
	tests := []struct {
		name     string
		typ      Type
		in       any
		min, max *float64
		want     any
		wantErr  string
	}{
		{name: "bool", typ: TypeBool, in: true, want: true},
		{name: "bool from number", typ: TypeBool, in: 1.0, wantErr: "want a bool"},
		{name: "int from json float", typ: TypeInt, in: 42.0, want: int64(42)},
		{name: "int with fraction", typ: TypeInt, in: 4.5, wantErr: "want an integer"},
		{name: "int below min", typ: TypeInt, in: -1.0, min: ptr(0), wantErr: "below the minimum"},
		{name: "float above max", typ: TypeFloat, in: 101.0, max: ptr(100), wantErr: "above the maximum"},
		{name: "float from int64", typ: TypeFloat, in: int64(7), want: 7.0},
		{name: "float from json number", typ: TypeFloat, in: json.Number("2.5"), want: 2.5},
		{name: "string", typ: TypeString, in: "x", want: "x"},
		{name: "string from number", typ: TypeString, in: 3.0, wantErr: "want a string"},
		{name: "unknown type", typ: "decimal", in: 3.0, wantErr: "unknown type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Coerce(tt.typ, tt.in, tt.min, tt.max)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Coerce(%v) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Coerce(%v) = %v (%T), %v, want %v (%T)", tt.in, got, got, err, tt.want, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	d := Device{ID: "boiler-1", Resources: []Resource{
		{Name: "main", Areas: []Area{{Name: "env", Attributes: []Attribute{
			{Name: "temp", Type: TypeFloat}, {Name: "temp", Type: TypeFloat}, {Name: "mode", Type: "enum"},
		}}}},
		{Name: "main"},
	}}
	err := d.Validate()
	for _, want := range []string{`duplicate attribute "temp"`, `attribute "mode": unknown type "enum"`, `duplicate resource "main"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to contain %q", err, want)
		}
	}
	good := Device{ID: "x", Resources: []Resource{{Name: "r", Areas: []Area{{Name: "a", Attributes: []Attribute{{Name: "t", Type: TypeInt}}}}}}}
	if err := good.Validate(); err != nil {
		t.Fatalf("Validate(good) = %v", err)
	}
	r, ok := good.Resource("r")
	if !ok {
		t.Fatal("Resource(r) not found")
	}
	if _, ok := r.Attribute("t"); !ok {
		t.Fatal("Attribute(t) not found")
	}
	if _, ok := r.Operation("t"); ok {
		t.Fatal("Operation(t) found, want none")
	}
}

// TestResourceClassJSON: a resource that follows a class carries it in
// topo.add; one that follows none carries no class key.
func TestResourceClassJSON(t *testing.T) {
	for _, tt := range []struct {
		r    Resource
		want string
	}{
		{Resource{Name: "main", Class: "energy-meter/1"}, `{"name":"main","class":"energy-meter/1","areas":null}`},
		{Resource{Name: "main"}, `{"name":"main","areas":null}`},
	} {
		b, err := json.Marshal(tt.r)
		if err != nil || string(b) != tt.want {
			t.Errorf("json.Marshal(%+v) = %s, %v; want %s", tt.r, b, err, tt.want)
		}
	}
}
