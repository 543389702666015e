package modbus

import (
	"errors"
	"fmt"
	"strings"
)

// Codec returns the table and the codec the adapter reads the point a
// with, so that a simulator or a test can encode a value the way the
// adapter decodes it (Codec.Encode is the inverse of Codec.Decode). Apply
// the defaults first (Profile.Points does). The error joins the problems
// of the point's table and encoding keys.
func (a AttributeConfig) Codec() (Table, Codec, error) {
	return pointCodec(a.Table, a.Type, a.Order, a.Bit, a.Length, a.Scale, a.Offset)
}

// Codec returns the table and the codec of an identity register, as
// AttributeConfig.Codec does for a point.
func (id IdentityConfig) Codec() (Table, Codec, error) {
	return pointCodec(id.Table, id.Type, id.Order, nil, id.Length, nil, 0)
}

func pointCodec(table, typ, order string, bit *int, length int, scale *float64, offset float64) (Table, Codec, error) {
	t := Table(strings.ToLower(table))
	if !t.valid() {
		return t, Codec{}, fmt.Errorf("table: unknown table %q (want coil, discrete, input or holding)", table)
	}
	c, errs := compileCodec(t, typ, order, bit, length, scale, offset)
	return t, c, errors.Join(errs...)
}

// Bits reports whether t holds bits (coils, discrete inputs) rather than
// 16-bit registers.
func (t Table) Bits() bool { return t.bits() }
