package adapters

import (
	"context"
	"slices"
	"testing"

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
	Register(Kind{Name: "test-nop", New: func(string, Decoder, Env) (Adapter, error) { return nopAdapter{}, nil }})
	if _, ok := Lookup("test-nop"); !ok {
		t.Fatal("Lookup(test-nop) = false after Register")
	}
	if _, ok := Lookup("nope"); ok {
		t.Fatal("Lookup(nope) = true, want false")
	}
	if !slices.Contains(Kinds(), "test-nop") {
		t.Fatalf("Kinds() = %v, want it to contain test-nop", Kinds())
	}
	defer func() {
		if recover() == nil {
			t.Fatal("second Register of test-nop did not panic")
		}
	}()
	Register(Kind{Name: "test-nop", New: func(string, Decoder, Env) (Adapter, error) { return nopAdapter{}, nil }})
}
