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

// FieldError is a problem with one key of a device's section of the
// configuration. Kinds return it (alone or joined with others) from
// Kind.New and from Warner.Warnings, so that the configuration loader can
// put the file and line of Key in front of it; errors.As finds it.
type FieldError struct {
	// Device is the device id ("" when the kind does not know it; the
	// loader then fills it in).
	Device string
	// Key is the path of the key in the device's section, with the
	// 0-based index of each array element: "unit",
	// "attribute[2].address", "operation[0].write[1].value". A path to a
	// table or an array element ("event[1]") places the problem at its
	// header; "" at the device's block.
	Key string
	// Err says what is wrong, naming the item and the key as the
	// operator wrote them: `attribute "temp": address: 70000, want 0 to
	// 65535`.
	Err error
}

// Error returns `device "ID": ` followed by Err's text (Err's text alone
// when Device is empty).
func (e *FieldError) Error() string {
	if e.Device == "" {
		return e.Err.Error()
	}
	return fmt.Sprintf("device %q: %v", e.Device, e.Err)
}

// Unwrap returns Err.
func (e *FieldError) Unwrap() error { return e.Err }
