package profiles

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// addProfileSeeds adds every shipped and test profile to f as (name,
// text), the name being the file's without .toml.
func addProfileSeeds(f *testing.F, patterns ...string) {
	f.Helper()
	n := 0
	for _, pattern := range patterns {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(strings.TrimSuffix(filepath.Base(file), ".toml"), b)
			n++
		}
	}
	if n < 10 {
		f.Fatalf("%d seed profiles in %v, want at least 10", n, patterns)
	}
}

// FuzzParse parses arbitrary profile files, from every embedded and test
// profile: nothing panics; a refused file's error wraps ErrInvalid and
// each of its problems names the file, at a line within the text; an
// accepted one decodes (Decode) with the same guarantees, and Line gives
// lines within the text.
func FuzzParse(f *testing.F) {
	addProfileSeeds(f, "data/*.toml", "testdata/*/*.toml")
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		path := filepath.Join("profiles.d", name+".toml")
		lines := bytes.Count(data, []byte("\n")) + 1
		p, err := Parse(path, data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%s) = %v, not wrapping ErrInvalid", path, err)
			}
			checkPlaced(t, path, lines, err)
			return
		}
		var v struct {
			Attribute []map[string]any `toml:"attribute"`
		}
		if err := p.Decode(&v); err != nil {
			checkPlaced(t, path, lines, err)
		}
		for _, key := range []string{"name", "attribute", "attribute.address", "defaults.order"} {
			for _, idx := range []int{-1, 0, 3} {
				if l := p.Line(key, idx); l < 0 || l > lines {
					t.Fatalf("Line(%q, %d) = %d in a %d-line text", key, idx, l, lines)
				}
			}
		}
	})
}

// checkPlaced asserts that each problem in err (one a line, as
// errors.Join writes them) begins with path and, when it gives a line, one
// within the text's lines.
func checkPlaced(t *testing.T, path string, lines int, err error) {
	t.Helper()
	for _, msg := range strings.Split(err.Error(), "\n") {
		if !strings.HasPrefix(msg, path+":") {
			t.Fatalf("problem %q does not name the file %s (in %q)", msg, path, err)
		}
		var line int
		if _, err := fmt.Sscanf(strings.TrimPrefix(msg, path+":"), "%d", &line); err == nil && (line < 1 || line > lines) {
			t.Fatalf("problem %q at line %d of a %d-line text", msg, line, lines)
		}
	}
}
