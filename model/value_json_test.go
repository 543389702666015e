package model

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// referenceJSON is how Value was encoded before AppendJSON: through
// encoding/json's reflection over wireValue. AppendJSON must write the
// same bytes.
func referenceJSON(v Value) ([]byte, error) {
	q := v.Quality
	if q == "" {
		q = QualityGood
	}
	return json.Marshal(wireValue{V: v.V, TS: v.At.UnixMilli(), Q: q})
}

// randomValues returns edge cases and n random values of what adapters
// report, and of what TypeJSON attributes may hold.
func randomValues(n int, seed uint64) []Value {
	r := rand.New(rand.NewPCG(seed, 7))
	at := time.UnixMilli(1764150000123)
	vs := []any{
		nil, true, false, int64(0), int64(-40), int64(math.MaxInt64), int64(math.MinInt64),
		0.0, 21.5, -0.1, 1e-7, 1e21, 123.456e-9, math.MaxFloat64, math.SmallestNonzeroFloat64,
		"", "on", "<b>&</b>", "line\nbreak", "\u2028", "\xff\xfe", "日本",
		map[string]any{"z": 1.0, "a": []any{"x", false}}, []any{1.0, "two"}, json.Number("3.0"), uint16(7), int(-2),
	}
	var out []Value
	for _, q := range []Quality{"", QualityGood, QualityUncertain, QualityBad, "odd<q>"} {
		for _, v := range vs {
			out = append(out, Value{V: v, At: at, Quality: q})
		}
	}
	for _, t := range []time.Time{{}, time.Unix(0, 0), time.UnixMilli(-1), time.Unix(1<<40, 999999999), time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)} {
		out = append(out, Value{V: int64(1), At: t})
	}
	for range n {
		var v any
		switch r.IntN(5) {
		case 0:
			v = int64(r.Uint64())
		case 1:
			v = math.Float64frombits(r.Uint64())
		case 2:
			v = float64(r.IntN(1<<16)) * math.Pow(10, float64(r.IntN(40)-20))
		case 3:
			v = r.IntN(2) == 0
		case 4:
			b := make([]byte, r.IntN(10))
			for i := range b {
				b[i] = byte(r.IntN(256))
			}
			v = string(b)
		}
		out = append(out, Value{V: v, At: time.UnixMilli(r.Int64N(1 << 45)), Quality: QualityGood})
	}
	return out
}

// TestValueAppendJSONMatchesReflection proves AppendJSON byte-identical to
// the encoding/json form it replaced, errors included (NaN, infinities).
func TestValueAppendJSONMatchesReflection(t *testing.T) {
	vals := randomValues(100000, 1)
	vals = append(vals, Value{V: math.NaN()}, Value{V: math.Inf(-1)}, Value{V: make(chan int)})
	for _, v := range vals {
		want, wantErr := referenceJSON(v)
		got, err := v.AppendJSON([]byte("x"))
		if (err != nil) != (wantErr != nil) || err != nil && err.Error() != wantErr.Error() {
			t.Fatalf("AppendJSON(%#v) error = %v, want %v", v, err, wantErr)
		}
		if err != nil {
			if string(got) != "x" {
				t.Fatalf("AppendJSON(%#v) failed but changed dst to %q", v, got)
			}
			continue
		}
		if !bytes.Equal(got[1:], want) {
			t.Fatalf("AppendJSON(%#v) = %s, want %s", v, got[1:], want)
		}
		// And inside a map, as attribute reports carry values.
		m := map[string]Value{"b": v, "a": v}
		gotM, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if wantM := []byte(`{"a":` + string(want) + `,"b":` + string(want) + `}`); !bytes.Equal(gotM, wantM) {
			t.Fatalf("json.Marshal(map of %#v) = %s, want %s", v, gotM, wantM)
		}
	}
}

func FuzzValueAppendJSON(f *testing.F) {
	f.Add(int64(3), 21.5, "on", int64(1764150000123), uint8(0))
	f.Fuzz(func(t *testing.T, i int64, x float64, s string, ms int64, kind uint8) {
		var v any
		switch kind % 4 {
		case 0:
			v = i
		case 1:
			v = x
		case 2:
			v = s
		case 3:
			v = i%2 == 0
		}
		val := Value{V: v, At: time.UnixMilli(ms), Quality: Quality(s)}
		want, wantErr := referenceJSON(val)
		got, err := val.AppendJSON(nil)
		if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) && err == nil {
			t.Fatalf("AppendJSON(%#v) = %s, %v; want %s, %v", val, got, err, want, wantErr)
		}
	})
}
