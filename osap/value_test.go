package osap

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/osapgw/osapgw/model"
)

// Quality and Value from the model, under short names for the tables.
type (
	Value   = model.Value
	Quality = model.Quality
)

const (
	QualityGood      = model.QualityGood
	QualityUncertain = model.QualityUncertain
	QualityBad       = model.QualityBad
)

// referenceJSON is how a value was encoded before AppendValue: through
// encoding/json's reflection over wireValue, or wireBad for a bad value
// (no "v", the reason in "err"). AppendValue must write the same bytes.
func referenceJSON(v Value) ([]byte, error) {
	q := v.Quality
	if q == "" {
		q = QualityGood
	}
	if q == QualityBad {
		return json.Marshal(wireBad{TS: v.At.UnixMilli(), Q: q, Err: v.Err})
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
	errs := []string{"", "exception 2 (illegal data address)", "<b>&</b> \"q\"\n", "\xff\u2028日本"}
	var out []Value
	for _, q := range []Quality{"", QualityGood, QualityUncertain, QualityBad, "odd<q>"} {
		for i, v := range vs {
			out = append(out, Value{V: v, At: at, Quality: q, Err: errs[i%len(errs)]})
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
		if r.IntN(8) == 0 {
			out = append(out, model.BadValue(time.UnixMilli(r.Int64N(1<<45)), fmt.Sprint(v)))
		}
	}
	return out
}

// TestAppendValueMatchesReflection proves AppendValue byte-identical to
// the encoding/json form it replaced, errors included (NaN, infinities).
func TestAppendValueMatchesReflection(t *testing.T) {
	vals := randomValues(100000, 1)
	vals = append(vals, Value{V: math.NaN()}, Value{V: math.Inf(-1)}, Value{V: make(chan int)})
	for _, v := range vals {
		want, wantErr := referenceJSON(v)
		got, err := AppendValue([]byte("x"), v)
		if (err != nil) != (wantErr != nil) || err != nil && err.Error() != wantErr.Error() {
			t.Fatalf("AppendValue(%#v) error = %v, want %v", v, err, wantErr)
		}
		if err != nil {
			if string(got) != "x" {
				t.Fatalf("AppendValue(%#v) failed but changed dst to %q", v, got)
			}
			continue
		}
		if !bytes.Equal(got[1:], want) {
			t.Fatalf("AppendValue(%#v) = %s, want %s", v, got[1:], want)
		}
		// And inside a map, as attribute reports carry values.
		m := Values{"b": v, "a": v}
		gotM, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if wantM := []byte(`{"a":` + string(want) + `,"b":` + string(want) + `}`); !bytes.Equal(gotM, wantM) {
			t.Fatalf("json.Marshal(map of %#v) = %s, want %s", v, gotM, wantM)
		}
	}
}

func FuzzAppendValue(f *testing.F) {
	f.Add(int64(3), 21.5, "on", int64(1764150000123), uint8(0), "")
	f.Add(int64(3), 21.5, "bad", int64(1764150000123), uint8(1), "exception 2 (illegal data address)")
	f.Fuzz(func(t *testing.T, i int64, x float64, s string, ms int64, kind uint8, reason string) {
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
		val := Value{V: v, At: time.UnixMilli(ms), Quality: Quality(s), Err: reason}
		want, wantErr := referenceJSON(val)
		got, err := AppendValue(nil, val)
		if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) && err == nil {
			t.Fatalf("AppendValue(%#v) = %s, %v; want %s, %v", val, got, err, want, wantErr)
		}
	})
}

func TestValuesJSON(t *testing.T) {
	at := time.UnixMilli(1764150000000)
	b, err := json.Marshal(Values{"temperature": {V: 21.5, At: at}})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"temperature":{"v":21.5,"ts":1764150000000,"q":"good"}}`
	if string(b) != want {
		t.Fatalf("Marshal = %s, want %s", b, want)
	}
	var back Values
	if err := json.Unmarshal([]byte(`{"a":{"v":3,"ts":5,"q":"bad"},"b":{"v":2.5,"ts":6}}`), &back); err != nil {
		t.Fatal(err)
	}
	wantBack := Values{"a": {V: int64(3), At: time.UnixMilli(5), Quality: QualityBad}, "b": {V: 2.5, At: time.UnixMilli(6)}}
	if diff := cmp.Diff(wantBack, back); diff != "" {
		t.Fatalf("Unmarshal mismatch (-want +got):\n%s", diff)
	}
	for _, bad := range []string{`[1]`, `{"a":1}`, `{"a":{"v":`} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("Unmarshal(%s) = nil error, want one", bad)
		}
	}
}

// TestBadValueJSON: a bad value travels without "v", with its reason,
// and decodes back to the same value.
func TestBadValueJSON(t *testing.T) {
	at := time.UnixMilli(1764150000000)
	tests := []struct {
		name string
		in   Values
		want string
	}{
		{name: "bad", in: Values{"energy": model.BadValue(at, "exception 2 (illegal data address)")},
			want: `{"energy":{"ts":1764150000000,"q":"bad","err":"exception 2 (illegal data address)"}}`},
		{name: "bad keeps no reading", in: Values{"energy": {V: 3.5, At: at, Quality: QualityBad, Err: "timeout"}},
			want: `{"energy":{"ts":1764150000000,"q":"bad","err":"timeout"}}`},
		{name: "good and bad side by side", in: Values{"power": {V: 1.5, At: at}, "energy": model.BadValue(at, "<x>")},
			want: `{"energy":{"ts":1764150000000,"q":"bad","err":"\u003cx\u003e"},"power":{"v":1.5,"ts":1764150000000,"q":"good"}}`},
		{name: "reason of a good value is not sent", in: Values{"power": {V: int64(2), At: at, Err: "stale"}},
			want: `{"power":{"v":2,"ts":1764150000000,"q":"good"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.in)
			if err != nil || string(b) != tt.want {
				t.Fatalf("Marshal = %s, %v, want %s", b, err, tt.want)
			}
			var back Values
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			for name, v := range back {
				in := tt.in[name]
				if v.Quality == QualityBad && (v.V != nil || v.Err != in.Err || !v.At.Equal(in.At)) {
					t.Errorf("Unmarshal(%s)[%q] = %+v, want no reading, err %q", b, name, v, in.Err)
				}
				if v.Quality != QualityBad && v.Err != "" {
					t.Errorf("Unmarshal(%s)[%q] = %+v, want no reason", b, name, v)
				}
			}
		})
	}
}

