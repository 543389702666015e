package profiles

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"

	"github.com/osapgw/osapgw/classes"
)

// DefaultDir is where the user's own profiles are read from unless
// osapgw.toml says otherwise ([profiles] dir).
const DefaultDir = "/etc/osapgw/profiles.d"

// DefaultKind is the kind of a profile that names none.
const DefaultKind = "modbus"

//go:embed all:data
var embedded embed.FS

// Profile is one device model's profile. Its fields are its header; the
// rest of the file is its kind's to decode (Decode).
type Profile struct {
	Name         string
	Kind         string
	Manufacturer string
	Model        string
	Description  string
	Class        string
	Source       string
	// Path is where it was read from: "embedded/NAME.toml" for an
	// embedded profile, the file's path for a user's.
	Path string
	// Embedded is true for a profile built into the binary.
	Embedded bool
	// Overrides is true for a user's profile that replaces an embedded one
	// of the same name.
	Overrides bool

	data []byte

	mu   sync.Mutex
	memo map[any]any
}

// header is what this package decodes of a profile.
type header struct {
	Name         string `toml:"name"`
	Kind         string `toml:"kind"`
	Manufacturer string `toml:"manufacturer"`
	Model        string `toml:"model"`
	Description  string `toml:"description"`
	Class        string `toml:"class"`
	Source       string `toml:"source"`
}

