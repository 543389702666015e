// Package testenv lets a test say that this machine lacks what it needs
// (a program, a permission): it skips with the reason, except under
// CI=true, where the README's test command (make test, which runs
// scripts/test-deps.sh first) has installed everything, so a missing
// piece is a fault of the set-up and the test fails instead of passing
// unseen.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run under CI=true.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing ends the test because something it needs is not here: Skipf
// with the reason, or, under CI=true, Fatalf.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI=true, yet "+format, args...)
	}
	t.Skipf(format, args...)
}

// LookPath returns the path of program name, or ends the test through
// Missing, naming what installs it.
func LookPath(t testing.TB, name, installedBy string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s is not installed (%s)", name, installedBy)
	}
	return p
}
