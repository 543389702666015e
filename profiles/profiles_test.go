package profiles

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func readTestdata(t *testing.T, dir string) map[string]*Profile {
	t.Helper()
	m, err := readDir(os.DirFS("testdata"), dir, "testdata/"+dir, true)
	if err != nil {
		t.Fatalf("readDir(testdata/%s) = %v", dir, err)
	}
	return m
}

func TestParse(t *testing.T) {
	tests := []struct {
		file    string
		wantErr string // "" for none
	}{
		{file: "good/test-meter.toml"},
		{file: "good/test-sensor.toml"},
		// Points are the kind's to check: a bad key passes here.
		{file: "bad/bad-point.toml"},
		{file: "bad/wrong-name.toml", wantErr: `bad/wrong-name.toml:1: name: "other-name", but the file is wrong-name.toml: a profile's name is its file's name: invalid profile`},
		{file: "bad/no-source.toml", wantErr: "bad/no-source.toml: source: missing: name the public register map the profile was written from (manual and revision, or project and path): invalid profile\n" +
			`testdata/bad/no-source.toml:2: class: unknown class "heat-pump/1" (one of energy-meter/1, environment-sensor/1, ip-camera/1, pv-inverter/1): invalid profile`},
		{file: "bad/not-toml.toml", wantErr: "bad/not-toml.toml:2: strings cannot contain newlines"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", tt.file)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			p, err := Parse(path, data)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse = %v, want no error", err)
				}
				if p.Name+".toml" != filepath.Base(tt.file) || p.Kind != "modbus" || p.Source == "" || p.Text() != string(data) {
					t.Errorf("Parse = %+v", p)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Parse = %v, want %q", err, tt.wantErr)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Parse = %v, does not wrap ErrInvalid", err)
			}
		})
	}
}

