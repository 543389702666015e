package adapters

import (
	"fmt"
	"strings"

	"github.com/BurntSushi/toml"
)

// commonKeys are the keys of a [[device]] block that belong to the daemon,
// not to the adapter kind.
var commonKeys = map[string]bool{"id": true, "kind": true, "name": true, "disabled": true}

// CommonKey reports whether a top-level key of a [[device]] block belongs to
// the daemon (id, kind, name, disabled) rather than to the adapter.
func CommonKey(key string) bool { return commonKeys[key] }

// TOMLDecoder returns a strict Decoder over the text of one [[device]]
// block (without its header line), as tests and sample checks use it. The
// daemon's configuration loader provides its own, which names file and line.
func TOMLDecoder(text string) Decoder { return tomlText(text) }

type tomlText string

func (t tomlText) Decode(v any) error {
	md, err := toml.Decode(string(t), v)
	if err != nil {
		return err
	}
	var unknown []string
	for _, k := range md.Undecoded() {
		if len(k) == 1 && commonKeys[k[0]] {
			continue
		}
		unknown = append(unknown, k.String())
	}
	if len(unknown) > 0 {
		return fmt.Errorf("unknown keys: %s", strings.Join(unknown, ", "))
	}
	return nil
}
