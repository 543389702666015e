package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// encodeEvent1 encodes a format-1 outbox record, as osapgw wrote them
// before format 2 (commit b74d438):
// format (1) | capture time, unix ns (8, BE) | len(dev) (uvarint) | dev | body.
func encodeEvent1(dev string, body []byte, at time.Time) []byte {
	b := []byte{outboxFormat1}
	b = binary.BigEndian.AppendUint64(b, uint64(unixNano(at)))
	b = binary.AppendUvarint(b, uint64(len(dev)))
	b = append(b, dev...)
	return append(b, body...)
}

// reencodeBody1 makes the body of event.report from r the way
// json.Marshal(model.EventOccurrence) did for format 1:
// {"resource":R,"event":E[,"params":P],"ts":<unix ms>}, strings escaped
// as encoding/json escapes them (HTML characters too).
func reencodeBody1(r Record) []byte {
	str := func(s string) []byte {
		b, err := json.Marshal(s)
		if err != nil {
			panic(err)
		}
		return b
	}
	b := append([]byte(`{"resource":`), str(r.Resource)...)
	b = append(b, `,"event":`...)
	b = append(b, str(r.Name)...)
	if r.Params != nil {
		b = append(b, `,"params":`...)
		b = append(b, r.Params...)
	}
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, r.At.UnixMilli(), 10)
	return append(b, '}')
}

func TestEventRoundTrip(t *testing.T) {
	at := time.Unix(1764150000, 123456789)
	long := strings.Repeat("é", 100) // 200 bytes: a two-byte length
	tests := []struct {
		name string
		ev   Event
		want Record // without ID
	}{
		{
			name: "gateway event without params",
			ev:   Event{Resource: "outbox", Name: "outbox.overflow", At: at},
			want: Record{Resource: "outbox", Name: "outbox.overflow", At: at},
		},
		{
			name: "empty params are none",
			ev:   Event{Dev: "cam-1", Resource: "video/1", Name: "tamper", Params: map[string]any{}, At: at},
			want: Record{Dev: "cam-1", Resource: "video/1", Name: "tamper", At: at},
		},
		{
			name: "params keys sorted",
			ev:   Event{Dev: "cam-1", Resource: "video/1", Name: "motion", Params: map[string]any{"state": true, "region": int64(2), "a": nil}, At: at},
			want: Record{Dev: "cam-1", Resource: "video/1", Name: "motion", Params: []byte(`{"a":null,"region":2,"state":true}`), At: at},
		},
		{
			name: "numbers",
			ev: Event{Dev: "pump-2", Resource: "main", Name: "high", At: at, Params: map[string]any{
				"f": 1.5, "big": 1e21, "small": 1e-7, "negzero": math.Copysign(0, -1),
				"i": int64(math.MinInt64), "u": uint64(math.MaxUint64), "f32": float32(0.1),
			}},
			want: Record{Dev: "pump-2", Resource: "main", Name: "high", At: at,
				Params: []byte(`{"big":1e+21,"f":1.5,"f32":0.1,"i":-9223372036854775808,"negzero":-0,"small":1e-7,"u":18446744073709551615}`)},
		},
		{
			name: "nested params",
			ev: Event{Dev: "cam-2", Resource: "device", Name: "input", At: at, Params: map[string]any{
				"m": map[string]any{"l": []any{1, "two", nil, map[string]any{}}, "e": []any{}},
			}},
			want: Record{Dev: "cam-2", Resource: "device", Name: "input", At: at,
				Params: []byte(`{"m":{"e":[],"l":[1,"two",null,{}]}}`)},
		},
		{
			name: "strings that JSON escapes are stored as they are",
			ev: Event{Dev: `d<&>"`, Resource: "r\u2028\\/", Name: "n\t\x7f\x01", At: at, Params: map[string]any{
				`k<>&"`: "<script>\"x\" & 'y'</script>", "ctl": "\x00\x1f\n", "u": "温度 ✓ \u2029 😀", "bad": "\xff",
			}},
			want: Record{Dev: `d<&>"`, Resource: "r\u2028\\/", Name: "n\t\x7f\x01", At: at,
				Params: []byte(`{"bad":"\ufffd","ctl":"\u0000\u001f\n","k\u003c\u003e\u0026\"":"\u003cscript\u003e\"x\" \u0026 'y'\u003c/script\u003e","u":"温度 ✓ \u2029 😀"}`)},
		},
		{
			name: "long names",
			ev:   Event{Dev: long, Resource: long, Name: long, Params: map[string]any{"s": long}, At: at},
			want: Record{Dev: long, Resource: long, Name: long, Params: []byte(`{"s":"` + long + `"}`), At: at},
		},
		{
			name: "zero time is the epoch",
			ev:   Event{Resource: "r", Name: "n"},
			want: Record{Resource: "r", Name: "n", At: time.Unix(0, 0)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := encodeEvent(tt.ev)
			if err != nil {
				t.Fatalf("encodeEvent(%+v) = %v", tt.ev, err)
			}
			if b[0] != outboxFormat2 {
				t.Errorf("encodeEvent wrote format %d, want %d", b[0], outboxFormat2)
			}
			got, err := decodeEvent(9, b)
			if err != nil {
				t.Fatalf("decodeEvent(%x) = %v", b, err)
			}
			tt.want.ID = 9
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("round trip mismatch (-want +got):\n%s", diff)
			}
			if tt.ev.Params != nil {
				j, _ := json.Marshal(tt.ev.Params)
				if len(tt.ev.Params) > 0 && string(got.Params) != string(j) {
					t.Errorf("Params = %s, json.Marshal gives %s", got.Params, j)
				}
			}
			if at, ok := decodeEventAt(b); !ok || !at.Equal(tt.want.At) {
				t.Errorf("decodeEventAt(%x) = %v, %v; want %v", b, at, ok, tt.want.At)
			}
		})
	}
}

