package config

import (
	"reflect"
	"strings"
	"testing"
	"unique"
	"unsafe"

	"github.com/google/go-cmp/cmp"
)

// TestDetach checks that detach leaves every reachable string equal but
// sharing no memory with the text it was cut from.
func TestDetach(t *testing.T) {
	text := strings.Repeat("x", 64) + "alpha beta gamma delta epsilon zeta eta theta"
	word := func(w string) string {
		i := strings.Index(text, w)
		return text[i : i+len(w)]
	}
	type inner struct {
		Name string
		Tags []string
	}
	type outer struct {
		ID     string
		Ptr    *inner
		List   []inner
		Arr    [2]string
		Map    map[string]string
		Any    any
		hidden string
	}
	v := outer{
		ID:     word("alpha"),
		Ptr:    &inner{Name: word("beta"), Tags: []string{word("gamma")}},
		List:   []inner{{Name: word("delta")}},
		Arr:    [2]string{word("epsilon"), ""},
		Map:    map[string]string{word("zeta"): word("eta")},
		Any:    map[string]any{word("theta"): []any{word("alpha"), int64(3)}, "s": word("beta")},
		hidden: word("gamma"),
	}
	want := outer{
		ID:     "alpha",
		Ptr:    &inner{Name: "beta", Tags: []string{"gamma"}},
		List:   []inner{{Name: "delta"}},
		Arr:    [2]string{"epsilon", ""},
		Map:    map[string]string{"zeta": "eta"},
		Any:    map[string]any{"theta": []any{"alpha", int64(3)}, "s": "beta"},
		hidden: "gamma",
	}
	detach(reflect.ValueOf(&v).Elem())
	if diff := cmp.Diff(want, v, cmp.AllowUnexported(outer{})); diff != "" {
		t.Fatalf("detach changed values (-want +got):\n%s", diff)
	}
	lo := uintptr(unsafe.Pointer(unsafe.StringData(text)))
	hi := lo + uintptr(len(text))
	inText := func(s string) bool {
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		return s != "" && p >= lo && p < hi
	}
	var shared []string
	var walk func(x any)
	walk = func(x any) {
		switch x := x.(type) {
		case string:
			if inText(x) {
				shared = append(shared, x)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			for k, e := range x {
				walk(k)
				walk(e)
			}
		}
	}
	walk(v.ID)
	walk(v.Ptr.Name)
	walk(v.Ptr.Tags[0])
	walk(v.List[0].Name)
	walk(v.Arr[0])
	for k, e := range v.Map {
		walk(k)
		walk(e)
	}
	walk(v.Any)
	if len(shared) > 0 {
		t.Errorf("strings still sharing the text: %q", shared)
	}
	if !inText(v.hidden) {
		t.Errorf("detach changed an unexported field")
	}
}

// TestParsedStringsDetached checks that the strings Parse and a device's
// Decoder return are the interned copies, not parts of the text: each is
// compared with the canonical copy, which the test keeps alive by holding
// its handle.
func TestParsedStringsDetached(t *testing.T) {
	words := []string{"GW1", "tcp://127.0.0.1:7700", "boiler-1", "fake", "tcp://127.0.0.1:502", "temp"}
	handles := make([]unique.Handle[string], len(words))
	for i, w := range words {
		handles[i] = unique.Make(w)
	}
	c, err := Parse("", []byte(base+`
[[device]]
id = "boiler-1"
kind = "fake"
url = "tcp://127.0.0.1:502"
[[device.attribute]]
name = "temp"
`))
	if err != nil {
		t.Fatal(err)
	}
	var s fakeSection
	if err := c.Devices[0].Decoder().Decode(&s); err != nil {
		t.Fatal(err)
	}
	got := []string{c.Gateway.Serial, c.Upstream.LBS, c.Devices[0].ID, c.Devices[0].Kind, s.URL, s.Attribute[0].Name}
	for i, str := range got {
		if str != words[i] {
			t.Errorf("got %q, want %q", str, words[i])
		} else if unsafe.StringData(str) != unsafe.StringData(handles[i].Value()) {
			t.Errorf("%q is not the interned copy: it may share the configuration's text", str)
		}
	}
}
