package adapters

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/osapgw/osapgw/model"
)

type nopAdapter struct{}

func (nopAdapter) Describe(context.Context) (model.Device, error) { return model.Device{}, nil }
func (nopAdapter) Run(context.Context, Sink) error                { return nil }
func (nopAdapter) Set(context.Context, string, map[string]model.Value) error {
	return nil
}
func (nopAdapter) Get(context.Context, string, []string) (map[string]model.Value, error) {
	return nil, nil
}
func (nopAdapter) Invoke(context.Context, string, string, map[string]any) (map[string]any, error) {
	return nil, nil
}

var _ Adapter = nopAdapter{}

func TestRegistry(t *testing.T) {
	name := fmt.Sprintf("test-nop-%d", time.Now().UnixNano()) // unique: the registry is global and -count may repeat the test
	Register(Kind{Name: name, New: func(string, Decoder, Env) (Adapter, error) { return nopAdapter{}, nil }})
	if _, ok := Lookup(name); !ok {
		t.Fatalf("Lookup(%s) = false after Register", name)
	}
	if _, ok := Lookup("nope"); ok {
		t.Fatal("Lookup(nope) = true, want false")
	}
	if !slices.Contains(Kinds(), name) {
		t.Fatalf("Kinds() = %v, want it to contain %s", Kinds(), name)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("second Register of the same name did not panic")
		}
	}()
	Register(Kind{Name: name, New: func(string, Decoder, Env) (Adapter, error) { return nopAdapter{}, nil }})
}

func TestOmit(t *testing.T) {
	name := fmt.Sprintf("test-omitted-%d", time.Now().UnixNano())
	Omit(name, "built with -tags example")
	if why, ok := Omitted(name); !ok || why != "built with -tags example" {
		t.Fatalf("Omitted(%s) = %q, %v, want %q, true", name, why, ok, "built with -tags example")
	}
	if _, ok := Lookup(name); ok {
		t.Errorf("Lookup(%s) = true for an omitted kind, want false", name)
	}
	if slices.Contains(Kinds(), name) {
		t.Errorf("Kinds() = %v, want it without the omitted %s", Kinds(), name)
	}
	if _, ok := Omitted("nope"); ok {
		t.Error("Omitted(nope) = true, want false")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Register of an omitted name did not panic")
		}
	}()
	Register(Kind{Name: name, New: func(string, Decoder, Env) (Adapter, error) { return nopAdapter{}, nil }})
}
