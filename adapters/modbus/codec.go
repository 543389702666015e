package modbus

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
)

// Table is one of the four Modbus data tables.
type Table string

// The Modbus data tables.
const (
	Coil     Table = "coil"     // read/write bits (function codes 1, 5, 15)
	Discrete Table = "discrete" // read-only bits (function code 2)
	Input    Table = "input"    // read-only registers (function code 4)
	Holding  Table = "holding"  // read/write registers (function codes 3, 6, 16)
)

func (t Table) valid() bool {
	switch t {
	case Coil, Discrete, Input, Holding:
		return true
	}
	return false
}

// bits reports whether t holds bits rather than 16-bit registers.
func (t Table) bits() bool { return t == Coil || t == Discrete }

// Type is the encoding of a value in registers (or a bit).
type Type string

// The value encodings an attribute can have.
const (
	Bool    Type = "bool"
	Int16   Type = "int16"
	Uint16  Type = "uint16"
	Int32   Type = "int32"
	Uint32  Type = "uint32"
	Int64   Type = "int64"
	Uint64  Type = "uint64"
	Float32 Type = "float32"
	Float64 Type = "float64"
	String  Type = "string"
)

// Types lists every encoding, for documentation and tests.
var Types = []Type{Bool, Int16, Uint16, Int32, Uint32, Int64, Uint64, Float32, Float64, String}

// registers returns how many registers a value of t takes; strings take
// length registers, and a bool in a register takes one.
func (t Type) registers(length int) int {
	switch t {
	case Bool, Int16, Uint16:
		return 1
	case Int32, Uint32, Float32:
		return 2
	case Int64, Uint64, Float64:
		return 4
	case String:
		return length
	}
	return 0
}

func (t Type) valid() bool { return t.registers(1) > 0 }

func (t Type) integer() bool {
	switch t {
	case Int16, Uint16, Int32, Uint32, Int64, Uint64:
		return true
	}
	return false
}

// bounds returns the range of an integer type.
func (t Type) bounds() (lo, hi float64) {
	switch t {
	case Int16:
		return math.MinInt16, math.MaxInt16
	case Uint16:
		return 0, math.MaxUint16
	case Int32:
		return math.MinInt32, math.MaxInt32
	case Uint32:
		return 0, math.MaxUint32
	case Int64:
		return math.MinInt64, math.MaxInt64
	case Uint64:
		return 0, math.MaxUint64
	}
	return math.Inf(-1), math.Inf(1)
}

// Order is the byte and word order of a multi-byte value. Its letters name
// the value's bytes from the most significant (A) as they appear on the
// wire: ABCD is big endian, DCBA little endian, BADC big-endian words with
// swapped bytes, CDAB swapped words with big-endian bytes. The same rule
// extends to 64-bit values (ABCD = ABCDEFGH, CDAB = GHEFCDAB, ...).
type Order string

// The four byte/word orders.
const (
	ABCD Order = "ABCD"
	DCBA Order = "DCBA"
	BADC Order = "BADC"
	CDAB Order = "CDAB"
)

// Orders lists every order, for documentation and tests.
var Orders = []Order{ABCD, DCBA, BADC, CDAB}

func (o Order) valid() bool {
	switch o {
	case ABCD, DCBA, BADC, CDAB:
		return true
	}
	return false
}

func (o Order) swapBytes() bool { return o == BADC || o == DCBA }
func (o Order) swapWords() bool { return o == CDAB || o == DCBA }

// normalize turns wire bytes (registers as sent, big endian each) into the
// value's big-endian bytes, or back: both steps are involutions. Strings
// only swap bytes; their register order is always the wire order.
func normalize(b []byte, o Order, t Type) []byte {
	out := make([]byte, len(b))
	copy(out, b)
	if o.swapBytes() {
		for i := 0; i+1 < len(out); i += 2 {
			out[i], out[i+1] = out[i+1], out[i]
		}
	}
	if o.swapWords() && t != String {
		n := len(out) / 2
		for i := 0; i < n/2; i++ {
			j := n - 1 - i
			out[2*i], out[2*j] = out[2*j], out[2*i]
			out[2*i+1], out[2*j+1] = out[2*j+1], out[2*i+1]
		}
	}
	return out
}

// Codec is how one value is laid out in registers: its type, order, the
// bit of a register for a bool, the length of a string in registers, and
// the linear scaling applied after decoding (value = raw*Scale + Offset).
type Codec struct {
	Type   Type
	Order  Order
	Bit    int // for Bool in a register: 0 (least significant) to 15; -1 when the value is a coil or discrete input
	Length int // for String: registers
	Scale  float64
	Offset float64
}

// Registers returns how many registers (or bits, for a coil) the value takes.
func (c Codec) Registers() int {
	if c.Type == Bool {
		return 1
	}
	return c.Type.registers(c.Length)
}

// scaled reports whether decoding yields a float because of scaling.
func (c Codec) scaled() bool { return c.Scale != 1 || c.Offset != 0 }

