package config_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/config"
	"github.com/osapgw/osapgw/profiles"
)

// FuzzCheck runs what `osapgw check` runs (Parse, then Check with the
// embedded profiles) on arbitrary bytes, from the shipped configurations
// (../configs) and every bad case of testdata/bad. It asserts that nothing
// panics and that every problem and warning names its place: each begins
// with the file's name, a *config.Error with the line it carries, and no
// line is past the end of the text.
func FuzzCheck(f *testing.F) {
	for _, pattern := range []string{"../configs/*.toml", "testdata/bad/*.toml"} {
		files, err := filepath.Glob(pattern)
		if err != nil || len(files) == 0 {
			f.Fatalf("no seeds in %s (%v)", pattern, err)
		}
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	code := filepath.Join(f.TempDir(), "code") // never written: an unprovisioned box
	cat := profiles.Embedded()
	env := func(config.Device) adapters.Env {
		return adapters.Env{Logger: slog.New(slog.DiscardHandler), Profiles: cat}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "fuzz.toml"
		lines := bytes.Count(data, []byte("\n")) + 1
		cfg, err := config.Parse(name, data)
		var warnings []error
		if cfg != nil {
			cfg.Gateway.VerificationCodeFile = code
			var checkErr error
			warnings, checkErr = cfg.Check(env)
			err = errors.Join(err, checkErr)
		}
		for _, p := range append(config.Problems(err), warnings...) {
			msg := p.Error()
			if !strings.HasPrefix(msg, name+":") {
				t.Fatalf("problem %q does not name the file", msg)
			}
			var ce *config.Error
			if errors.As(p, &ce) && ce.Line > 0 && !strings.HasPrefix(msg, fmt.Sprintf("%s:%d: ", ce.File, ce.Line)) {
				t.Fatalf("problem %q does not begin with the place it carries (%s:%d)", msg, ce.File, ce.Line)
			}
			var line int
			if _, err := fmt.Sscanf(strings.TrimPrefix(msg, name+":"), "%d", &line); err == nil && (line < 1 || line > lines) {
				t.Fatalf("problem %q at line %d of a %d-line text", msg, line, lines)
			}
		}
	})
}
