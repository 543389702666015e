package modbus

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/osapgw/osapgw/adapters"
)

// TestDocExamples decodes and checks every modbus [[device]] block of the
// TOML examples in README.md and docs/configuration.md, so they cannot
// drift from the code.
func TestDocExamples(t *testing.T) {
	fence := regexp.MustCompile("(?s)```toml\n(.*?)```")
	for _, file := range []string{"README.md", filepath.Join("..", "..", "docs", "configuration.md")} {
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, m := range fence.FindAllStringSubmatch(string(text), -1) {
			for _, block := range strings.Split(m[1], "[[device]]\n")[1:] {
				if !strings.Contains(block, `kind = "modbus"`) || strings.Contains(block, "# ...") {
					continue
				}
				n++
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