// referenceEventBody is how the bridge encoded an event before
// EventReport: json.Marshal of the occurrence with its capture time as ts.
func referenceEventBody(ev model.EventOccurrence) ([]byte, error) {
	return json.Marshal(struct {
		Resource string         `json:"resource"`
		Event    string         `json:"event"`
		Params   map[string]any `json:"params,omitempty"`
		TS       int64          `json:"ts"`
	}{ev.Resource, ev.Event, ev.Params, ev.At.UnixMilli()})
}

func TestEventReportJSON(t *testing.T) {
	at := time.UnixMilli(1764150000000)
	tests := []struct {
		name string
		ev   model.EventOccurrence
		want string
	}{
		{"motion", model.EventOccurrence{Resource: "video/1", Event: "motion", Params: map[string]any{"state": true}, At: at},
			`{"resource":"video/1","event":"motion","params":{"state":true},"ts":1764150000000}`},
		{"no params", model.EventOccurrence{Resource: "main", Event: "online", At: at},
			`{"resource":"main","event":"online","ts":1764150000000}`},
		{"empty params", model.EventOccurrence{Resource: "main", Event: "online", Params: map[string]any{}, At: at},
			`{"resource":"main","event":"online","ts":1764150000000}`},
		{"escaping", model.EventOccurrence{Resource: "a<b>&\"c\"", Event: "é\n", Params: map[string]any{"z": 1e21, "a": []any{"<x>", 1e-7, int64(-3)}, "m": map[string]any{"k": nil}}, At: at},
			`{"resource":"a\u003cb\u003e\u0026\"c\"","event":"é\n","params":{"a":["\u003cx\u003e",1e-7,-3],"m":{"k":null},"z":1e+21},"ts":1764150000000}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewEventReport(tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.AppendJSON(nil)
			if err != nil || string(got) != tt.want {
				t.Fatalf("AppendJSON = %s, %v, want %s", got, err, tt.want)
			}
			ref, err := referenceEventBody(tt.ev)
			if err != nil || string(ref) != tt.want {
				t.Fatalf("encoding/json wrote %s, %v; the table says %s", ref, err, tt.want)
			}
			viaJSON, err := json.Marshal(r)
			if err != nil || string(viaJSON) != tt.want {
				t.Fatalf("json.Marshal(EventReport) = %s, %v, want %s", viaJSON, err, tt.want)
			}
			var back EventReport
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatal(err)
			}
			occ, err := back.Occurrence()
			if err != nil {
				t.Fatal(err)
			}
			if occ.Resource != tt.ev.Resource || occ.Event != tt.ev.Event || !occ.At.Equal(tt.ev.At) || len(occ.Params) != len(tt.ev.Params) {
				t.Fatalf("Occurrence() = %+v, want %+v", occ, tt.ev)
			}
		})
	}
	if _, err := NewEventReport(model.EventOccurrence{Event: "x", Params: map[string]any{"c": make(chan int)}}); err == nil {
		t.Error("NewEventReport with a channel parameter = nil error, want one")
	}
	for _, bad := range []string{`[1]`, `{"a":`, `"x"`} {
		if _, err := (EventReport{Event: "x", Params: []byte(bad)}).AppendJSON(nil); err == nil {
			t.Errorf("AppendJSON with params %s = nil error, want one", bad)
		}
	}
}

// TestEventReportPicturesJSON: the picture fields of binding 2.7 are
// written as encoding/json writes them, and left out when empty.
func TestEventReportPicturesJSON(t *testing.T) {
	tests := []struct {
		name string
		r    EventReport
		want string
	}{
		{"one picture", EventReport{Resource: "video/1", Event: "motion", TS: 1, Pictures: []string{"08bde5d3210e2f0153711b3683b41f92"}},
			`{"resource":"video/1","event":"motion","ts":1,"pictures":["08bde5d3210e2f0153711b3683b41f92"]}`},
		{"two pictures", EventReport{Resource: "video/1", Event: "motion", Params: []byte(`{"state":true}`), TS: 2, Pictures: []string{"a", "b<c>"}},
			`{"resource":"video/1","event":"motion","params":{"state":true},"ts":2,"pictures":["a","b\u003cc\u003e"]}`},
		{"empty list", EventReport{Resource: "r", Event: "e", TS: 3, Pictures: []string{}},
			`{"resource":"r","event":"e","ts":3}`},
		{"error", EventReport{Resource: "r", Event: "e", TS: 4, PictureError: "snapshot: camera said \"503\"\n"},
			`{"resource":"r","event":"e","ts":4,"picture_error":"snapshot: camera said \"503\"\n"}`},
		{"both", EventReport{Resource: "r", Event: "e", TS: 5, Pictures: []string{"x"}, PictureError: "late"},
			`{"resource":"r","event":"e","ts":5,"pictures":["x"],"picture_error":"late"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.r.AppendJSON(nil)
			if err != nil || string(got) != tt.want {
				t.Fatalf("AppendJSON = %s, %v, want %s", got, err, tt.want)
			}
			viaJSON, err := json.Marshal(tt.r)
			if err != nil || string(viaJSON) != tt.want {
				t.Fatalf("json.Marshal(EventReport) = %s, %v, want %s", viaJSON, err, tt.want)
			}
			var back EventReport
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatal(err)
			}
			if len(back.Pictures) != len(tt.r.Pictures) || back.PictureError != tt.r.PictureError {
				t.Fatalf("decoded %+v, want %+v", back, tt.r)
			}
		})
	}
}

