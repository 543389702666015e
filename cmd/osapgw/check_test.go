package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckReportsEveryProblem(t *testing.T) {
	var out, errOut bytes.Buffer
	code := dispatch(context.Background(), []string{"check", "-c", "testdata/bad.toml"}, &out, &errOut)
	if code != 1 {
		t.Fatalf("check exit code = %d, want 1; stderr:\n%s", code, errOut.String())
	}
	for _, want := range []string{
		`testdata/bad.toml:6: upstream.lbs: "ftp://lbs:7700": scheme "ftp" is not tls or tcp`,
		`testdata/bad.toml:8: unknown key "upstream.colour"`,
		`testdata/bad.toml:12: device "a": kind: unknown kind "nosuchkind"`,
		`testdata/bad.toml:14: device "a": duplicate id (first at line 10)`,
		`gateway.verification_code_file: testdata/public-code has mode 0644, readable by others; run: chmod 0600 testdata/public-code`,
	} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("check output lacks %q; got:\n%s", want, errOut.String())
		}
	}
}

func TestCheckSummary(t *testing.T) {
	dir := t.TempDir()
	code := filepath.Join(dir, "code")
	if err := os.WriteFile(code, []byte("ABCDEF"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "osapgw.toml")
	text := "[gateway]\nserial = \"GW1\"\nverification_code_file = \"" + code + "\"\n[upstream]\nlbs = \"tcp://127.0.0.1:7700\"\n"
	if err := os.WriteFile(cfg, []byte(text), 0o640); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if rc := dispatch(context.Background(), []string{"check", "-c", cfg}, &out, &errOut); rc != 0 {
		t.Fatalf("check exit code = %d; stderr:\n%s", rc, errOut.String())
	}
	for _, want := range []string{"is valid", "serial GW1", "tcp://127.0.0.1:7700", "devices   none"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q; got:\n%s", want, out.String())
		}
	}
}
