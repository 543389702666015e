package profiles

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// lineIndex maps the keys of a TOML text to their lines, for errors: the
// TOML library does not give key positions. Keys inside the n-th block of
// a top-level array of tables ([[attribute]]) are recorded with n.
type lineIndex struct {
	keys    map[lineKey]int
	headers map[lineKey]int
}

type lineKey struct {
	path string
	idx  int // index of the enclosing top-level array-table block, or -1
}

// indexLines scans data once. It knows table and array-table headers and
// keys at the start of a line; that is enough to point at a key's line.
func indexLines(data []byte) lineIndex {
	li := lineIndex{keys: map[lineKey]int{}, headers: map[lineKey]int{}}
	var table string
	count := map[string]int{}
	cur := -1
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#':
		case strings.HasPrefix(line, "[["):
			end := strings.Index(line, "]]")
			if end < 0 {
				continue
			}
			table = strings.TrimSpace(line[2:end])
			if !strings.Contains(table, ".") {
				cur = count[table]
				count[table]++
			}
			if _, seen := li.headers[lineKey{table, cur}]; !seen {
				li.headers[lineKey{table, cur}] = n
			}
		case line[0] == '[':
			end := strings.Index(line, "]")
			if end < 0 {
				continue
			}
			table = strings.TrimSpace(line[1:end])
			cur = -1
			li.headers[lineKey{table, -1}] = n
		default:
			eq := strings.Index(line, "=")
			if eq <= 0 {
				continue
			}
			path := strings.Trim(strings.TrimSpace(line[:eq]), `"`)
			if table != "" {
				path = table + "." + path
			}
			if _, seen := li.keys[lineKey{path, cur}]; !seen {
				li.keys[lineKey{path, cur}] = n
			}
		}
	}
	return li
}

// find returns the line of path in block idx (-1: outside blocks), or of
// the nearest enclosing table written; with no block given (-1) and none
// outside blocks, the first block that has it. It returns 0 when unknown.
func (li lineIndex) find(path string, idx int) int {
	for p := path; p != ""; {
		if n, ok := li.keys[lineKey{p, idx}]; ok {
			return n
		}
		if n, ok := li.headers[lineKey{p, idx}]; ok {
			return n
		}
		if idx < 0 {
			first := 0
			for _, m := range []map[lineKey]int{li.keys, li.headers} {
				for k, n := range m {
					if k.path == p && (first == 0 || n < first) {
						first = n
					}
				}
			}
			if first > 0 {
				return first
			}
		}
		i := strings.LastIndex(p, ".")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

// where returns "file:line" of key, or file when the line is unknown.
func (li lineIndex) where(file, key string, idx int) string {
	if n := li.find(key, idx); n > 0 {
		return fmt.Sprintf("%s:%d", file, n)
	}
	return file
}
