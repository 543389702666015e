package config_test

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/osapgw/osapgw/adapters"
	_ "github.com/osapgw/osapgw/adapters/modbus"
	_ "github.com/osapgw/osapgw/adapters/onvif"
	"github.com/osapgw/osapgw/config"
)

var update = flag.Bool("update", false, "rewrite the .want files of testdata/bad")

// TestBadConfigs loads and checks each testdata/bad/CASE.toml as osapgw
// check does, and compares every problem and warning, file:line included,
// with CASE.want: one "error: " or "warning: " line each, in the order
// check prints them. Run with -update to rewrite the .want files, then
// read the diff.
func TestBadConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.toml")
	if err != nil || len(files) < 30 {
		t.Fatalf("%d cases in testdata/bad (%v), want at least 30", len(files), err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".toml")
		t.Run(name, func(t *testing.T) {
			got := check(t, file)
			wantFile := strings.TrimSuffix(file, ".toml") + ".want"
			if *update {
				if err := os.WriteFile(wantFile, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(wantFile)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("check %s mismatch (-want +got):\n%s", file, diff)
			}
			if !strings.Contains(got, "error: ") && !strings.Contains(got, "warning: ") {
				t.Errorf("check %s found nothing; a case here must be bad", file)
			}
		})
	}
}

// check returns what Load and Check find in file, one line each. It also
// asserts that every problem and warning that names a line is a
// *config.Error whose Line is the one its text gives: the place is
// carried, not written into the text alone.
func check(t *testing.T, file string) string {
	t.Helper()
	var b strings.Builder
	cfg, err := config.Load(file)
	var warnings []error
	if cfg != nil {
		var checkErr error
		warnings, checkErr = cfg.Check(func(config.Device) adapters.Env { return adapters.Env{} })
		err = errors.Join(err, checkErr)
	}
	for _, p := range config.Problems(err) {
		placed(t, p)
		b.WriteString("error: " + p.Error() + "\n")
	}
	for _, w := range warnings {
		placed(t, w)
		b.WriteString("warning: " + w.Error() + "\n")
	}
	return b.String()
}

func placed(t *testing.T, err error) {
	t.Helper()
	var ce *config.Error
	if !errors.As(err, &ce) {
		return // a syntax error, placed by the TOML library
	}
	if ce.Line == 0 {
		t.Errorf("%v: no line for key %q", err, ce.Key)
	}
	if !strings.HasPrefix(err.Error(), fmt.Sprintf("%s:%d: ", ce.File, ce.Line)) {
		t.Errorf("%v: text does not begin with the place it carries (%s:%d)", err, ce.File, ce.Line)
	}
}
