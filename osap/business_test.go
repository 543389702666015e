package osap

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/osapgw/osapgw/model"
)

// refValue encodes a model.Value as it was encoded before the hand-written
// encoder: encoding/json's reflection over the wire form (a bad value:
// no "v", the reason in "err").
type refValue model.Value

func (v refValue) MarshalJSON() ([]byte, error) {
	q := v.Quality
	if q == "" {
		q = model.QualityGood
	}
	if q == model.QualityBad {
		return json.Marshal(struct {
			TS  int64         `json:"ts"`
			Q   model.Quality `json:"q"`
			Err string        `json:"err"`
		}{v.At.UnixMilli(), q, v.Err})
	}
	return json.Marshal(struct {
		V  any           `json:"v"`
		TS int64         `json:"ts"`
		Q  model.Quality `json:"q,omitempty"`
	}{v.V, v.At.UnixMilli(), q})
}

// referenceMessage is EncodeMessage as it was: json.Marshal of the header
// and of the body, attribute values through refValue.
func referenceMessage(h Header, body any) ([]byte, error) {
	if r, ok := body.(AttributeReport); ok {
		var vals map[string]refValue
		if r.Values != nil {
			vals = map[string]refValue{}
			for k, v := range r.Values {
				vals[k] = refValue(v)
			}
		}
		body = struct {
			Resource string              `json:"resource"`
			Values   map[string]refValue `json:"values"`
		}{r.Resource, vals}
	}
	gen, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	var app []byte
	if body != nil {
		if app, err = json.Marshal(body); err != nil {
			return nil, err
		}
	}
	out := binary.BigEndian.AppendUint16(nil, uint16(len(gen)))
	out = append(out, gen...)
	return append(out, app...), nil
}

// randomReports returns attribute reports like the adapters send (many
// numeric values, names of any bytes), and edge cases.
func randomReports(n int, seed uint64) []AttributeReport {
	r := rand.New(rand.NewPCG(seed, 11))
	str := func(max int) string {
		b := make([]byte, r.IntN(max+1))
		for i := range b {
			if r.IntN(8) == 0 {
				b[i] = byte(r.IntN(256))
			} else {
				b[i] = byte('a' + r.IntN(26))
			}
		}
		return string(b)
	}
	at := time.UnixMilli(1764150000000)
	out := []AttributeReport{
		{Resource: "main"},
		{Resource: "main", Values: map[string]model.Value{}},
		{Resource: "<&>", Values: map[string]model.Value{"r2": {V: int64(2), At: at}, "r10": {V: 21.5, At: at}, "R1": {V: "x", At: at, Quality: model.QualityBad}, "R0": model.BadValue(at, "exception 2 (illegal data address)")}},
		{Resource: "main", Values: map[string]model.Value{"j": {V: map[string]any{"b": []any{1.0, nil}, "a": "<"}, At: at}}},
	}
	for range n {
		rep := AttributeReport{Resource: str(6), Values: map[string]model.Value{}}
		for range r.IntN(120) {
			var v any
			switch r.IntN(5) {
			case 0:
				v = int64(r.IntN(1 << 16))
			case 1:
				v = float64(r.IntN(1<<16)) / 10
			case 2:
				v = math.Float64frombits(r.Uint64())
			case 3:
				v = r.IntN(2) == 1
			case 4:
				v = str(10)
			}
			rep.Values[fmt.Sprintf("r%03d", r.IntN(1000))+str(2)] = model.Value{V: v, At: at.Add(time.Duration(r.IntN(1e6)) * time.Millisecond)}
		}
		out = append(out, rep)
	}
	return out
}

// TestEncodeMessageMatchesEncodingJSON proves the hand-written encoding of
// headers and attribute reports byte-identical to encoding/json's, errors
// included.
func TestEncodeMessageMatchesEncodingJSON(t *testing.T) {
	headers := []Header{
		{ID: "1", TS: 1764150000000, Type: TypeAttributeReport, Dev: "boiler-1"},
		{ID: "g1a2b-3", TS: -1, Type: TypeReply, Dev: "dev<1>", Code: 503, Msg: "gateway \"busy\"\n\u2028"},
		{ID: "\xff", Type: "", Dev: "", Code: -400, Msg: "&"},
		{},
	}
	reports := randomReports(3000, 1)
	reports = append(reports, AttributeReport{Resource: "main", Values: map[string]model.Value{"a": {V: 1.0}, "nan": {V: math.NaN()}}})
	bodies := []any{nil, DeviceList{Devices: []string{"a", "<b>"}}, json.RawMessage(` {"x": 1} `), map[string]any{"f": math.Inf(1)}}
	for _, r := range reports {
		bodies = append(bodies, r)
	}
	for i, h := range headers {
		for j, body := range bodies {
			if i > 0 && j > 8 {
				break
			}
			want, wantErr := referenceMessage(h, body)
			got, err := EncodeMessage(h, body)
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("EncodeMessage(%+v, %+v) error = %v, want %v", h, body, err, wantErr)
			}
			if err != nil {
				// The reference names its own type, EncodeMessage the
				// attribute; both end with encoding/json's reason.
				w := wantErr.Error()
				if !strings.HasSuffix(err.Error(), w[strings.LastIndex(w, "json: "):]) {
					t.Fatalf("EncodeMessage(%+v, %+v) error = %v, want it to end with %v", h, body, err, wantErr)
				}
				continue
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("EncodeMessage(%+v, %+v) =\n%q\nwant\n%q", h, body, got, want)
			}
		}
	}
}

