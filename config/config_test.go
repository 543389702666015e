package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/osapgw/osapgw/adapters"
)

// fakeKind is a kind whose section has a url and attributes, as a real
// adapter's would.
type fakeSection struct {
	URL       string `toml:"url"`
	Attribute []struct {
		Name    string `toml:"name"`
		Address int    `toml:"address"`
	} `toml:"attribute"`
}

func init() {
	adapters.Register(adapters.Kind{Name: "fake", New: func(id string, dec adapters.Decoder, _ adapters.Env) (adapters.Adapter, error) {
		var s fakeSection
		if err := dec.Decode(&s); err != nil {
			return nil, err
		}
		if !strings.HasPrefix(s.URL, "tcp://") {
			return nil, errors.New("url: want tcp://host:port")
		}
		return nil, nil
	}})
	adapters.Omit("left-out", "build it with -tags left-out")
}

const base = `
[gateway]
serial = "GW1"
verification_code_file = "code"

[upstream]
lbs = "tcp://127.0.0.1:7700"
`

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		text     string
		wantErrs []string
	}{
		{name: "minimal", text: base},
		{name: "device", text: base + `
[[device]]
id = "boiler-1"
kind = "fake"
url = "tcp://127.0.0.1:502"
[[device.attribute]]
name = "temp"
`},
		{name: "syntax error", text: base + "\n[store\npath = 1\n", wantErrs: []string{"osapgw.toml:10:"}},
		{name: "unknown top key", text: base + "bogus = 1\n", wantErrs: []string{`osapgw.toml:8: unknown key "upstream.bogus"`}},
		{name: "unknown table", text: base + "[extra]\nx = 1\n", wantErrs: []string{`osapgw.toml:8: unknown key "extra"`}},
		{name: "missing serial", text: strings.Replace(base, `serial = "GW1"`, "", 1), wantErrs: []string{"gateway.serial: missing"}},
		{name: "bad lbs", text: strings.Replace(base, "tcp://127.0.0.1:7700", "http://x", 1), wantErrs: []string{`osapgw.toml:7: upstream.lbs: "http://x": scheme "http"`}},
		{name: "legacy suite", text: base + `suites = ["aes-128-ecb"]` + "\n", wantErrs: []string{"upstream.suites: suite \"aes-128-ecb\" is legacy"}},
		{name: "bad duration", text: base + `heartbeat = "soon"` + "\n", wantErrs: []string{"osapgw.toml:8:", `invalid duration "soon"`}},
		{name: "bad size", text: base + "[store]\nmax_bytes = \"lots\"\n", wantErrs: []string{`invalid size "lots"`}},
		{name: "duplicate id", text: base + `
[[device]]
id = "a"
kind = "fake"
[[device]]
id = "a"
kind = "fake"
`, wantErrs: []string{`osapgw.toml:12: device "a": duplicate id (first at line 9)`}},
		{name: "unknown kind", text: base + "[[device]]\nid = \"a\"\nkind = \"bacnet\"\n", wantErrs: []string{`osapgw.toml:10: device "a": kind: unknown kind "bacnet" (one of`}},
		{name: "omitted kind", text: base + "[[device]]\nid = \"a\"\nkind = \"left-out\"\n", wantErrs: []string{`osapgw.toml:10: device "a": kind: "left-out" is not in this build of osapgw: build it with -tags left-out`}},
		{name: "missing id", text: base + "[[device]]\nkind = \"fake\"\n", wantErrs: []string{"device #1: id: missing"}},
		{name: "bad id", text: base + "[[device]]\nid = \"a/b\"\nkind = \"fake\"\n", wantErrs: []string{`device "a/b": id: use letters`}},
		{name: "all problems at once", text: strings.Replace(base, `serial = "GW1"`, "", 1) + "bogus = 2\n[log]\nlevel = \"loud\"\n",
			wantErrs: []string{"gateway.serial: missing", `unknown key "upstream.bogus"`, `log.level: "loud"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("osapgw.toml", []byte(tt.text))
			if len(tt.wantErrs) == 0 {
				if err != nil {
					t.Fatalf("Parse() = %v, want no error", err)
				}
				if c.HTTP.Listen != DefaultHTTPListen || time.Duration(c.Upstream.Heartbeat) != DefaultHeartbeat || c.Store.MaxBytes != DefaultMaxBytes {
					t.Errorf("defaults not applied: %+v", c)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse() = nil, want errors %q", tt.wantErrs)
			}
			for _, want := range tt.wantErrs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Parse() = %v\nwant it to contain %q", err, want)
				}
			}
		})
	}
}

func TestDeviceDecoder(t *testing.T) {
	text := base + `
[[device]]
id = "ok"
kind = "fake"
url = "tcp://127.0.0.1:502"

[[device]]
id = "boiler-1"
kind = "fake"
url = "tcp://127.0.0.1:502"
colour = "red"
[[device.attribute]]
name = "temp"
adress = 3

[[device]]
id = "wrongtype"
kind = "fake"
url = 5
`
	c, err := Parse("site.toml", []byte(text))
	if err != nil {
		t.Fatalf("Parse() = %v", err)
	}
	env := func(Device) adapters.Env { return adapters.Env{} }
	if _, err := c.Devices[0].Build(env(c.Devices[0])); err != nil {
		t.Errorf("Build(ok) = %v", err)
	}
	_, err = c.Devices[1].Build(env(c.Devices[1]))
	for _, want := range []string{`site.toml:18: device "boiler-1": unknown key "device.colour"`, `site.toml:21: device "boiler-1": unknown key "device.attribute.adress"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Build(boiler-1) = %v\nwant it to contain %q", err, want)
		}
	}
	_, err = c.Devices[2].Build(env(c.Devices[2]))
	if err == nil || !strings.Contains(err.Error(), `site.toml:26: device "wrongtype": url:`) {
		t.Errorf("Build(wrongtype) = %v, want the line of url named", err)
	}
	if c.Devices[0].Hash == c.Devices[1].Hash {
		t.Error("two different devices have the same hash")
	}
	again, _ := Parse("site.toml", []byte(text))
	if again.Devices[1].Hash != c.Devices[1].Hash {
		t.Error("the same device parsed twice has two hashes")
	}
}

