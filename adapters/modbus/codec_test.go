package modbus

import (
	"encoding/hex"
	"math"
	"strings"
	"testing"
)

// wire gives the expected wire bytes per order; values were worked out by
// hand from the definition of the orders (A = most significant byte).
type wire map[Order]string

func TestCodecEveryTypeAndOrder(t *testing.T) {
	tests := []struct {
		name   string
		codec  Codec
		value  any
		wire   wire
		decode any // when decoding gives another Go type than value
	}{
		{name: "bool bit 3", codec: Codec{Type: Bool, Bit: 3, Scale: 1}, value: true,
			wire: wire{ABCD: "0008", CDAB: "0008", BADC: "0800", DCBA: "0800"}},
		{name: "bool bit 15", codec: Codec{Type: Bool, Bit: 15, Scale: 1}, value: true,
			wire: wire{ABCD: "8000", CDAB: "8000", BADC: "0080", DCBA: "0080"}},
		{name: "int16", codec: Codec{Type: Int16, Scale: 1}, value: int64(-2),
			wire: wire{ABCD: "fffe", CDAB: "fffe", BADC: "feff", DCBA: "feff"}},
		{name: "uint16", codec: Codec{Type: Uint16, Scale: 1}, value: int64(0x1122),
			wire: wire{ABCD: "1122", CDAB: "1122", BADC: "2211", DCBA: "2211"}},
		{name: "int32", codec: Codec{Type: Int32, Scale: 1}, value: int64(0x11223344),
			wire: wire{ABCD: "11223344", DCBA: "44332211", BADC: "22114433", CDAB: "33441122"}},
		{name: "int32 negative", codec: Codec{Type: Int32, Scale: 1}, value: int64(-2),
			wire: wire{ABCD: "fffffffe", DCBA: "feffffff", BADC: "fffffeff", CDAB: "fffeffff"}},
		{name: "uint32", codec: Codec{Type: Uint32, Scale: 1}, value: int64(0xA1223344),
			wire: wire{ABCD: "a1223344", DCBA: "443322a1", BADC: "22a14433", CDAB: "3344a122"}},
		{name: "int64", codec: Codec{Type: Int64, Scale: 1}, value: int64(0x1122334455667788),
			wire: wire{ABCD: "1122334455667788", DCBA: "8877665544332211", BADC: "2211443366558877", CDAB: "7788556633441122"}},
		{name: "uint64", codec: Codec{Type: Uint64, Scale: 1}, value: int64(0x0102030405060708),
			wire: wire{ABCD: "0102030405060708", DCBA: "0807060504030201", BADC: "0201040306050807", CDAB: "0708050603040102"}},
		{name: "float32", codec: Codec{Type: Float32, Scale: 1}, value: 1.5,
			wire: wire{ABCD: "3fc00000", DCBA: "0000c03f", BADC: "c03f0000", CDAB: "00003fc0"}},
		{name: "float64", codec: Codec{Type: Float64, Scale: 1}, value: -2.25,
			wire: wire{ABCD: "c002000000000000", DCBA: "00000000000002c0", BADC: "02c0000000000000", CDAB: "000000000000c002"}},
		{name: "string", codec: Codec{Type: String, Length: 3, Scale: 1}, value: "ABCD",
			wire: wire{ABCD: "414243440000", CDAB: "414243440000", BADC: "424144430000", DCBA: "424144430000"}},
		{name: "int16 scaled", codec: Codec{Type: Int16, Scale: 0.1}, value: 21.5,
			wire: wire{ABCD: "00d7", CDAB: "00d7", BADC: "d700", DCBA: "d700"}},
		{name: "uint16 scale and offset", codec: Codec{Type: Uint16, Scale: 0.5, Offset: -40}, value: 10.0,
			wire: wire{ABCD: "0064", CDAB: "0064", BADC: "6400", DCBA: "6400"}},
	}
	for _, tt := range tests {
		for _, o := range Orders {
			t.Run(tt.name+"/"+string(o), func(t *testing.T) {
				c := tt.codec
				c.Order = o
				if c.Type != Bool {
					c.Bit = -1
				}
				want, _ := hex.DecodeString(tt.wire[o])
				got, err := c.Encode(tt.value, 0)
				if err != nil {
					t.Fatalf("Encode(%v) error %v", tt.value, err)
				}
				if hex.EncodeToString(got) != tt.wire[o] {
					t.Errorf("Encode(%v) = %x, want %x", tt.value, got, want)
				}
				back, err := c.Decode(want)
				if err != nil {
					t.Fatalf("Decode(%x) error %v", want, err)
				}
				wantBack := tt.value
				if tt.decode != nil {
					wantBack = tt.decode
				}
				if f, ok := back.(float64); ok {
					if w, _ := toFloat(wantBack); math.Abs(f-w) > 1e-9 {
						t.Errorf("Decode(%x) = %v, want %v", want, back, wantBack)
					}
				} else if back != wantBack {
					t.Errorf("Decode(%x) = %v (%T), want %v (%T)", want, back, back, wantBack, wantBack)
				}
			})
		}
	}
}

