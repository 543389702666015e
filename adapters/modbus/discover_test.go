package modbus

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	sim "github.com/osapgw/osapgw/sim/modbus"
)

func TestDiscover(t *testing.T) {
	url, _, sensors := simTCP(t, time.Hour, 3, 7)
	sensors[7].SetFault(sim.Fault{Exception: sim.IllegalDataAddress}) // answers, with an exception
	units, err := ParseUnits("1-10")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Discover(context.Background(), url, units, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := []Found{{Unit: 3, Answer: "registers"}, {Unit: 7, Answer: "exception 2"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Discover() mismatch (-want +got):\n%s", diff)
	}
	if _, err := Discover(context.Background(), "tcp://127.0.0.1:1", []byte{1}, time.Second); err == nil {
		t.Fatal("Discover(closed port) = nil error")
	}
}

func TestParseUnits(t *testing.T) {
	tests := []struct {
		in      string
		want    []byte
		wantErr bool
	}{
		{in: "1-3,7", want: []byte{1, 2, 3, 7}},
		{in: "247", want: []byte{247}},
		{in: "5-2", wantErr: true},
		{in: "1-256", wantErr: true},
		{in: "x", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseUnits(tt.in)
		if (err != nil) != tt.wantErr || !cmp.Equal(got, tt.want) {
			t.Errorf("ParseUnits(%q) = %v, %v, want %v (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