var headerKeys = map[string]bool{"name": true, "kind": true, "manufacturer": true, "model": true, "description": true, "class": true, "source": true}

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// Parse reads a profile's header from data, read from path (for errors;
// the profile's name is the file's name without .toml). It returns an
// error wrapping ErrInvalid, naming path and line, when data is not TOML
// or its header is wrong.
func Parse(path string, data []byte) (*Profile, error) {
	var h header
	lines := indexLines(data)
	if _, err := toml.Decode(string(data), &h); err != nil {
		return nil, fmt.Errorf("%w: %w", placed(path, lines, err), ErrInvalid)
	}
	p := &Profile{Name: h.Name, Kind: h.Kind, Manufacturer: h.Manufacturer, Model: h.Model, Description: h.Description,
		Class: h.Class, Source: h.Source, Path: path, data: data}
	if p.Kind == "" {
		p.Kind = DefaultKind
	}
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s: %s: %w", lines.where(path, key, -1), key, fmt.Sprintf(format, args...), ErrInvalid))
	}
	want := strings.TrimSuffix(filepath.Base(path), ".toml")
	switch {
	case h.Name == "":
		bad("name", "missing (want %q, the file's name)", want)
	case h.Name != want:
		bad("name", "%q, but the file is %s: a profile's name is its file's name", h.Name, filepath.Base(path))
	case !validName.MatchString(h.Name):
		bad("name", "%q: use lower-case letters, digits, '-', '_' and '.'", h.Name)
	}
	if strings.TrimSpace(h.Source) == "" {
		bad("source", "missing: name the public register map the profile was written from (manual and revision, or project and path)")
	}
	if h.Class != "" {
		if _, ok := classes.Lookup(h.Class); !ok {
			bad("class", "unknown class %q (one of %s)", h.Class, strings.Join(classes.IDs(), ", "))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// Decode decodes the profile into v, strictly: a key that v does not have
// (the header's aside) is an error. Errors name the file, the line and the
// key.
func (p *Profile) Decode(v any) error {
	lines := indexLines(p.data)
	md, err := toml.Decode(string(p.data), v)
	if err != nil {
		return placed(p.Path, lines, err)
	}
	var errs []error
	unknown := map[string]bool{}
	for _, k := range md.Undecoded() {
		if len(k) == 1 && headerKeys[k[0]] {
			continue
		}
		unknown[k.String()] = true
		if len(k) > 1 && unknown[k[:len(k)-1].String()] {
			continue // its table is unknown already
		}
		errs = append(errs, fmt.Errorf("%s: unknown key %q", lines.where(p.Path, k.String(), -1), k.String()))
	}
	return errors.Join(errs...)
}

// placed returns the TOML library's error err, met reading the file at
// path, with the file and line in front.
func placed(path string, lines lineIndex, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s:%d: %s", path, pe.Position.Line, pe.Message)
	}
	if m := typeErr.FindStringSubmatch(err.Error()); m != nil {
		return fmt.Errorf("%s: %s: %s", lines.where(path, m[1], -1), m[1], m[2])
	}
	return fmt.Errorf("%s: %w", path, err)
}

// typeErr matches the TOML library's type errors, which carry the key but
// not as a ParseError.
var typeErr = regexp.MustCompile(`^toml: (?:line \d+ )?\(last key "([^"]+)"\): (.*)$`)

// Line returns the line of key (a dotted path such as "attribute.address")
// in the idx-th block of its top-level array of tables ([[attribute]]), or
// of the block's header when the key is not written; idx -1 looks outside
// arrays. It returns 0 when the text has neither.
func (p *Profile) Line(key string, idx int) int { return indexLines(p.data).find(key, idx) }

// Text returns the profile's file as it was read.
func (p *Profile) Text() string { return string(p.data) }

// Memo returns the value that build returned the first time Memo was
// called on p with key, calling build only then. An adapter keeps there
// what it compiles from the profile, so that every device that uses the
// profile shares one copy. It is safe for concurrent use; build must not
// call Memo on p.
func (p *Profile) Memo(key any, build func() any) any {
	p.mu.Lock()
	defer p.mu.Unlock()
	if v, ok := p.memo[key]; ok {
		return v
	}
	if p.memo == nil {
		p.memo = map[any]any{}
	}
	v := build()
	p.memo[key] = v
	return v
}

// Catalog is a set of profiles by name.
type Catalog struct {
	byName map[string]*Profile
}

// Lookup returns the profile called name. The error wraps ErrUnknown when
// there is none, and lists the closest names.
func (c *Catalog) Lookup(name string) (*Profile, error) {
	if p, ok := c.byName[name]; ok {
		return p, nil
	}
	if close := c.closest(name); len(close) > 0 {
		return nil, fmt.Errorf("%w %q (did you mean %s?)", ErrUnknown, name, strings.Join(close, ", "))
	}
	return nil, fmt.Errorf("%w %q (osapgw profile list lists them)", ErrUnknown, name)
}

// Profiles returns the catalog's profiles, sorted by name.
func (c *Catalog) Profiles() []*Profile {
	out := make([]*Profile, 0, len(c.byName))
	for _, p := range c.byName {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *Profile) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// closest returns up to three names like name: those that contain it or
// that it contains, and those a few edits away, nearest first.
func (c *Catalog) closest(name string) []string {
	type cand struct {
		name string
		d    int
	}
	var cs []cand
	for n := range c.byName {
		d := distance(name, n)
		if strings.Contains(n, name) || strings.Contains(name, n) {
			d = min(d, 1)
		}
		if d <= max(2, len(name)/3) {
			cs = append(cs, cand{n, d})
		}
	}
	slices.SortFunc(cs, func(a, b cand) int {
		if a.d != b.d {
			return a.d - b.d
		}
		return strings.Compare(a.name, b.name)
	})
	var out []string
	for i := 0; i < len(cs) && i < 3; i++ {
		out = append(out, fmt.Sprintf("%q", cs[i].name))
	}
	return out
}

// distance is the Levenshtein distance of a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// readEmbedded parses the embedded profiles once per process.
var readEmbedded = sync.OnceValues(func() (map[string]*Profile, error) {
	return readDir(embedded, "data", "embedded", true)
})

// Embedded returns the catalog of the profiles built into the binary. An
// embedded profile that does not parse is left out (a test keeps that
// from happening).
func Embedded() *Catalog {
	m, _ := readEmbedded()
	return &Catalog{byName: m}
}

// Load returns the embedded profiles and the user's own from dir (no
// directory: none). A user's profile replaces an embedded one of the same
// name. The error joins the problems of the files that do not parse, each
// wrapping ErrInvalid, and those of reading dir; the catalog holds the
// others regardless.
func Load(dir string) (*Catalog, error) {
	emb, err := readEmbedded()
	c, lerr := load(emb, dir)
	return c, errors.Join(err, lerr)
}

// load is Load with the embedded profiles given.
func load(emb map[string]*Profile, dir string) (*Catalog, error) {
	var errs []error
	byName := make(map[string]*Profile, len(emb))
	for n, p := range emb {
		byName[n] = p
	}
	if dir != "" {
		user, err := readDir(os.DirFS(dir), ".", dir, false)
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		errs = append(errs, err)
		for n, p := range user {
			if _, ok := emb[n]; ok {
				p.Overrides = true
			}
			byName[n] = p
		}
	}
	return &Catalog{byName: byName}, errors.Join(errs...)
}

// readDir parses the *.toml files of dir in fsys, naming them under
// shown in errors and paths.
func readDir(fsys fs.FS, dir, shown string, isEmbedded bool) (map[string]*Profile, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("profiles: %w", err)
	}
	out := map[string]*Profile{}
	var errs []error
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".toml") {
			continue
		}
		data, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			errs = append(errs, fmt.Errorf("profiles: %w", err))
			continue
		}
		p, err := Parse(filepath.Join(shown, e.Name()), data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.Embedded = isEmbedded
		out[p.Name] = p
	}
	return out, errors.Join(errs...)
}
