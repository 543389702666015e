package modbus

import (
	"strings"
	"testing"
)

func TestAttributeConfigCodec(t *testing.T) {
	ptr := func(v float64) *float64 { return &v }
	bit := func(v int) *int { return &v }
	addr := 0
	tests := []struct {
		name    string
		point   AttributeConfig
		value   any
		want    any
		wantErr string
	}{
		{name: "float32 CDAB", point: AttributeConfig{Table: "input", Type: "float32", Order: "cdab"}, value: 230.5, want: 230.5},
		{name: "scaled uint32", point: AttributeConfig{Table: "Holding", Type: "uint32", Scale: ptr(0.01)}, value: 1234.56, want: 1234.56},
		{name: "offset int16", point: AttributeConfig{Table: "input", Type: "int16", Scale: ptr(0.1), Offset: -40}, value: 21.5, want: 21.5},
		{name: "bool in a register", point: AttributeConfig{Table: "holding", Type: "bool", Bit: bit(3)}, value: true, want: true},
		{name: "string", point: AttributeConfig{Table: "holding", Type: "string", Length: 4}, value: "B23", want: "B23"},
		{name: "unknown table", point: AttributeConfig{Table: "register"}, wantErr: `table: unknown table "register"`},
		{name: "bad type", point: AttributeConfig{Table: "input", Type: "float16"}, wantErr: `type: unknown type "float16"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.point.Address = &addr
			_, c, err := tt.point.Codec()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Codec() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := c.Encode(tt.value, 0)
			if err != nil {
				t.Fatalf("Encode(%v) = %v", tt.value, err)
			}
			if got, err := c.Decode(b); err != nil || got != tt.want {
				t.Errorf("Decode(%x) = %v, %v, want %v", b, got, err, tt.want)
			}
		})
	}
}

func TestIdentityConfigCodec(t *testing.T) {
	id := IdentityConfig{Table: "holding", Type: "uint32"}
	table, c, err := id.Codec()
	if err != nil || table != Holding || table.Bits() || c.Registers() != 2 {
		t.Fatalf("Codec() = %v, %+v, %v, want a holding uint32 of 2 registers", table, c, err)
	}
}