func TestEncodeRange(t *testing.T) {
	tests := []struct {
		name    string
		codec   Codec
		value   any
		wantErr string
	}{
		{name: "int16 too big", codec: Codec{Type: Int16, Scale: 1, Order: ABCD}, value: 40000.0, wantErr: "out of range"},
		{name: "uint16 negative", codec: Codec{Type: Uint16, Scale: 1, Order: ABCD}, value: int64(-1), wantErr: "out of range"},
		{name: "scaled past int16", codec: Codec{Type: Int16, Scale: 0.1, Order: ABCD}, value: 3276.8, wantErr: "out of range"},
		{name: "uint32 too big", codec: Codec{Type: Uint32, Scale: 1, Order: ABCD}, value: 5e9, wantErr: "out of range"},
		{name: "int64 2^63", codec: Codec{Type: Int64, Scale: 1, Order: ABCD}, value: 9.3e18, wantErr: "out of range"},
		{name: "float32 huge", codec: Codec{Type: Float32, Scale: 1, Order: ABCD}, value: 1e39, wantErr: "out of range"},
		{name: "string too long", codec: Codec{Type: String, Length: 1, Scale: 1, Order: ABCD}, value: "abc", wantErr: "does not fit"},
		{name: "bool wants bool", codec: Codec{Type: Bool, Bit: 0, Scale: 1, Order: ABCD}, value: 1.0, wantErr: "want a bool"},
		{name: "number wants number", codec: Codec{Type: Uint16, Scale: 1, Order: ABCD}, value: "7", wantErr: "want a number"},
		{name: "NaN", codec: Codec{Type: Float64, Scale: 1, Order: ABCD}, value: math.NaN(), wantErr: "not finite"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.codec.Encode(tt.value, 0)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Encode(%v) = %x, %v, want error %q", tt.value, got, err, tt.wantErr)
			}
		})
	}
}

func TestBoolKeepsOtherBits(t *testing.T) {
	c := Codec{Type: Bool, Bit: 2, Scale: 1, Order: ABCD}
	got, err := c.Encode(false, 0xFFFF)
	if err != nil || hex.EncodeToString(got) != "fffb" {
		t.Fatalf("Encode(false, ffff) = %x, %v, want fffb", got, err)
	}
}

func TestDecodeShort(t *testing.T) {
	c := Codec{Type: Float64, Scale: 1, Order: ABCD}
	if v, err := c.Decode([]byte{1, 2, 3}); err == nil {
		t.Fatalf("Decode(3 bytes) = %v, want an error", v)
	}
}

// FuzzDecode checks that the register decoder never panics and that what
// it decodes encodes back to the same registers.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{0x3f, 0xc0, 0, 0, 1, 2, 3, 4}, uint8(0), uint8(0), uint8(3))
	f.Add([]byte{0xff, 0xfe}, uint8(1), uint8(3), uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, ti, oi, n uint8) {
		typ := Types[int(ti)%len(Types)]
		c := Codec{Type: typ, Order: Orders[int(oi)%len(Orders)], Bit: -1, Length: int(n%8) + 1, Scale: 1}
		if typ == Bool {
			c.Bit = int(n % 16)
		}
		v, err := c.Decode(b)
		if err != nil {
			if len(b) >= 2*c.Registers() {
				t.Fatalf("Decode(%x) as %s error %v with enough bytes", b, typ, err)
			}
			return
		}
		if typ == String || typ == Bool {
			return // strings lose trailing NULs and spaces, bools the other bits
		}
		if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0) || typ == Uint64) {
			return // NaN payloads, infinities (refused by Encode) and uint64 beyond 2^63 do not round-trip through float64
		}
		enc, err := c.Encode(v, 0)
		if err != nil {
			t.Fatalf("Encode(Decode(%x) = %v) as %s %s error %v", b, v, typ, c.Order, err)
		}
		if string(enc) != string(b[:2*c.Registers()]) {
			t.Fatalf("Encode(Decode(%x)) = %x as %s %s (value %v)", b[:2*c.Registers()], enc, typ, c.Order, v)
		}
	})
}

func TestScaleGivesNearestDecimal(t *testing.T) {
	tests := []struct {
		raw   []byte
		scale float64
		want  float64
	}{
		{raw: []byte{0x00, 0xd7}, scale: 0.1, want: 21.5},
		{raw: []byte{0x00, 0x64}, scale: 0.1, want: 10},
		{raw: []byte{0x00, 0x65}, scale: 0.1, want: 10.1},
		{raw: []byte{0x04, 0xd2}, scale: 0.01, want: 12.34},
		{raw: []byte{0x00, 0x03}, scale: 2.5, want: 7.5},
	}
	for _, tt := range tests {
		c := Codec{Type: Uint16, Order: ABCD, Bit: -1, Scale: tt.scale}
		if got, err := c.Decode(tt.raw); err != nil || got != tt.want {
			t.Errorf("Decode(%x) scale %v = %v, %v, want exactly %v", tt.raw, tt.scale, got, err, tt.want)
		}
	}
}