func TestCheckSecretFile(t *testing.T) {
	dir := t.TempDir()
	code := filepath.Join(dir, "code")
	text := strings.Replace(base, `"code"`, `"`+code+`"`, 1)
	c, err := Parse("osapgw.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	env := func(Device) adapters.Env { return adapters.Env{} }
	if _, err := c.Check(env); err != nil {
		t.Errorf("Check() with no code file yet = %v, want nil (a box not yet provisioned)", err)
	}
	if w := c.Warnings(); len(w) != 1 || !strings.Contains(w[0], "does not exist yet") {
		t.Errorf("Warnings() with no code file = %q, want one about provisioning", w)
	}
	if err := os.WriteFile(code, []byte("ABCDEF\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Check(env); err == nil || !strings.Contains(err.Error(), "readable by others; run: chmod 0600") {
		t.Errorf("Check() with a 0644 code file = %v, want a permission error", err)
	}
	if err := os.Chmod(code, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Check(env); err != nil {
		t.Errorf("Check() = %v, want nil", err)
	}
	if got, _ := c.VerificationCode(); got != "ABCDEF" {
		t.Errorf("VerificationCode() = %q, want ABCDEF", got)
	}
}

func TestSize(t *testing.T) {
	tests := []struct {
		in   string
		want Size
	}{{"256MiB", 256 << 20}, {"1GiB", 1 << 30}, {"1000", 1000}, {"2 KB", 2000}}
	for _, tt := range tests {
		var s Size
		if err := s.UnmarshalText([]byte(tt.in)); err != nil || s != tt.want {
			t.Errorf("Size(%q) = %d, %v, want %d", tt.in, s, err, tt.want)
		}
	}
	var d Duration
	if err := d.UnmarshalText([]byte("7d")); err != nil || time.Duration(d) != 7*24*time.Hour {
		t.Errorf("Duration(7d) = %v, %v", time.Duration(d), err)
	}
}