// Decode decodes a value from the wire bytes of its registers (2 bytes a
// register, as a read response carries them). It returns a bool, int64,
// float64 or string. It fails when b is shorter than the value needs.
func (c Codec) Decode(b []byte) (any, error) {
	need := 2 * c.Registers()
	if len(b) < need {
		return nil, fmt.Errorf("decode %s: have %d bytes, want %d", c.Type, len(b), need)
	}
	v := normalize(b[:need], c.Order, c.Type)
	var raw float64
	switch c.Type {
	case Bool:
		return binary.BigEndian.Uint16(v)>>uint(c.Bit)&1 == 1, nil
	case String:
		return strings.TrimRight(string(v), "\x00 "), nil
	case Int16:
		raw = float64(int16(binary.BigEndian.Uint16(v)))
	case Uint16:
		raw = float64(binary.BigEndian.Uint16(v))
	case Int32:
		raw = float64(int32(binary.BigEndian.Uint32(v)))
	case Uint32:
		raw = float64(binary.BigEndian.Uint32(v))
	case Int64:
		i := int64(binary.BigEndian.Uint64(v))
		if !c.scaled() {
			return i, nil
		}
		raw = float64(i)
	case Uint64:
		u := binary.BigEndian.Uint64(v)
		if !c.scaled() && u <= math.MaxInt64 {
			return int64(u), nil
		}
		// Beyond an int64, the value is given as a float64 (rounded).
		return c.apply(float64(u)), nil
	case Float32:
		raw = float64(math.Float32frombits(binary.BigEndian.Uint32(v)))
	case Float64:
		raw = math.Float64frombits(binary.BigEndian.Uint64(v))
	default:
		return nil, fmt.Errorf("decode: unknown type %q", c.Type)
	}
	if !c.scaled() {
		if c.Type.integer() {
			return int64(raw), nil
		}
		return raw, nil // keeps -0
	}
	return c.apply(raw), nil
}

// apply scales raw. A scale of 1/n (0.1, 0.01) divides by n, which gives
// the float nearest the decimal (215 * 0.1 = 21.500000000000004, 215 / 10
// = 21.5).
func (c Codec) apply(raw float64) float64 {
	if inv := 1 / c.Scale; math.Abs(inv) > 1 && inv == math.Round(inv) {
		return raw/inv + c.Offset
	}
	return raw*c.Scale + c.Offset
}

// Encode encodes v (a bool, a number or a string) into the wire bytes of
// the value's registers, applying the inverse scaling, rounding for integer
// types. It fails when v has the wrong type or does not fit the encoding.
// A Bool in a register is encoded into the register cur (its other bits
// kept).
func (c Codec) Encode(v any, cur uint16) ([]byte, error) {
	out := make([]byte, 2*c.Registers())
	switch c.Type {
	case Bool:
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("want a bool, got %T", v)
		}
		r := cur &^ (1 << uint(c.Bit))
		if b {
			r |= 1 << uint(c.Bit)
		}
		binary.BigEndian.PutUint16(out, r)
		return normalize(out, c.Order, c.Type), nil
	case String:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("want a string, got %T", v)
		}
		if len(s) > len(out) {
			return nil, fmt.Errorf("string of %d bytes does not fit %d registers", len(s), c.Length)
		}
		copy(out, s)
		return normalize(out, c.Order, c.Type), nil
	}
	f, err := toFloat(v)
	if err != nil {
		return nil, err
	}
	raw := (f - c.Offset) / c.Scale
	if math.IsNaN(raw) || math.IsInf(raw, 0) {
		return nil, fmt.Errorf("value %v is not finite", v)
	}
	if c.Type.integer() {
		raw = math.Round(raw)
		lo, hi := c.Type.bounds()
		wide := c.Type == Int64 || c.Type == Uint64 // hi rounds up to 2^63 or 2^64
		if raw < lo || raw > hi || (wide && raw >= hi) {
			return nil, fmt.Errorf("value %v (raw %v) out of range of %s", v, raw, c.Type)
		}
	}
	// Exact integers beyond 2^53 lose nothing when given as int64.
	i, isInt := v.(int64)
	exact := isInt && !c.scaled()
	switch c.Type {
	case Int16:
		binary.BigEndian.PutUint16(out, uint16(int16(raw)))
	case Uint16:
		binary.BigEndian.PutUint16(out, uint16(raw))
	case Int32:
		binary.BigEndian.PutUint32(out, uint32(int32(raw)))
	case Uint32:
		binary.BigEndian.PutUint32(out, uint32(raw))
	case Int64:
		if exact {
			binary.BigEndian.PutUint64(out, uint64(i))
		} else {
			binary.BigEndian.PutUint64(out, uint64(int64(raw)))
		}
	case Uint64:
		if exact {
			if i < 0 {
				return nil, fmt.Errorf("value %v out of range of %s", v, c.Type)
			}
			binary.BigEndian.PutUint64(out, uint64(i))
		} else if raw >= 1<<63 {
			binary.BigEndian.PutUint64(out, uint64(raw-(1<<63))+1<<63)
		} else {
			binary.BigEndian.PutUint64(out, uint64(raw))
		}
	case Float32:
		if math.Abs(raw) > math.MaxFloat32 {
			return nil, fmt.Errorf("value %v out of range of float32", v)
		}
		binary.BigEndian.PutUint32(out, math.Float32bits(float32(raw)))
	case Float64:
		binary.BigEndian.PutUint64(out, math.Float64bits(raw))
	default:
		return nil, fmt.Errorf("encode: unknown type %q", c.Type)
	}
	return normalize(out, c.Order, c.Type), nil
}

// toFloat accepts the numbers model.Coerce and TOML produce.
func toFloat(v any) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case float32:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case int:
		return float64(x), nil
	case uint16:
		return float64(x), nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	}
	return 0, fmt.Errorf("want a number, got %T", v)
}

// registersOf converts wire bytes to register values.
func registersOf(b []byte) []uint16 {
	r := make([]uint16, len(b)/2)
	for i := range r {
		r[i] = binary.BigEndian.Uint16(b[2*i:])
	}
	return r
}
