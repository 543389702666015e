package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMissing runs a child test with and without CI=true: it skips on a
// workstation and fails in CI.
func TestMissing(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") == "1" {
		Missing(t, "the %s is not here", "widget")
		return
	}
	tests := []struct {
		name string
		ci   string
		want string
		fail bool
	}{
		{name: "workstation", ci: "", want: "--- SKIP", fail: false},
		{name: "CI", ci: "true", want: "CI=true, yet the widget is not here", fail: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run", "^TestMissing$", "-test.v")
			cmd.Env = append(os.Environ(), "TESTENV_CHILD=1", "CI="+tt.ci)
			out, err := cmd.CombinedOutput()
			if (err != nil) != tt.fail || !strings.Contains(string(out), tt.want) {
				t.Fatalf("child with CI=%q: err %v, output\n%s\nwant failure %v and %q", tt.ci, err, out, tt.fail, tt.want)
			}
		})
	}
}
