package config

import (
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestLineIndex(t *testing.T) {
	text := `# comment
[gateway]
serial = "GW1" # trailing
"quoted key" = 1
a.b = 2

[[device]]
id = "one"
note = """
[[device]]
not = "a key"
"""
[[device.attribute]]
name = "x"
[[device.attribute]]
name = 'y'
address = 3
[[device.operation]]
name = "go"
[[device.operation.write]]
value = 1
[[device.operation.write]]
value = "it's"

[[device]]
id = "two"
attribute = [
  { name = "p", address = 1 },
  { name = "q",
    address = [2, 3] },
]
event = [{ name = "e" }, { name = "f" }]
[[device.operation]]
name = "stop"
`
	li := indexLines([]byte(text))
	tests := []struct {
		path string
		want int
	}{
		{"gateway", 2},
		{"gateway.serial", 3},
		{"gateway.quoted key", 4},
		{"gateway.a.b", 5},
		{"gateway.missing", 2},
		{"device", 7},
		{"device[0]", 7},
		{"device[0].note", 9},
		{"device[0].attribute[0]", 13},
		{"device[0].attribute[1].name", 16},
		{"device[0].attribute[1].address", 17},
		{"device[0].attribute[1].type", 15},
		{"device[0].operation[0].write[1].value", 23},
		{"device[1]", 25},
		{"device[1].attribute", 27},
		{"device[1].attribute[0].address", 28},
		{"device[1].attribute[1]", 29},
		{"device[1].attribute[1].address", 30},
		{"device[1].attribute[1].address[1]", 30},
		{"device[1].event[1].name", 32},
		{"device[1].operation[0].name", 34},
		{"device[2].id", 7},
		{"nothing", 0},
	}
	for _, tt := range tests {
		if got := li.find(tt.path); got != tt.want {
			t.Errorf("find(%q) = %d, want %d", tt.path, got, tt.want)
		}
	}
	if got := li.within("device[0]", "attribute.name"); len(got) != 2 || got[0] != "attribute[0].name" || got[1] != "attribute[1].name" {
		t.Errorf(`within("device[0]", "attribute.name") = %q`, got)
	}
}

func TestUnknown(t *testing.T) {
	keys := []toml.Key{{"b", "x"}, {"a"}, {"a-b"}, {"a", "b"}, {"b", "x"}, {"a-b", "c"}, {"c", "d"}}
	var got []string
	for _, k := range unknown(keys) {
		got = append(got, k.String())
	}
	if want := "a a-b b.x c.d"; strings.Join(got, " ") != want {
		t.Errorf("unknown() = %q, want %q", got, want)
	}
}
