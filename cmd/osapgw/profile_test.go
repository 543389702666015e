package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"text/tabwriter"
)

const testProfiles = "../../profiles/testdata"

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// notEmbedded drops the lines of embedded profiles, which change as
// profiles/data grows, and the count of profiles checked; a table (list)
// is laid out again without them.
func notEmbedded(s string, table bool) string {
	var keep []string
	for _, l := range strings.SplitAfter(s, "\n") {
		if !strings.Contains(l, "  embedded  ") && !strings.HasPrefix(l, "ok  ") && !strings.HasPrefix(l, "osapgw profile: ") {
			keep = append(keep, l)
		}
	}
	if !table {
		return strings.Join(keep, "")
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, l := range keep {
		fmt.Fprintln(tw, strings.Join(regexp.MustCompile(`  +`).Split(strings.TrimSpace(l), -1), "\t"))
	}
	tw.Flush()
	return b.String()
}

func TestProfileCommands(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		goldenOut  string // stdout, embedded profiles left out
		goldenErr  string // stderr
		wantStdout string
		wantStderr string
	}{
		{name: "list", args: []string{"profile", "list", "-dir", testProfiles + "/user"}, goldenOut: "profile-list.golden"},
		{name: "show", args: []string{"profile", "show", "test-meter", "-dir", testProfiles + "/good"}, goldenOut: "profile-show.golden"},
		{name: "show inline", args: []string{"profile", "show", "-dir", testProfiles + "/good", "test-sensor"}, goldenOut: "profile-show-inline.golden"},
		{name: "show toml", args: []string{"profile", "show", "test-sensor", "-toml", "-dir", testProfiles + "/good"}, wantStdout: "attribute = [\n  {name = \"temperature\""},
		{name: "show unknown", args: []string{"profile", "show", "test-metre", "-dir", testProfiles + "/good"}, wantCode: 1,
			wantStderr: `osapgw profile: unknown profile "test-metre" (did you mean "test-meter"?)`},
		{name: "show no name", args: []string{"profile", "show"}, wantCode: 2, wantStderr: "usage: osapgw profile show NAME"},
		{name: "check good", args: []string{"profile", "check", "-dir", testProfiles + "/good"}, wantStdout: "ok  test-meter (energy-meter/1)\nok  test-sensor (environment-sensor/1)\n"},
		{name: "check bad", args: []string{"profile", "check", "-dir", testProfiles + "/bad"}, wantCode: 1, goldenErr: "profile-check-bad.golden",
			wantStderr: "osapgw profile: 4 of "},
		{name: "check named", args: []string{"profile", "check", "wrong-unit", "-dir", testProfiles + "/bad"}, wantCode: 1,
			wantStderr: `wrong-unit.toml: class "energy-meter/1": attribute "power_active": float in "kW", want float in "W"`},
		{name: "help", args: []string{"profile", "-h"}, wantStderr: "usage: osapgw profile check|list|show"},
		{name: "list help", args: []string{"profile", "list", "-h"}, wantStderr: "-dir directory"},
		{name: "unknown", args: []string{"profile", "frob"}, wantCode: 2, wantStderr: `unknown command "frob"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := dispatch(context.Background(), tt.args, &out, &errOut)
			if code != tt.wantCode {
				t.Errorf("osapgw %s = %d, want %d; stderr:\n%s", strings.Join(tt.args, " "), code, tt.wantCode, errOut.String())
			}
			if tt.goldenOut != "" {
				golden(t, tt.goldenOut, notEmbedded(out.String(), tt.name == "list"))
			}
			if tt.goldenErr != "" {
				golden(t, tt.goldenErr, notEmbedded(errOut.String(), false))
			}
			if !strings.Contains(out.String(), tt.wantStdout) {
				t.Errorf("stdout = %q, want it to contain %q", out.String(), tt.wantStdout)
			}
			if !strings.Contains(errOut.String(), tt.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", errOut.String(), tt.wantStderr)
			}
		})
	}
}

func TestCheckWithProfiles(t *testing.T) {
	dir := t.TempDir()
	code := filepath.Join(dir, "code")
	if err := os.WriteFile(code, []byte("ABCDEF"), 0o600); err != nil {
		t.Fatal(err)
	}
	profDir, err := filepath.Abs(testProfiles + "/good")
	if err != nil {
		t.Fatal(err)
	}
	head := "[gateway]\nserial = \"GW1\"\nverification_code_file = \"" + code + "\"\n[upstream]\nlbs = \"tcp://127.0.0.1:7700\"\n" +
		"[profiles]\ndir = \"" + profDir + "\"\n"
	const good = `
[[device]]
id = "meter-1"
kind = "modbus"
profile = "test-meter"
url = "tcp://127.0.0.1:5020"
unit = 2
exclude = ["voltage_l3"]
  [[device.attribute]]
  name = "voltage_l1"
  address = 100
  [[device.event]]
  name = "voltage_high"
  above = 250.0

[[device]]
id = "sensor-1"
kind = "modbus"
profile = "test-sensor"
url = "rtu:///dev/ttyUSB0"
unit = 7
`
	const bad = `
[[device]]
id = "meter-2"
kind = "modbus"
profile = "test-metre"
url = "tcp://127.0.0.1:5020"
unit = 3

[[device]]
id = "meter-3"
kind = "modbus"
profile = "test-meter"
url = "tcp://127.0.0.1:5020"
unit = 4
attribute = [{name = "power_active", unit = "kW"}]
`
	tests := []struct {
		name, conf string
		wantCode   int
		want       []string
	}{
		{name: "good", conf: head + good, want: []string{"is valid", "meter-1", "sensor-1"}},
		{name: "bad", conf: head + good + bad, wantCode: 1, want: []string{
			`device "meter-2": profile: unknown profile "test-metre" (did you mean "test-meter"?)`,
			`device "meter-3": class "energy-meter/1": attribute "power_active": float in "kW", want float in "W": does not implement its class`,
			"2 problem(s)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "osapgw.toml")
			if err := os.WriteFile(cfg, []byte(tt.conf), 0o640); err != nil {
				t.Fatal(err)
			}
			var out, errOut bytes.Buffer
			if rc := dispatch(context.Background(), []string{"check", "-c", cfg}, &out, &errOut); rc != tt.wantCode {
				t.Fatalf("check = %d, want %d; stderr:\n%s", rc, tt.wantCode, errOut.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String()+errOut.String(), w) {
					t.Errorf("check output lacks %q; got:\n%s%s", w, out.String(), errOut.String())
				}
			}
		})
	}
}

// TestPackagedProfileSample: the sample the .deb puts in
// /etc/osapgw/profiles.d is, once copied to example.toml, a profile that
// passes, and it is not read as it is.
func TestPackagedProfileSample(t *testing.T) {
	data, err := os.ReadFile("../../packaging/profiles.d/example.toml.sample")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "example.toml.sample"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if rc := dispatch(context.Background(), []string{"profile", "show", "example", "-dir", dir}, &out, &errOut); rc != 1 {
		t.Errorf("profile show example with only the sample = %d, want 1 (the sample is not read)", rc)
	}
	if err := os.WriteFile(filepath.Join(dir, "example.toml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errOut.Reset()
	if rc := dispatch(context.Background(), []string{"profile", "check", "example", "-dir", dir}, &out, &errOut); rc != 0 {
		t.Errorf("profile check example = %d; stderr:\n%s", rc, errOut.String())
	}
}
