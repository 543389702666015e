package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	sim "github.com/osapgw/osapgw/sim/modbus"
)

// serveSim serves sensors over TCP until the test ends and returns the
// server's URL and the server.
func serveSim(t *testing.T, sensors map[byte]*sim.Sensor) (string, *sim.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	srv := sim.NewServer(sensors)
	go func() { done <- srv.ServeTCP(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return "tcp://" + ln.Addr().String(), srv
}

// TestDiscoverModbus runs the command against the simulator and compares
// its output, progress included, with testdata/discover_modbus.golden.
func TestDiscoverModbus(t *testing.T) {
	sensors := map[byte]*sim.Sensor{2: sim.NewSensor(time.Hour, 0), 5: sim.NewSensor(time.Hour, 0)}
	sensors[5].SetIdentification(sim.Identification{Vendor: "ACME", Product: "TH-5", Revision: "2.1"})
	sensors[5].SetHolding(40, 515)
	url, _ := serveSim(t, sensors)
	// A user's profile whose identity register is the one unit 5 has.
	dir := t.TempDir()
	prof := "name = \"acme-th5\"\nsource = \"the test\"\n" +
		"[[identity]]\ntable = \"holding\"\naddress = 40\nvalue = 515\n" +
		"[[attribute]]\nname = \"temperature\"\ntable = \"input\"\naddress = 0\n"
	if err := os.WriteFile(filepath.Join(dir, "acme-th5.toml"), []byte(prof), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := dispatch(context.Background(), []string{"discover", "modbus", url, "--units", "1-6", "--parallel", "1", "--profiles-dir", dir}, &out, &errOut)
	if code != 0 {
		t.Fatalf("discover modbus = %d, stderr %q", code, errOut.String())
	}
	got := "$ osapgw discover modbus URL --units 1-6 --parallel 1 2>stderr\n" + out.String() + "\n$ cat stderr\n" + errOut.String()
	got = strings.ReplaceAll(got, strings.TrimPrefix(url, "tcp://"), "127.0.0.1:5020")
	got = regexp.MustCompile(`in [0-9.]+s\n`).ReplaceAllString(got, "in 0.0s\n")
	path := filepath.Join("testdata", "discover_modbus.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("discover modbus output mismatch (-want +got), rerun with -update if intended:\n%s", diff)
	}
}

// TestDiscoverModbusIgnoredUnit: a device answering every unit id gets one
// block, not one per unit.
func TestDiscoverModbusIgnoredUnit(t *testing.T) {
	sensors := map[byte]*sim.Sensor{}
	for u := 0; u <= 20; u++ {
		sensors[byte(u)] = sim.NewSensor(time.Hour, 0)
	}
	url, _ := serveSim(t, sensors)
	var out, errOut bytes.Buffer
	if code := dispatch(context.Background(), []string{"discover", "modbus", url, "--units", "0-20"}, &out, &errOut); code != 0 {
		t.Fatalf("discover modbus = %d, stderr %q", code, errOut.String())
	}
	if n := strings.Count(out.String(), "[[device]]"); n != 1 || !strings.Contains(out.String(), "unit = 1\n") {
		t.Errorf("stdout has %d blocks, want one, of unit 1:\n%s", n, out.String())
	}
	if !strings.Contains(errOut.String(), "ignores the unit id") || !strings.Contains(errOut.String(), "21 of 21 units answered") {
		t.Errorf("stderr = %q, want it to say the device ignores the unit id", errOut.String())
	}
}

func TestDiscoverModbusUsage(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{name: "no URL", args: []string{"discover", "modbus"}, wantCode: 2, wantStderr: "usage: osapgw discover modbus URL"},
		{name: "help", args: []string{"discover", "modbus", "-h"}, wantCode: 0, wantStderr: "-parallel"},
		{name: "bad units", args: []string{"discover", "modbus", "tcp://127.0.0.1:1", "--units", "9-3"}, wantCode: 1, wantStderr: `bad element "9-3"`},
		{name: "bad URL", args: []string{"discover", "modbus", "udp://x"}, wantCode: 1, wantStderr: `unknown scheme "udp"`},
		{name: "zero parallel", args: []string{"discover", "modbus", "tcp://127.0.0.1:1", "--parallel", "0"}, wantCode: 2, wantStderr: "usage:"},
		{name: "link down", args: []string{"discover", "modbus", "tcp://127.0.0.1:1", "--units", "1"}, wantCode: 1, wantStderr: "connect 127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := dispatch(context.Background(), tt.args, &out, &errOut); code != tt.wantCode || !strings.Contains(errOut.String(), tt.wantStderr) {
				t.Errorf("dispatch(%q) = %d, stderr %q; want %d, stderr containing %q", tt.args, code, errOut.String(), tt.wantCode, tt.wantStderr)
			}
		})
	}
}
