//go:build !synthetic

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckSyntheticNotInThisBuild: a configuration naming the load-test
// kind is told how to build it in, not that the kind is unknown.
func TestCheckSyntheticNotInThisBuild(t *testing.T) {
	dir := t.TempDir()
	code := filepath.Join(dir, "code")
	if err := os.WriteFile(code, []byte("ABCDEF"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "osapgw.toml")
	text := "[gateway]\nserial = \"GW1\"\nverification_code_file = \"" + code + "\"\n[upstream]\nlbs = \"tcp://127.0.0.1:7700\"\n" +
		"[[device]]\nid = \"gen-1\"\nkind = \"synthetic\"\nevent_rate = 5.0\n"
	if err := os.WriteFile(cfg, []byte(text), 0o640); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if rc := dispatch(context.Background(), []string{"check", "-c", cfg}, &out, &errOut); rc != 1 {
		t.Fatalf("check exit code = %d, want 1; stderr:\n%s", rc, errOut.String())
	}
	want := cfg + `:8: device "gen-1": kind: "synthetic" is not in this build of osapgw: it is a load-test kind, built in only with ` + "`go build -tags synthetic ./cmd/osapgw`"
	if !strings.Contains(errOut.String(), want) {
		t.Errorf("check stderr = %q, want it to contain %q", errOut.String(), want)
	}
	if strings.Contains(errOut.String(), "event_rate") {
		t.Errorf("check stderr = %q, want no complaint about the kind's own keys", errOut.String())
	}
}