func TestEncodeEventInvalid(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		want string // in the error
	}{
		{name: "no name", ev: Event{Resource: "main"}, want: `event ""`},
		{name: "no resource", ev: Event{Name: "motion"}, want: `resource ""`},
		{name: "NUL in device", ev: Event{Dev: "a\x00b", Resource: "main", Name: "motion"}, want: "NUL"},
		{name: "NUL in resource", ev: Event{Resource: "ma\x00in", Name: "motion"}, want: "NUL"},
		{name: "NUL in name", ev: Event{Resource: "main", Name: "mo\x00tion"}, want: "NUL"},
		{name: "NaN param", ev: Event{Resource: "main", Name: "motion", Params: map[string]any{"x": math.NaN()}}, want: "unsupported value"},
		{name: "func param", ev: Event{Resource: "main", Name: "motion", Params: map[string]any{"x": func() {}}}, want: "unsupported type"},
		{name: "nested channel", ev: Event{Resource: "main", Name: "motion", Params: map[string]any{"m": map[string]any{"c": make(chan int)}}}, want: "unsupported type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := encodeEvent(tt.ev)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("encodeEvent(%+v) = %x, %v; want an error wrapping ErrInvalid naming %q", tt.ev, b, err, tt.want)
			}
		})
	}
}

func TestDecodeEventFormat1(t *testing.T) {
	at := time.Unix(1764150000, 123456789)
	tests := []struct {
		name string
		dev  string
		body string
		want Record // without ID, Dev, At
	}{
		{
			name: "params kept byte for byte",
			dev:  "cam-1",
			body: `{"resource":"video/1","event":"motion","params":{"region":{"y":1e+21,"tiny":1e-7},"s":"\u003c\u0026\u003e"},"ts":1764150000123}`,
			want: Record{Resource: "video/1", Name: "motion", Params: []byte(`{"region":{"y":1e+21,"tiny":1e-7},"s":"\u003c\u0026\u003e"}`)},
		},
		{
			name: "no params",
			body: `{"resource":"gateway","event":"started","ts":1764150000123}`,
			want: Record{Resource: "gateway", Name: "started"},
		},
		{
			name: "null params are none",
			body: `{"resource":"main","event":"e","params":null,"ts":1764150000123}`,
			want: Record{Resource: "main", Name: "e"},
		},
		{
			name: "empty params kept",
			body: `{"resource":"main","event":"e","params":{},"ts":1}`,
			want: Record{Resource: "main", Name: "e", Params: []byte(`{}`)},
		},
		{
			name: "escaped names decoded",
			body: `{"resource":"r\u003c1\u003e\u0026\"q\"","event":"ev\u2028\\/\t","ts":1764150000123}`,
			want: Record{Resource: `r<1>&"q"`, Name: "ev\u2028\\/\t"},
		},
		{
			name: "time from the header, not ts",
			body: `{"resource":"main","event":"e","ts":5}`,
			want: Record{Resource: "main", Name: "e"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := encodeEvent1(tt.dev, []byte(tt.body), at)
			got, err := decodeEvent(3, b)
			if err != nil {
				t.Fatalf("decodeEvent(%x) = %v", b, err)
			}
			tt.want.ID, tt.want.Dev, tt.want.At = 3, tt.dev, at
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("decodeEvent(%q) mismatch (-want +got):\n%s", tt.body, diff)
			}
		})
	}
}

