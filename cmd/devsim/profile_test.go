package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/osapgw/osapgw/adapters/modbus"
	sim "github.com/osapgw/osapgw/sim/modbus"
	simprofile "github.com/osapgw/osapgw/sim/modbus/profile"
)

func TestParseProfiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "my-sensor.toml"), []byte(`name = "my-sensor"
source = "test"
class = "environment-sensor/1"
[[attribute]]
name = "temperature"
table = "input"
address = 0
type = "float32"
unit = "°C"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	unitMakers["test-maker"] = func(unit byte, o simprofile.Options) (sim.Unit, error) { return sim.NewSensor(o.Change, 0), nil }
	t.Cleanup(func() { delete(unitMakers, "test-maker") })
	tests := []struct {
		name     string
		profiles string
		dir      string
		missing  string
		units    string // "" leaves --units unset (1)
		want     string // describe(), or the error
	}{
		{name: "one profile", profiles: "eastron-sdm630", want: "unit 1 eastron-sdm630"},
		{name: "one profile on several units", profiles: "xy-md02", units: "1-3", want: "unit 1 xy-md02, unit 2 xy-md02, unit 3 xy-md02"},
		{name: "several profiles, units 1 to n", profiles: "xy-md02, abb-b23", want: "unit 1 xy-md02, unit 2 abb-b23"},
		{name: "several profiles on given units", profiles: "xy-md02,abb-b23", units: "5,9", want: "unit 5 xy-md02, unit 9 abb-b23"},
		{name: "missing in every profile that has it", profiles: "eastron-sdm630,abb-b23,xy-md02", missing: "voltage_l2", want: "unit 1 eastron-sdm630 (missing voltage_l2), unit 2 abb-b23 (missing voltage_l2), unit 3 xy-md02"},
		{name: "missing in one profile", profiles: "eastron-sdm630,abb-b23", missing: "abb-b23:voltage_l2,abb-b23:frequency", want: "unit 1 eastron-sdm630, unit 2 abb-b23 (missing voltage_l2 frequency)"},
		{name: "user profile", profiles: "my-sensor", dir: dir, want: "unit 1 my-sensor"},
		{name: "a maker's profile", profiles: "test-maker,xy-md02", want: "unit 1 test-maker, unit 2 xy-md02"},
		{name: "unknown profile", profiles: "eastron-sdm63", want: `--profile: unknown profile "eastron-sdm63" (did you mean "eastron-sdm630", "eastron-sdm230", "eastron-sdm120"?)`},
		{name: "user profile without its dir", profiles: "my-sensor", want: `--profile: unknown profile "my-sensor" (osapgw profile list lists them)`},
		{name: "units do not pair", profiles: "xy-md02,abb-b23", units: "1-3", want: "--profile: 2 profiles for 3 units: give one unit each (--units) or one profile"},
		{name: "missing point nowhere", profiles: "xy-md02", missing: "co2", want: `--missing "co2": no profile served has that point`},
		{name: "missing point of another profile", profiles: "xy-md02", missing: "abb-b23:frequency", want: `--missing "abb-b23:frequency": no profile served has that point`},
		{name: "missing point not in its profile", profiles: "xy-md02", missing: "xy-md02:co2", want: `profile "xy-md02": no point "co2" to leave out`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			units := []byte{1}
			if tt.units != "" {
				var err error
				if units, err = modbus.ParseUnits(tt.units); err != nil {
					t.Fatal(err)
				}
			}
			pu, err := parseProfiles(tt.profiles, tt.dir, tt.missing, units, tt.units != "", time.Second)
			got := ""
			if err != nil {
				got = err.Error()
			} else {
				got = pu.describe()
			}
			if got != tt.want {
				t.Errorf("parseProfiles(%q) = %s, want %s", tt.profiles, got, tt.want)
			}
		})
	}
}

// TestRunModbusProfiles runs devsim modbus with two profiles on one port
// and reads each unit's identity and values, and the missing point.
func TestRunModbusProfiles(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- runModbus(ctx, []string{"--listen", addr, "--profile", "abb-b23,xy-md02", "--missing", "xy-md02:humidity"}, &stdout, &stderr)
	}()
	var c net.Conn
	deadline := time.Now().Add(10 * time.Second)
	for c == nil {
		if c, err = net.Dial("tcp", addr); err != nil {
			if time.Now().After(deadline) {
				t.Fatalf("devsim modbus never listened on %s: %v\n%s", addr, err, stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	defer c.Close()
	ask := func(unit byte, pdu ...byte) []byte {
		req := append([]byte{0, 1, 0, 0, 0, byte(len(pdu) + 1), unit}, pdu...)
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		hdr := make([]byte, 7)
		if _, err := io.ReadFull(c, hdr); err != nil {
			t.Fatal(err)
		}
		body := make([]byte, binary.BigEndian.Uint16(hdr[4:])-1)
		if _, err := io.ReadFull(c, body); err != nil {
			t.Fatal(err)
		}
		return body
	}
	// ABB B23's model name at holding 0x8960: "B23 ".
	if got := ask(1, 3, 0x89, 0x60, 0, 2); string(got[2:]) != "B23 " {
		t.Errorf("unit 1 identity = %q, want \"B23 \"", got[2:])
	}
	// XY-MD02's temperature (input 1, int16, 0.1 °C) and its missing humidity.
	if got := ask(2, 4, 0, 1, 0, 1); len(got) != 4 || int16(binary.BigEndian.Uint16(got[2:])) < 150 || int16(binary.BigEndian.Uint16(got[2:])) > 300 {
		t.Errorf("unit 2 temperature = %x, want 15.0 to 30.0 °C", got)
	}
	if got := ask(2, 4, 0, 2, 0, 1); fmt.Sprintf("%x", got) != "8402" {
		t.Errorf("unit 2 humidity = %x, want exception 2", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("runModbus() = %v", err)
	}
	if want := "modbus tcp unit 1 abb-b23, unit 2 xy-md02 (missing humidity) on 1 device(s) from " + addr; !strings.Contains(stdout.String(), want) {
		t.Errorf("stdout = %q, want it to say %q", stdout.String(), want)
	}
}

func TestRunModbusFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--profile", "xy-md02", "--fault-exception", "2"}, "--fault-* and --registers apply to the sensor map, not to --profile (use --missing)"},
		{[]string{"--missing", "humidity"}, "--missing and --profiles-dir apply to --profile only"},
		{[]string{"--profile", "nosuch"}, `--profile: unknown profile "nosuch" (osapgw profile list lists them)`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			err := runModbus(t.Context(), tt.args, io.Discard, io.Discard)
			if err == nil || err.Error() != tt.want {
				t.Errorf("runModbus(%q) = %v, want %s", tt.args, err, tt.want)
			}
		})
	}
}
