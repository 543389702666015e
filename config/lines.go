package config

import (
	"regexp"
	"strconv"
	"strings"
)

// lineIndex maps the keys of a TOML text to the lines that define them,
// for error messages: BurntSushi/toml keeps key positions to itself (only
// a ParseError has one). A key's path names every array element by its
// 0-based index, whether the element is an [[array.table]] or an inline
// table in an array: "upstream.lbs", "device[2]" (the header of the third
// [[device]]), "device[2].attribute[0].address".
type lineIndex struct {
	lines map[string]int
	order []string // the paths in the order of the text
}

// indexLines scans data, which the TOML decoder has accepted. It
// understands table and array-table headers, bare, quoted and dotted keys,
// strings of every kind, comments, and arrays and inline tables over
// several lines; that is enough to point at the line of a key, which is
// all it is for.
func indexLines(data []byte) lineIndex {
	s := &lineScanner{
		li:     lineIndex{lines: map[string]int{}},
		text:   string(data),
		line:   1,
		arrays: map[string]string{},
		count:  map[string]int{},
	}
	s.scan()
	return s.li
}

type lineScanner struct {
	li   lineIndex
	text string
	pos  int
	line int
	// arrays maps an array table's name as written ("device.attribute")
	// to the path of its current element ("device[2].attribute[4]").
	arrays map[string]string
	// count holds the number of elements of each array table so far.
	count map[string]int
}

func (s *lineScanner) record(path string, line int) {
	if _, seen := s.li.lines[path]; !seen {
		s.li.lines[path] = line
		s.li.order = append(s.li.order, path)
	}
}

func (s *lineScanner) eof() bool  { return s.pos >= len(s.text) }
func (s *lineScanner) peek() byte { return s.text[s.pos] }

func (s *lineScanner) next() byte {
	c := s.text[s.pos]
	s.pos++
	if c == '\n' {
		s.line++
	}
	return c
}

// space skips blanks, and with newlines also line ends and comments.
func (s *lineScanner) space(newlines bool) {
	for !s.eof() {
		switch c := s.peek(); {
		case c == ' ' || c == '\t' || c == '\r':
			s.pos++
		case newlines && c == '\n':
			s.next()
		case newlines && c == '#':
			for !s.eof() && s.peek() != '\n' {
				s.pos++
			}
		default:
			return
		}
	}
}

func (s *lineScanner) scan() {
	table := ""
	for {
		s.space(true)
		if s.eof() {
			return
		}
		line := s.line
		if strings.HasPrefix(s.text[s.pos:], "[[") {
			s.pos += 2
			parts := s.key()
			s.pos += min(2, len(s.text)-s.pos) // ]]
			parent := s.resolve(parts[:len(parts)-1])
			arr := join(parent, parts[len(parts)-1])
			n := s.count[arr]
			s.count[arr] = n + 1
			table = arr + "[" + strconv.Itoa(n) + "]"
			name := strings.Join(parts, ".")
			for k := range s.arrays {
				if strings.HasPrefix(k, name+".") {
					delete(s.arrays, k)
				}
			}
			s.arrays[name] = table
			s.record(arr, line)
			s.record(table, line)
			continue
		}
		if s.peek() == '[' {
			s.pos++
			table = s.resolve(s.key())
			s.pos++ // ]
			s.record(table, line)
			continue
		}
		path := table
		for _, p := range s.key() {
			path = join(path, p)
		}
		s.record(path, line)
		s.pos++ // =
		s.value(path)
	}
}

// resolve turns a table name as written into its path, whose arrays are
// at their current elements.
func (s *lineScanner) resolve(parts []string) string {
	path := ""
	for i, p := range parts {
		if cur, ok := s.arrays[strings.Join(parts[:i+1], ".")]; ok {
			path = cur
			continue
		}
		path = join(path, p)
	}
	return path
}