func TestDecodeEventCorrupt(t *testing.T) {
	at := time.Unix(1764150000, 0)
	hdr := func(format byte) []byte {
		return binary.BigEndian.AppendUint64([]byte{format}, uint64(at.UnixNano()))
	}
	rec2 := func(parts ...string) []byte { // dev, resource, name, then raw params
		b := hdr(outboxFormat2)
		for _, p := range parts[:3] {
			b = binary.AppendUvarint(b, uint64(len(p)))
			b = append(b, p...)
		}
		return append(b, strings.Join(parts[3:], "")...)
	}
	cat := func(bs ...[]byte) []byte {
		var b []byte
		for _, x := range bs {
			b = append(b, x...)
		}
		return b
	}
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{name: "empty", b: nil, want: "bad header"},
		{name: "short header", b: hdr(outboxFormat2)[:8], want: "bad header"},
		{name: "unknown format", b: cat(hdr(4), []byte{0}), want: "bad header"},
		{name: "bad picture state", b: cat(hdr(outboxFormat3), []byte{0, 1, 'r', 1, 'n', 0x80}), want: "bad picture state"},
		{name: "no device length", b: hdr(outboxFormat2), want: "bad device length"},
		{name: "device past the end", b: cat(hdr(outboxFormat2), []byte{5, 'a'}), want: "bad device length"},
		{name: "device length not minimal", b: cat(hdr(outboxFormat2), []byte{0x80, 0x00, 1, 'r', 1, 'n'}), want: "bad device length"},
		{name: "no resource length", b: cat(hdr(outboxFormat2), []byte{0}), want: "bad resource length"},
		{name: "resource length not minimal", b: cat(hdr(outboxFormat2), []byte{0, 0x81, 0x00, 'r', 1, 'n'}), want: "bad resource length"},
		{name: "resource past the end", b: cat(hdr(outboxFormat2), []byte{0, 9, 'r'}), want: "bad resource length"},
		{name: "name past the end", b: cat(hdr(outboxFormat2), []byte{0, 1, 'r', 2, 'n'}), want: "bad event name length"},
		{name: "name length overflows", b: cat(hdr(outboxFormat2), []byte{0, 1, 'r', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}), want: "bad event name length"},
		{name: "empty name", b: rec2("d", "r", ""), want: `event ""`},
		{name: "empty resource", b: rec2("d", "", "n"), want: `resource ""`},
		{name: "NUL in name", b: rec2("d", "r", "n\x00"), want: "NUL"},
		{name: "params not JSON", b: rec2("d", "r", "n", `{"a":}`), want: "not a JSON object"},
		{name: "params cut short", b: rec2("d", "r", "n", `{"a":1`), want: "not a JSON object"},
		{name: "params an array", b: rec2("d", "r", "n", `[1]`), want: "not a JSON object"},
		{name: "params with space after", b: rec2("d", "r", "n", `{} `), want: "not a JSON object"},
		{name: "params two objects", b: rec2("d", "r", "n", `{}{}`), want: "not a JSON object"},
		{name: "format-1 body not JSON", b: encodeEvent1("d", []byte(`{"resource":"r","ev`), at), want: "format-1 body"},
		{name: "format-1 empty body", b: encodeEvent1("d", nil, at), want: "format-1 body"},
		{name: "format-1 unknown key", b: encodeEvent1("d", []byte(`{"resource":"r","event":"e","n":1}`), at), want: "format-1 body"},
		{name: "format-1 resource a number", b: encodeEvent1("d", []byte(`{"resource":1,"event":"e"}`), at), want: "format-1 body"},
		{name: "format-1 ts a float", b: encodeEvent1("d", []byte(`{"resource":"r","event":"e","ts":1.5}`), at), want: "format-1 body"},
		{name: "format-1 params an array", b: encodeEvent1("d", []byte(`{"resource":"r","event":"e","params":[1]}`), at), want: "params are not a JSON object"},
		{name: "format-1 params a string", b: encodeEvent1("d", []byte(`{"resource":"r","event":"e","params":"x"}`), at), want: "params are not a JSON object"},
		{name: "format-1 data after the body", b: encodeEvent1("d", []byte(`{"resource":"r","event":"e"}{}`), at), want: "data after"},
		{name: "format-1 device past the end", b: cat(hdr(outboxFormat1), []byte{9, 'd'}), want: "bad device length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeEvent(4, tt.b)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("decodeEvent(%x) = %+v, %v; want an error wrapping ErrCorrupt naming %q", tt.b, got, err, tt.want)
			}
		})
	}
}

func TestDecodeEventOwnsItsMemory(t *testing.T) {
	b, err := encodeEvent(Event{Dev: "d", Resource: "r", Name: "n", Params: map[string]any{"a": 1}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := decodeEvent(1, b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 'x'
	}
	if r.Dev != "d" || string(r.Params) != `{"a":1}` {
		t.Errorf("record after its bytes were overwritten = %+v, want it unchanged", r)
	}
}
