package model

import (
	"os/exec"
	"strings"
	"testing"
)

// TestStandardLibraryOnly keeps the model a leaf: it may import the
// standard library and nothing else, so that how a value travels (osap) or
// is kept (store) never leaks into what it is.
func TestStandardLibraryOnly(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command on PATH")
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	var others []string
	for _, p := range strings.Fields(string(out)) {
		if p != "github.com/osapgw/osapgw/model" {
			others = append(others, p)
		}
	}
	if len(others) > 0 {
		t.Fatalf("package model depends on %v; it may depend on the standard library only", others)
	}
}