// key reads a bare, quoted or dotted key, stopping before '=', ']' or the
// end of the line.
func (s *lineScanner) key() []string {
	var parts []string
	for {
		s.space(false)
		if s.eof() {
			return append(parts, "")
		}
		switch c := s.peek(); c {
		case '"', '\'':
			start := s.pos
			s.str()
			k := s.text[start:s.pos]
			if c == '"' {
				if u, err := strconv.Unquote(k); err == nil {
					k = u
				} else {
					k = k[1 : len(k)-1]
				}
			} else {
				k = k[1 : len(k)-1]
			}
			parts = append(parts, k)
		default:
			start := s.pos
			for !s.eof() && bareKey(s.peek()) {
				s.pos++
			}
			parts = append(parts, s.text[start:s.pos])
		}
		s.space(false)
		if s.eof() || s.peek() != '.' {
			return parts
		}
		s.pos++
	}
}

func bareKey(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// value reads the value of the key at path, recording the elements of
// arrays and the keys of inline tables.
func (s *lineScanner) value(path string) {
	s.space(false)
	if s.eof() {
		return
	}
	switch s.peek() {
	case '"', '\'':
		s.str()
	case '[':
		s.pos++
		for n := 0; ; n++ {
			s.space(true)
			if s.eof() {
				return
			}
			if s.peek() == ']' {
				s.pos++
				return
			}
			elem := path + "[" + strconv.Itoa(n) + "]"
			s.record(elem, s.line)
			s.value(elem)
			s.space(true)
			if !s.eof() && s.peek() == ',' {
				s.pos++
			}
		}
	case '{':
		s.pos++
		for {
			s.space(true)
			if s.eof() {
				return
			}
			if s.peek() == '}' {
				s.pos++
				return
			}
			line, p := s.line, path
			for _, k := range s.key() {
				p = join(p, k)
			}
			s.record(p, line)
			if !s.eof() && s.peek() == '=' {
				s.pos++
			}
			s.value(p)
			s.space(true)
			if !s.eof() && s.peek() == ',' {
				s.pos++
			}
		}
	default: // number, bool, date
		for !s.eof() {
			switch s.peek() {
			case ',', ']', '}', '\n', '#':
				return
			}
			s.pos++
		}
	}
}

// str skips a string of any kind, the quotes included.
func (s *lineScanner) str() {
	q := s.peek()
	if strings.HasPrefix(s.text[s.pos:], strings.Repeat(string(q), 3)) {
		s.pos += 3
		end := strings.Repeat(string(q), 3)
		for !s.eof() {
			if q == '"' && s.peek() == '\\' {
				s.next()
				if !s.eof() {
					s.next()
				}
				continue
			}
			if strings.HasPrefix(s.text[s.pos:], end) {
				s.pos += 3
				// A multi-line string may end in up to two more quotes.
				for i := 0; i < 2 && !s.eof() && s.peek() == q; i++ {
					s.pos++
				}
				return
			}
			s.next()
		}
		return
	}
	s.pos++
	for !s.eof() {
		c := s.next()
		switch {
		case c == '\\' && q == '"':
			if !s.eof() {
				s.next()
			}
		case c == q, c == '\n':
			return
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// find returns the line of path, else of the nearest enclosing table,
// array or array element the text has, or 0 when none.
func (li lineIndex) find(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if n, ok := li.lines[p]; ok {
			return n
		}
	}
	return 0
}

// parentPath strips the last key or index of a path:
// "a[1].b" → "a[1]" → "a" → "".
func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i >= 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}

var indexes = regexp.MustCompile(`\[\d+\]`)

// within returns the paths under prefix (a table or array element, such
// as "device[2]") that are key once their indexes are removed
// ("attribute.adress" matches "attribute[0].adress" and
// "attribute[3].adress"), relative to prefix and in the order of the text.
func (li lineIndex) within(prefix, key string) []string {
	var out []string
	for _, p := range li.order {
		rest, ok := strings.CutPrefix(p, prefix+".")
		if ok && indexes.ReplaceAllString(rest, "") == key {
			out = append(out, rest)
		}
	}
	return out
}
