package store

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/osapgw/osapgw/model"
)

func TestValueRoundTrip(t *testing.T) {
	at := time.Unix(1764150000, 123456789)
	tests := []struct {
		name string
		in   model.Value
		want model.Value
	}{
		{name: "bool", in: model.Value{V: true, At: at}, want: model.Value{V: true, At: at}},
		{name: "int64", in: model.Value{V: int64(-42), At: at, Quality: model.QualityGood}, want: model.Value{V: int64(-42), At: at, Quality: model.QualityGood}},
		{name: "int becomes int64", in: model.Value{V: 7, At: at}, want: model.Value{V: int64(7), At: at}},
		{name: "integral float stays float", in: model.Value{V: 21.0, At: at}, want: model.Value{V: 21.0, At: at}},
		{name: "float", in: model.Value{V: 21.5, At: at, Quality: model.QualityUncertain}, want: model.Value{V: 21.5, At: at, Quality: model.QualityUncertain}},
		{name: "string", in: model.Value{V: "rtsp://cam/1", At: at}, want: model.Value{V: "rtsp://cam/1", At: at}},
		{name: "json", in: model.Value{V: map[string]any{"a": []any{1.0, "x"}}, At: at}, want: model.Value{V: map[string]any{"a": []any{1.0, "x"}}, At: at}},
		{name: "null", in: model.Value{At: at, Quality: model.QualityBad}, want: model.Value{At: at, Quality: model.QualityBad}},
		{name: "zero time", in: model.Value{V: false}, want: model.Value{V: false}},
		{name: "bad with reason", in: model.BadValue(at, "exception 2 (illegal data address)"), want: model.BadValue(at, "exception 2 (illegal data address)")},
		{name: "reason of any bytes", in: model.Value{V: int64(3), At: at, Quality: model.QualityUncertain, Err: "\x00\xff"}, want: model.Value{V: int64(3), At: at, Quality: model.QualityUncertain, Err: "\x00\xff"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := encodeValue(tt.in, flagPending)
			if err != nil {
				t.Fatalf("encodeValue(%v) = %v", tt.in, err)
			}
			got, flags, err := decodeValue(b)
			if err != nil || flags != flagPending {
				t.Fatalf("decodeValue(%x) = %v, flags %d, want flags %d", b, err, flags, flagPending)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("round trip mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestValueFormats: a value without a reason is written in format 1, as
// before bad values had one, so older builds still read it; records of
// format 1 as they were written still decode; the reason is in format 2,
// strictly checked.
func TestValueFormats(t *testing.T) {
	at := time.Unix(1764150000, 0)
	good, err := encodeValue(model.Value{V: 21.5, At: at, Quality: model.QualityGood}, flagPending)
	if err != nil {
		t.Fatal(err)
	}
	// Format 1, written before format 2 existed: flags pending, kind
	// float, quality "good", 21.5.
	const old = "0101" + "187b851400816000" + "03" + "04" + "676f6f64" + "4035800000000000"
	if got := hex.EncodeToString(good); got != old {
		t.Errorf("encodeValue(21.5 good) = %s, want the format-1 record %s", got, old)
	}
	b, _ := hex.DecodeString(old)
	v, flags, err := decodeValue(b)
	if want := (model.Value{V: 21.5, At: at, Quality: model.QualityGood}); err != nil || flags != flagPending || !cmp.Equal(v, want) {
		t.Errorf("decodeValue(%s) = %+v, %d, %v; want %+v, %d", old, v, flags, err, want, flagPending)
	}
	bad, err := encodeValue(model.BadValue(at, "timeout"), 0)
	if err != nil {
		t.Fatal(err)
	}
	const withReason = "0200" + "187b851400816000" + "00" + "03" + "626164" + "07" + "74696d656f7574"
	if got := hex.EncodeToString(bad); got != withReason {
		t.Errorf("encodeValue(bad, timeout) = %s, want %s", got, withReason)
	}
	for _, tt := range []struct{ name, hex string }{
		{"reason past the end", "0200187b8514008160000003626164" + "08" + "74696d656f7574"},
		{"empty reason", "0200187b8514008160000003626164" + "00"},
		{"reason length not minimal", "0200187b8514008160000003626164" + "8000"},
		{"no reason length", "0200187b8514008160000003626164"},
		{"format 3", "0300187b8514008160000003626164" + "00"},
	} {
		b, _ := hex.DecodeString(tt.hex)
		if v, _, err := decodeValue(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: decodeValue(%s) = %+v, %v, want ErrCorrupt", tt.name, tt.hex, v, err)
		}
	}
}

// TestBadValuesKept: the store keeps a bad value's reason, and a drained
// bad value is marked sent like the others.
func TestBadValuesKept(t *testing.T) {
	s, _ := mustOpen(t, Options{})
	at := time.Unix(1764150000, 0)
	in := map[string]model.Value{"energy": model.BadValue(at, "exception 2 (illegal data address)"), "power": {V: 1.5, At: at}}
	if err := s.PutValues("meter-1", "main", in); err != nil {
		t.Fatal(err)
	}
	var got map[string]model.Value
	if err := s.DrainValues(func(_, _ string, v map[string]model.Value) error { got = v; return nil }); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, got); diff != "" {
		t.Errorf("drained values mismatch (-want +got):\n%s", diff)
	}
	n := 0
	if err := s.DrainValues(func(string, string, map[string]model.Value) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("second drain = %v with %d calls, want nothing left", err, n)
	}
	last, err := s.LastValues("meter-1")
	if err != nil || last["main"]["energy"].Err != "exception 2 (illegal data address)" {
		t.Errorf("LastValues = %v, %v, want the reason kept", last, err)
	}
}

func TestPutValuesKeepsNewest(t *testing.T) {
	s, _ := mustOpen(t, Options{})
	t0 := time.Unix(1764150000, 0)
	steps := []map[string]model.Value{
		{"temp": {V: 20.0, At: t0}, "hum": {V: int64(40), At: t0}},
		{"temp": {V: 21.0, At: t0.Add(time.Second)}},
		{"temp": {V: 19.0, At: t0.Add(-time.Second)}, "hum": {V: int64(41), At: t0}}, // older temp ignored; same-time hum replaces
	}
	for _, v := range steps {
		if err := s.PutValues("pump-1", "main", v); err != nil {
			t.Fatalf("PutValues = %v", err)
		}
	}
	want := map[string]map[string]model.Value{"main": {
		"temp": {V: 21.0, At: t0.Add(time.Second)},
		"hum":  {V: int64(41), At: t0},
	}}
	got, err := s.LastValues("pump-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LastValues mismatch (-want +got):\n%s", diff)
	}
	if got, _ := s.LastValues("pump"); len(got) != 0 {
		t.Errorf("LastValues(prefix of a device) = %v, want none", got)
	}
}

func TestDrainValues(t *testing.T) {
	s, _ := mustOpen(t, Options{})
	t0 := time.Unix(1764150000, 0)
	put := func(dev, res, attr string, v any, at time.Time) {
		t.Helper()
		if err := s.PutValues(dev, res, map[string]model.Value{attr: {V: v, At: at}}); err != nil {
			t.Fatal(err)
		}
	}
	put("a", "main", "x", int64(1), t0)
	put("a", "main", "y", int64(2), t0)
	put("a", "aux", "z", "on", t0)
	put("b", "main", "x", true, t0)

	type call struct {
		Dev, Resource string
		Values        map[string]model.Value
	}
	var calls []call
	// The first drain accepts a/aux, then fails on a/main: b/main is not offered.
	err := s.DrainValues(func(dev, res string, v map[string]model.Value) error {
		calls = append(calls, call{dev, res, v})
		if dev == "a" && res == "main" {
			// A newer value arrives while this group is being sent.
			put("a", "main", "x", int64(10), t0.Add(time.Second))
			return nil
		}
		if dev == "b" {
			return errors.New("link down")
		}
		return nil
	})
	if err == nil || err.Error() != "link down" {
		t.Fatalf("DrainValues = %v, want the callback's error", err)
	}
	want := []call{
		{"a", "aux", map[string]model.Value{"z": {V: "on", At: t0}}},
		{"a", "main", map[string]model.Value{"x": {V: int64(1), At: t0}, "y": {V: int64(2), At: t0}}},
		{"b", "main", map[string]model.Value{"x": {V: true, At: t0}}},
	}
	if diff := cmp.Diff(want, calls); diff != "" {
		t.Fatalf("first drain calls mismatch (-want +got):\n%s", diff)
	}
	calls = nil
	if err := s.DrainValues(func(dev, res string, v map[string]model.Value) error {
		calls = append(calls, call{dev, res, v})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want = []call{
		{"a", "main", map[string]model.Value{"x": {V: int64(10), At: t0.Add(time.Second)}}}, // the newer value, not y
		{"b", "main", map[string]model.Value{"x": {V: true, At: t0}}},                       // refused before
	}
	if diff := cmp.Diff(want, calls); diff != "" {
		t.Fatalf("second drain calls mismatch (-want +got):\n%s", diff)
	}
	n := 0
	if err := s.DrainValues(func(string, string, map[string]model.Value) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("third drain = %v with %d calls, want nothing left", err, n)
	}
	// Sent values stay readable.
	got, _ := s.LastValues("a")
	if len(got["main"]) != 2 || len(got["aux"]) != 1 {
		t.Errorf("LastValues(a) = %v, want 3 values", got)
	}
}

func TestPutValuesInvalid(t *testing.T) {
	s, _ := mustOpen(t, Options{})
	tests := []struct {
		name          string
		dev, resource string
		values        map[string]model.Value
	}{
		{name: "empty device", dev: "", resource: "main", values: map[string]model.Value{"x": {V: 1}}},
		{name: "NUL in resource", dev: "d", resource: "a\x00b", values: map[string]model.Value{"x": {V: 1}}},
		{name: "empty attribute", dev: "d", resource: "main", values: map[string]model.Value{"": {V: 1}}},
		{name: "unencodable value", dev: "d", resource: "main", values: map[string]model.Value{"x": {V: make(chan int)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.PutValues(tt.dev, tt.resource, tt.values); !errors.Is(err, ErrInvalid) {
				t.Errorf("PutValues(%q, %q, …) = %v, want ErrInvalid", tt.dev, tt.resource, err)
			}
		})
	}
}

func TestCredentials(t *testing.T) {
	s, path := mustOpen(t, Options{})
	if _, ok, err := s.LoadCredentials(); ok || err != nil {
		t.Fatalf("LoadCredentials on a new store = %v, %v; want none", ok, err)
	}
	want := Credentials{
		DevID:         "GW-0001",
		MasterKey:     []byte{0x9f, 0xb7, 0x51, 0x81, 0xf0, 0x8b, 0xcc, 0xa5, 0xfa, 0xa4, 0x12, 0x34, 0x26, 0x05, 0xe5, 0x6a},
		Suite:         8,
		SessionKey:    []byte("0123456789abcdef"),
		SessionExpiry: time.Unix(1764150000, 0).UTC(),
		Lifetime:      24 * time.Hour,
		DASAddress:    "mqtts://das.example:8883",
		PictureURL:    "https://das.example:8443/osap",
	}
	if err := s.SaveCredentials(want); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := Open(path, Options{Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, ok, err := s2.LoadCredentials()
	if err != nil || !ok {
		t.Fatalf("LoadCredentials after reopen = %v, %v", ok, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("credentials mismatch (-want +got):\n%s", diff)
	}
	if err := s2.ClearCredentials(); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s2.LoadCredentials(); ok || err != nil {
		t.Errorf("LoadCredentials after Clear = %v, %v; want none", ok, err)
	}
}

func ExampleStore_DrainValues() {
	dir := exampleDir()
	defer os.RemoveAll(filepath.Dir(dir))
	s, err := Open(filepath.Join(dir, "osapgw.db"), Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	at := time.Unix(1764150000, 0)
	s.PutValues("pump-1", "main", map[string]model.Value{"temp": {V: 20.5, At: at}})
	s.PutValues("pump-1", "main", map[string]model.Value{"temp": {V: 21.5, At: at.Add(time.Second)}})
	// After an outage, only the latest state is sent, once.
	for range 2 {
		s.DrainValues(func(dev, resource string, values map[string]model.Value) error {
			fmt.Println(dev, resource, values["temp"].V)
			return nil
		})
	}
	// Output: pump-1 main 21.5
}