// TestAppendMessageKeepsDst checks that appendMessage appends after what
// dst holds and leaves it as it was on failure.
func TestAppendMessageKeepsDst(t *testing.T) {
	h := Header{ID: "1", Type: TypeAttributeReport, Dev: "d"}
	body := AttributeReport{Resource: "main", Values: map[string]model.Value{"t": {V: 1.5}}}
	want, err := EncodeMessage(h, body)
	if err != nil {
		t.Fatal(err)
	}
	got, err := appendMessage([]byte("head"), h, body)
	if err != nil || string(got) != "head"+string(want) {
		t.Fatalf("appendMessage = %q, %v, want %q", got, err, "head"+string(want))
	}
	bad := AttributeReport{Resource: "main", Values: map[string]model.Value{"t": {V: math.NaN()}}}
	got, err = appendMessage([]byte("head"), h, bad)
	if err == nil || string(got) != "head" {
		t.Fatalf("appendMessage of a NaN = %q, %v, want %q and an error", got, err, "head")
	}
}

func BenchmarkSealAttributeReport(b *testing.B) {
	c, err := NewCipher(SuiteAESGCM, make([]byte, 16))
	if err != nil {
		b.Fatal(err)
	}
	at := time.UnixMilli(1764150000000)
	vals := map[string]model.Value{}
	for i := range 100 {
		vals[fmt.Sprintf("r%03d", i)] = model.Value{V: int64(i * 300), At: at, Quality: model.QualityGood}
	}
	h := Header{ID: "g1-1", TS: 1764150000000, Type: TypeAttributeReport, Dev: "mb-001"}
	body := AttributeReport{Resource: "main", Values: vals}
	rnd := rand.NewChaCha8([32]byte{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.SealMessage(rnd, "osap/up/attribute", h, body); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDecodeMessageUnreadable checks that a message whose general payload
// gives its id, but that does not decode, is an *UnreadableError with the
// id, type and dev (so that the gateway can answer it 400), and that one
// without a readable id is only ErrMalformed.
func TestDecodeMessageUnreadable(t *testing.T) {
	msg := func(gen, body string) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(len(gen)))
		return append(append(b, gen...), body...)
	}
	const set = `{"id":"r1","ts":1,"type":"attribute.set","dev":"boiler-1","code":0}`
	tests := []struct {
		name string
		in   []byte
		want *Header // nil: not an *UnreadableError
	}{
		{name: "body not JSON", in: msg(set, `{"resource":"main",`), want: &Header{ID: "r1", Type: TypeAttributeSet, Dev: "boiler-1"}},
		{name: "body garbage", in: msg(set, "\x00\xff"), want: &Header{ID: "r1", Type: TypeAttributeSet, Dev: "boiler-1"}},
		{name: "unknown general field", in: msg(`{"id":"r2","type":"attribute.get","dev":"d","ver":2}`, `{}`), want: &Header{ID: "r2", Type: TypeAttributeGet, Dev: "d"}},
		{name: "general field of the wrong type", in: msg(`{"id":"r3","type":"operation.invoke","dev":"d","ts":"now"}`, `{}`), want: &Header{ID: "r3", Type: TypeOperationInvoke, Dev: "d"}},
		{name: "general trailing data", in: msg(`{"id":"r4","type":"attribute.get"} x`, ``), want: &Header{ID: "r4", Type: TypeAttributeGet}},
		{name: "no type", in: msg(`{"id":"r5","dev":"d"}`, ``), want: &Header{ID: "r5", Dev: "d"}},
		{name: "dev not a string", in: msg(`{"id":"r6","type":"attribute.get","dev":7}`, ``), want: &Header{ID: "r6", Type: TypeAttributeGet}},
		{name: "no id", in: msg(`{"type":"attribute.get","x":1}`, ``)},
		{name: "id not a string", in: msg(`{"id":6,"type":"attribute.get"}`, ``)},
		{name: "general not JSON", in: msg(`{"id":"r7",`, ``)},
		{name: "general not an object", in: msg(`["r8"]`, ``)},
		{name: "no LEN", in: []byte{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := DecodeMessage(tt.in)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeMessage(%q) = %+v, %v, want ErrMalformed", tt.in, m, err)
			}
			var ue *UnreadableError
			got := errors.As(err, &ue)
			if got != (tt.want != nil) {
				t.Fatalf("DecodeMessage(%q) = %v (%T), UnreadableError %v, want %v", tt.in, err, err, got, tt.want != nil)
			}
			if got && ue.Header != *tt.want {
				t.Errorf("DecodeMessage(%q) header = %+v, want %+v", tt.in, ue.Header, *tt.want)
			}
		})
	}
}
