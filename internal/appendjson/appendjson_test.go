package appendjson

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
)

// values returns the edge cases and n random values of every kind Any
// handles, and of some it hands to encoding/json.
func values(n int, seed uint64) []any {
	r := rand.New(rand.NewPCG(seed, 42))
	out := []any{
		nil, true, false,
		int64(0), int64(-1), int64(math.MaxInt64), int64(math.MinInt64), int64(1) << 53, int64(1)<<53 + 1,
		0.0, math.Copysign(0, -1), 1.0, -1.5, 0.1, 1e-6, 1e-7, 9.999999e-7, 1e20, 1e21, 1e21 - 65536, 123456789012345680000.0,
		math.MaxFloat64, math.SmallestNonzeroFloat64, -math.MaxFloat64, 5e-324, 1.7976931348623157e308, 2.5e-8, 1e-100, 1e100,
		float64(math.MaxUint16), 65535.0 * 0.1, 21.5,
		"", "a", "r001", "holding", "main", `quote"`, `back\slash`, "<tag>", "a&b", "tab\tnl\ncr\r", "\b\f\x00\x01\x1f\x7f",
		"é", "日本語", "\u2028\u2029", "\xff", "bad \xc3\x28 utf8", "\xed\xa0\x80", "~ !#$%'()*+,-./:;=?@[]^_`{|}",
		// Handed to encoding/json:
		int(7), int32(-3), uint16(65535), uint64(math.MaxUint64), float32(0.1), float32(1e-7), json.Number("12.50"),
		map[string]any{"b": 1.0, "a": []any{"x", nil, true}}, []any{}, map[string]any{}, []byte("raw"),
		json.RawMessage(` { "x" : 1 } `),
	}
	for range n {
		switch r.IntN(6) {
		case 0:
			out = append(out, int64(r.Uint64()))
		case 1:
			out = append(out, math.Float64frombits(r.Uint64()))
		case 2:
			// Decimal-looking numbers over the whole range of exponents.
			out = append(out, (r.Float64()*2-1)*math.Pow(10, float64(r.IntN(60)-30)))
		case 3:
			b := make([]byte, r.IntN(12))
			for i := range b {
				b[i] = byte(r.IntN(256))
			}
			out = append(out, string(b))
		case 4:
			b := make([]byte, r.IntN(12))
			for i := range b {
				b[i] = byte(0x20 + r.IntN(0x5f)) // printable ASCII
			}
			out = append(out, string(b))
		case 5:
			out = append(out, float64(r.IntN(1<<16))*math.Pow(10, float64(-r.IntN(4))))
		}
	}
	return out
}

// check compares Any with json.Marshal for x, errors included.
func check(t *testing.T, x any) {
	t.Helper()
	want, wantErr := json.Marshal(x)
	got, err := Any([]byte("prefix"), x)
	if (err != nil) != (wantErr != nil) || err != nil && err.Error() != wantErr.Error() {
		t.Fatalf("Any(%#v) error = %v, want %v", x, err, wantErr)
	}
	if err != nil {
		return
	}
	if !bytes.HasPrefix(got, []byte("prefix")) || !bytes.Equal(got[len("prefix"):], want) {
		t.Fatalf("Any(%#v) = %s, want prefix%s", x, got, want)
	}
}

func TestAnyMatchesEncodingJSON(t *testing.T) {
	for _, x := range values(200000, 1) {
		check(t, x)
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		check(t, f)
	}
	check(t, make(chan int)) // unsupported type: encoding/json's error
}

func TestString(t *testing.T) {
	for _, x := range values(20000, 2) {
		s, ok := x.(string)
		if !ok {
			continue
		}
		want, _ := json.Marshal(s)
		if got := String(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("String(%q) = %s, want %s", s, got, want)
		}
	}
}

func FuzzString(f *testing.F) {
	for _, s := range []string{"", "r001", "<&>", "\u2028", "\xff", "\"\\\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { check(t, s) })
}

func FuzzFloat(f *testing.F) {
	for _, v := range []float64{0, 1e-7, 1e21, 21.5, -0.000001} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v float64) { check(t, v) })
}

func FuzzInt(f *testing.F) {
	f.Add(int64(0))
	f.Add(int64(math.MinInt64))
	f.Fuzz(func(t *testing.T, v int64) { check(t, v) })
}
