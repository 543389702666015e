package modbus

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/profiles"
)

// TestDocExamples decodes and checks every modbus [[device]] block of the
// TOML examples in README.md, docs/configuration.md and docs/profiles.md,
// and every example profile (a block with name and source), so they
// cannot drift from the code.
func TestDocExamples(t *testing.T) {
	fence := regexp.MustCompile("(?s)```toml\n(.*?)```")
	// A tree without profiles/data (a branch that has the code only)
	// cannot check the examples that name embedded profiles.
	noProfiles := len(profiles.Embedded().Profiles()) == 0
	docs := filepath.Join("..", "..", "docs")
	for _, file := range []string{"README.md", filepath.Join(docs, "configuration.md"), filepath.Join(docs, "profiles.md")} {
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, m := range fence.FindAllStringSubmatch(string(text), -1) {
			if strings.Contains(m[1], "\nsource = ") {
				n++
				checkDocProfile(t, file, m[1])
				continue
			}
			for _, block := range strings.Split(m[1], "[[device]]\n")[1:] {
				if !strings.Contains(block, `kind = "modbus"`) || strings.Contains(block, "# ...") {
					continue
				}
				n++
				if noProfiles && strings.Contains(block, "\nprofile = ") {
					t.Logf("%s: example %d names a profile, and profiles/data is empty: not checked", file, n)
					continue
				}
				if _, err := New("doc", adapters.TOMLDecoder(blockBody(block)), adapters.Env{}); err != nil {
					t.Errorf("%s: example %d: %v", file, n, err)
				}
			}
		}
		t.Logf("%s: %d modbus examples", file, n)
		if n == 0 {
			t.Errorf("%s: no modbus example found", file)
		}
	}
}

// checkDocProfile checks an example profile of the docs as osapgw
// profile check would.
func checkDocProfile(t *testing.T, file, text string) {
	t.Helper()
	name := regexp.MustCompile(`(?m)^name = "([^"]+)"`).FindStringSubmatch(text)
	if name == nil {
		t.Errorf("%s: example profile without a name:\n%s", file, text)
		return
	}
	p, err := profiles.Parse(name[1]+".toml", []byte(text))
	if err == nil {
		err = CheckProfile(p)
	}
	if err != nil {
		t.Errorf("%s: example profile %q: %v", file, name[1], err)
	}
}
