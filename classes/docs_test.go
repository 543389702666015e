package classes

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/osapgw/osapgw/model"
)

// TestDocs checks that docs/profiles.md has a table of every class, row
// for row as defined here, so the docs cannot drift from the code.
func TestDocs(t *testing.T) {
	b, err := os.ReadFile("../docs/profiles.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, c := range All() {
		head := "### `" + c.ID + "`"
		i := strings.Index(doc, head+"\n")
		if i < 0 {
			t.Errorf("docs/profiles.md: no heading %q", head)
			continue
		}
		section := doc[i+len(head):]
		if j := strings.Index(section, "\n### "); j >= 0 {
			section = section[:j]
		}
		for _, row := range docRows(c) {
			if !strings.Contains(section, row+"\n") {
				t.Errorf("docs/profiles.md: %s: no row %q", c.ID, row)
			}
		}
	}
}

// docRows returns the table rows of c as docs/profiles.md writes them.
func docRows(c *Class) []string {
	var rows []string
	req := func(r bool) string {
		if r {
			return "yes"
		}
		return ""
	}
	unit := func(u string) string {
		if u == "" {
			return ""
		}
		return "`" + u + "`"
	}
	for _, a := range c.Attributes {
		rows = append(rows, fmt.Sprintf("| attribute | `%s` | %s | %s | %s | %s |", a.Name, a.Type, unit(a.Unit), req(a.Required), a.Description))
	}
	params := func(ps []model.Param) string {
		var s []string
		for _, p := range ps {
			x := "`" + p.Name + "` " + string(p.Type)
			if p.Unit != "" {
				x += " " + unit(p.Unit)
			}
			s = append(s, x)
		}
		return strings.Join(s, ", ")
	}
	for _, e := range c.Events {
		rows = append(rows, fmt.Sprintf("| event | `%s` | %s | | %s | %s |", e.Name, params(e.Params), req(e.Required), e.Description))
	}
	for _, o := range c.Operations {
		sig := params(o.Inputs)
		if len(o.Outputs) > 0 {
			sig += " → " + params(o.Outputs)
		}
		rows = append(rows, fmt.Sprintf("| operation | `%s` | %s | | %s | %s |", o.Name, sig, req(o.Required), o.Description))
	}
	return rows
}
