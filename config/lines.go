package config

import (
	"bufio"
	"bytes"
	"strings"
)

// lineIndex maps key paths of a TOML text to the lines that define them,
// for error messages: BurntSushi/toml does not expose key positions.
// Paths of keys inside the n-th [[x]] block are recorded with that n.
type lineIndex struct {
	keys    map[lineKey]int
	headers map[lineKey]int
}

type lineKey struct {
	path string
	idx  int // index of the enclosing top-level array-table block, or -1
}

// indexLines scans data once. It understands table headers, array-table
// headers and dotted or bare keys at the start of a line; that is enough
// to point at the line of a key, which is all it is for.
func indexLines(data []byte) lineIndex {
	li := lineIndex{keys: map[lineKey]int{}, headers: map[lineKey]int{}}
	var table string
	blockIdx := map[string]int{}
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
				cur = blockIdx[table]
				blockIdx[table]++
				li.headers[lineKey{table, cur}] = n
			}
		case line[0] == '[':
			end := strings.Index(line, "]")
			if end < 0 {
				continue
			}
			table = strings.TrimSpace(line[1:end])
			if !strings.Contains(table, ".") {
				cur = -1
				li.headers[lineKey{table, -1}] = n
			}
		default:
			eq := strings.Index(line, "=")
			if eq <= 0 {
				continue
			}
			key := strings.Trim(strings.TrimSpace(line[:eq]), `"`)
			path := key
			if table != "" {
				path = table + "." + key
			}
			lk := lineKey{path, cur}
			if _, seen := li.keys[lk]; !seen {
				li.keys[lk] = n
			}
		}
	}
	return li
}

// find returns the line of path inside block idx (-1: outside blocks),
// falling back to the enclosing table's header, or 0 when unknown.
func (li lineIndex) find(path string, idx int) int {
	for p := path; p != ""; {
		if n, ok := li.keys[lineKey{p, idx}]; ok {
			return n
		}
		if n, ok := li.headers[lineKey{p, idx}]; ok {
			return n
		}
		i := strings.LastIndex(p, ".")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

// header returns the line of the idx-th [[table]] header, or 0.
func (li lineIndex) header(table string, idx int) int { return li.headers[lineKey{table, idx}] }
