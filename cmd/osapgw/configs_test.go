package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestShippedConfigs checks every file in configs/ with osapgw check, as
// an operator would after copying it: secret files are made in a
// temporary directory, since the test cannot write /etc.
func TestShippedConfigs(t *testing.T) {
	files, err := filepath.Glob("../../configs/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no configs found: %v", err)
	}
	secrets := t.TempDir()
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			text := strings.ReplaceAll(string(b), "/etc/osapgw/secrets/", secrets+"/")
			for _, line := range strings.Split(text, "\n") {
				if i := strings.Index(line, secrets+"/"); i >= 0 && !strings.HasPrefix(strings.TrimSpace(line), "#") {
					name := strings.Trim(line[i+len(secrets)+1:], `" `)
					if err := os.WriteFile(filepath.Join(secrets, name), []byte("secret\n"), 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			cfg := filepath.Join(t.TempDir(), filepath.Base(f))
			if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errOut bytes.Buffer
			if code := dispatch(context.Background(), []string{"check", "-c", cfg}, &out, &errOut); code != 0 {
				t.Fatalf("osapgw check %s = %d:\n%s", f, code, errOut.String())
			}
			if !strings.Contains(out.String(), "is valid") {
				t.Errorf("check output:\n%s", out.String())
			}
		})
	}
}