func TestLoadUserDir(t *testing.T) {
	emb := readTestdata(t, "good")
	c, err := load(emb, "testdata/user")
	if err != nil {
		t.Fatalf("load = %v", err)
	}
	var got []string
	for _, p := range c.Profiles() {
		got = append(got, p.Name+" "+p.Path)
	}
	want := []string{"my-sensor testdata/user/my-sensor.toml", "test-meter testdata/user/test-meter.toml", "test-sensor testdata/good/test-sensor.toml"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("profiles =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	m, _ := c.Lookup("test-meter")
	if !m.Overrides || m.Embedded || m.Model != "TM-3 (site variant)" {
		t.Errorf("test-meter = %+v, want the user's, overriding", m)
	}
	if s, _ := c.Lookup("my-sensor"); s.Overrides || s.Embedded {
		t.Errorf("my-sensor = %+v, want the user's, not overriding", s)
	}
	if s, _ := c.Lookup("test-sensor"); !s.Embedded {
		t.Errorf("test-sensor = %+v, want the embedded one", s)
	}
	// The embedded set is not changed by a user's override.
	if emb["test-meter"].Overrides || emb["test-meter"].Model != "TM-3" {
		t.Errorf("embedded test-meter changed: %+v", emb["test-meter"])
	}

	if c, err := load(emb, filepath.Join(t.TempDir(), "absent")); err != nil || len(c.Profiles()) != 2 {
		t.Errorf("load(absent dir) = %d profiles, %v; want the 2 embedded, no error", len(c.Profiles()), err)
	}
	c, err = load(emb, "testdata/bad")
	if err == nil || !errors.Is(err, ErrInvalid) || len(strings.Split(err.Error(), "\n")) != 4 {
		t.Errorf("load(testdata/bad) = %v, want 4 problems wrapping ErrInvalid", err)
	}
	if _, lerr := c.Lookup("wrong-unit"); lerr != nil {
		t.Errorf("load(testdata/bad) dropped the good headers: %v", lerr)
	}
}

func TestLookupUnknown(t *testing.T) {
	c := &Catalog{byName: map[string]*Profile{}}
	for _, n := range []string{"eastron-sdm630", "eastron-sdm120", "abb-b23", "finder-7m", "sunspec"} {
		c.byName[n] = &Profile{Name: n}
	}
	tests := []struct{ name, want string }{
		{"eastron-sdm63", `unknown profile "eastron-sdm63" (did you mean "eastron-sdm630", "eastron-sdm120"?)`},
		{"sdm630", `unknown profile "sdm630" (did you mean "eastron-sdm630"?)`},
		{"abb-b24", `unknown profile "abb-b24" (did you mean "abb-b23"?)`},
		{"schneider-iem3155", `unknown profile "schneider-iem3155" (osapgw profile list lists them)`},
	}
	for _, tt := range tests {
		_, err := c.Lookup(tt.name)
		if err == nil || err.Error() != tt.want || !errors.Is(err, ErrUnknown) {
			t.Errorf("Lookup(%q) = %v, want %s", tt.name, err, tt.want)
		}
	}
}

func TestDecode(t *testing.T) {
	m := readTestdata(t, "good")
	var v struct {
		Defaults struct {
			Table string `toml:"table"`
		} `toml:"defaults"`
		Attribute []struct {
			Name    string `toml:"name"`
			Address int    `toml:"address"`
			Unit    string `toml:"unit"`
			Table   string `toml:"table"`
			Type    string `toml:"type"`
		} `toml:"attribute"`
	}
	err := m["test-meter"].Decode(&v)
	// The keys v lacks are errors, placed at their first line (a table
	// once, not each of its keys); the header's are not.
	for _, want := range []string{`testdata/good/test-meter.toml:14: unknown key "link"`, `testdata/good/test-meter.toml:69: unknown key "event"`, `test-meter.toml:11: unknown key "defaults.type"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Decode = %v, want it to contain %q", err, want)
		}
	}
	if n := len(strings.Split(err.Error(), "\n")); n != 6 || strings.Contains(err.Error(), `"source"`) {
		t.Errorf("Decode = %v, reports a header key", err)
	}
	if v.Defaults.Table != "input" || len(v.Attribute) != 8 || v.Attribute[4].Name != "power_active" || v.Attribute[4].Address != 52 {
		t.Errorf("Decode = %+v", v)
	}
	var w struct {
		Attribute []struct {
			Address string `toml:"address"`
		} `toml:"attribute"`
	}
	if err := m["test-meter"].Decode(&w); err == nil || !strings.Contains(err.Error(), "testdata/good/test-meter.toml:30: attribute.address: ") {
		t.Errorf("Decode(wrong type) = %v, want the file, line and key", err)
	}
	if n := m["test-meter"].Line("attribute.unit", 4); n != 51 {
		t.Errorf(`Line("attribute.unit", 4) = %d, want 51`, n)
	}
}

func TestMemo(t *testing.T) {
	p := &Profile{Name: "x"}
	var calls atomic.Int32
	var wg sync.WaitGroup
	got := make([]any, 8)
	for i := range got {
		wg.Go(func() {
			got[i] = p.Memo("k", func() any { calls.Add(1); return new(int) })
		})
	}
	wg.Wait()
	if calls.Load() != 1 {
		t.Errorf("build called %d times, want 1", calls.Load())
	}
	for _, g := range got {
		if g != got[0] {
			t.Fatalf("Memo returned different values")
		}
	}
	if p.Memo("other", func() any { return 2 }) != 2 {
		t.Error("Memo of another key did not build")
	}
}

func TestEmbeddedParse(t *testing.T) {
	// Every embedded profile parses (adapters/modbus checks their points
	// and classes).
	if _, err := readEmbedded(); err != nil {
		t.Fatal(err)
	}
	for _, p := range Embedded().Profiles() {
		if !p.Embedded || p.Path != "embedded/"+p.Name+".toml" {
			t.Errorf("%s: Embedded %v, Path %q", p.Name, p.Embedded, p.Path)
		}
	}
}
