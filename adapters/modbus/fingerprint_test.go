package modbus

import (
	"slices"
	"testing"

	"github.com/osapgw/osapgw/profiles"
)

// TestProfileFingerprints: the embedded profiles' [[identity]] registers
// become discovery fingerprints, values as numbers.
func TestProfileFingerprints(t *testing.T) {
	fps, err := ProfileFingerprints(profiles.Embedded())
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(fps, func(f Fingerprint) bool { return f.Profile == "abb-b23" })
	if i < 0 {
		t.Fatalf("no fingerprint of abb-b23 among %d", len(fps))
	}
	want := Fingerprint{Profile: "abb-b23", Table: "holding", Address: 35168, Type: "uint32", Values: []float64{1110586144}}
	if got := fps[i]; got.Table != want.Table || got.Address != want.Address || got.Type != want.Type || !slices.Equal(got.Values, want.Values) {
		t.Errorf("abb-b23 fingerprint = %+v, want %+v", got, want)
	}
}
