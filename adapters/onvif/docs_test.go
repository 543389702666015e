package onvif

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/osapgw/osapgw/adapters"
)

// TestDocExamples decodes every onvif [[device]] block of the TOML
// examples in this README and docs/configuration.md (their sub-tables,
// [device.event_map], as a block's own), so they cannot drift from the
// code.
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
				if !strings.Contains(block, `kind = "onvif"`) {
					continue
				}
				n++
				body := strings.ReplaceAll(block, "\n[device.", "\n[")
				if _, err := New("doc", adapters.TOMLDecoder(body), adapters.Env{}); err != nil {
					t.Errorf("%s: example %d: %v", file, n, err)
				}
			}
		}
		if n == 0 {
			t.Errorf("%s: no onvif example found", file)
		}
	}
}