// FuzzEventReportPictures checks AppendJSON against encoding/json for
// any picture ids and error text.
func FuzzEventReportPictures(f *testing.F) {
	f.Add("08bde5d3210e2f0153711b3683b41f92", "", "timeout <5s>", int64(1))
	f.Add("", "\u2028", "\xff", int64(-1))
	f.Fuzz(func(t *testing.T, a, b, perr string, ts int64) {
		r := EventReport{Resource: "video/1", Event: "motion", TS: ts, PictureError: perr}
		if a != "" || b != "" {
			r.Pictures = []string{a, b}
		}
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.AppendJSON(nil)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON(%#v) = %s, %v; want %s", r, got, err, want)
		}
	})
}

func FuzzEventReport(f *testing.F) {
	f.Add("video/1", "motion", "state", "<on>", 21.5, int64(1764150000123))
	f.Fuzz(func(t *testing.T, res, name, key, s string, x float64, ms int64) {
		ev := model.EventOccurrence{Resource: res, Event: name, Params: map[string]any{key: s, key + "x": x}, At: time.UnixMilli(ms)}
		want, wantErr := referenceEventBody(ev)
		r, err := NewEventReport(ev)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("NewEventReport(%#v) error %v, encoding/json's %v", ev, err, wantErr)
		}
		if err != nil {
			return
		}
		got, err := r.AppendJSON(nil)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON(%#v) = %s, %v; want %s", ev, got, err, want)
		}
	})
}
