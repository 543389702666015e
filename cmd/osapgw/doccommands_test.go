package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// docCommandExceptions lists doc command lines (as extracted, "osapgw
// ...") that the test does not run, with why. Keep it empty: a doc that
// names a command that does not exist should change, or the command come.
var docCommandExceptions = map[string]string{}

// docCommand is one "osapgw ..." command line found in a document.
type docCommand struct {
	file string
	line int
	text string // as written, from "osapgw"
}

// TestDocCommands runs every `osapgw ...` command line that README.md,
// docs/*.md and adapters/*/README.md give (in code blocks or backticks)
// with --help, so that no document names a command, a subcommand or a
// flag that does not exist. A command that needs a live daemon (osapgw
// status) only has its --help run. A check is also run on each shipped
// configuration, as shipped: `osapgw check -c configs/example-site.toml`
// must pass on a machine that has none of its secret files.
func TestDocCommands(t *testing.T) {
	root := filepath.Join("..", "..")
	var files []string
	for _, pattern := range []string{"README.md", "docs/*.md", "adapters/*/README.md"} {
		m, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	var cmds []docCommand
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, f)
		cmds = append(cmds, docCommands(rel, string(text))...)
	}
	if len(cmds) < 10 {
		t.Fatalf("found %d osapgw command lines in %d documents; the extraction is broken", len(cmds), len(files))
	}
	configs, err := filepath.Glob(filepath.Join(root, "configs", "*.toml"))
	if err != nil || len(configs) == 0 {
		t.Fatalf("no shipped configurations: %v", err)
	}
	for _, c := range cmds {
		if why, ok := docCommandExceptions[c.text]; ok {
			t.Logf("%s:%d: %s: not run: %s", c.file, c.line, c.text, why)
			continue
		}
		for _, args := range docArgs(c.text) {
			var out, errOut bytes.Buffer
			code := dispatch(context.Background(), append(args, "--help"), &out, &errOut)
			if code != 0 || strings.Contains(errOut.String(), "unknown") {
				t.Errorf("%s:%d: `%s`: osapgw %s --help = exit %d:\n%s", c.file, c.line, c.text, strings.Join(args, " "), code, errOut.String())
				continue
			}
			if args[0] != "check" {
				continue
			}
			for _, cfg := range configs {
				out.Reset()
				errOut.Reset()
				check := withFlag(args, "-c", cfg)
				if code := dispatch(context.Background(), check, &out, &errOut); code != 0 {
					t.Errorf("%s:%d: `%s`: osapgw %s = exit %d:\n%s", c.file, c.line, c.text, strings.Join(check, " "), code, errOut.String())
				}
			}
		}
	}
	t.Logf("%d command lines in %d documents", len(cmds), len(files))
}

var (
	fence    = regexp.MustCompile("^\\s*```\\s*(\\S*)")
	backtick = regexp.MustCompile("`(osapgw\\s+[a-z][^`]*)`")
	word     = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	altWords = regexp.MustCompile(`^[a-z][a-z0-9-]*(\|[a-z][a-z0-9-]*)+$`)
)

// docCommands returns the osapgw command lines of a Markdown text: lines
// of code blocks (fenced, except TOML and JSON ones, or indented) that
// start with "osapgw " (or "$ osapgw "), and `osapgw ...` spans of the
// prose, which may run over a line end.
func docCommands(file, text string) []docCommand {
	var out []docCommand
	lines := strings.Split(text, "\n")
	prose := make([]string, len(lines)) // the text outside code, by line
	inFence, lang := false, ""
	for i, l := range lines {
		if m := fence.FindStringSubmatch(l); m != nil {
			if !inFence {
				inFence, lang = true, m[1]
			} else {
				inFence = false
			}
			continue
		}
		code := inFence || (strings.HasPrefix(l, "    ") || strings.HasPrefix(l, "\t")) && (i == 0 || strings.TrimSpace(lines[i-1]) == "" || prose[i-1] == "")
		if !code {
			prose[i] = l
			continue
		}
		if inFence && lang != "" && lang != "sh" && lang != "bash" && lang != "console" && lang != "shell" {
			continue
		}
		s := strings.TrimSpace(l)
		s = strings.TrimPrefix(s, "$ ")
		if strings.HasPrefix(s, "osapgw ") {
			if i := strings.Index(s, " #"); i >= 0 {
				s = s[:i]
			}
			out = append(out, docCommand{file, i + 1, strings.TrimSpace(s)})
		}
	}
	joined := strings.Join(prose, "\n")
	for _, m := range backtick.FindAllStringSubmatchIndex(joined, -1) {
		s := strings.Join(strings.Fields(joined[m[2]:m[3]]), " ")
		out = append(out, docCommand{file, strings.Count(joined[:m[0]], "\n") + 1, s})
	}
	return out
}

// docArgs turns a doc command line into the argument lists it stands for:
// quotes as a shell reads them, up to a shell operator (&&, |, ...),
// "[...]" optional parts kept, "..." left out, and "a|b" in the command
// words giving one list per alternative.
func docArgs(line string) [][]string {
	toks := shellFields(strings.TrimPrefix(line, "osapgw"))
	lists := [][]string{nil}
	words := true
	for _, tok := range toks {
		if tok == "&&" || tok == "||" || tok == ";" || tok == "|" || strings.HasPrefix(tok, ">") {
			break // the rest is another command
		}
		tok = strings.Trim(tok, "[]")
		if tok == "" || tok == "..." {
			continue
		}
		alts := []string{tok}
		if words && altWords.MatchString(tok) {
			alts = strings.Split(tok, "|")
		} else if !word.MatchString(tok) {
			words = false
		}
		var next [][]string
		for _, l := range lists {
			for _, a := range alts {
				next = append(next, append(append([]string(nil), l...), a))
			}
		}
		lists = next
	}
	return lists
}

// shellFields splits s as a shell would: on blanks, with '...' and "..."
// quoting.
func shellFields(s string) []string {
	var out []string
	var cur strings.Builder
	in, quote := false, rune(0)
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}

// withFlag returns args with flag's value set to v (added when absent).
func withFlag(args []string, flag, v string) []string {
	out := append([]string(nil), args...)
	for i := range out {
		if out[i] == flag && i+1 < len(out) {
			out[i+1] = v
			return out
		}
	}
	return append(out, flag, v)
}

func TestDocCommandsExtraction(t *testing.T) {
	text := "Run `osapgw check -c\n/etc/osapgw/osapgw.toml` first.\n\n```sh\nosapgw discover modbus 'rtu:///dev/ttyUSB0?baud=19200' # a bus\n```\n\n```toml\n# osapgw nothing\n```\n\n    osapgw status\n\nNot `osapgw.toml` nor `osapgw-demo`: `osapgw discover onvif|modbus ...`.\n"
	got := docCommands("x.md", text)
	want := []string{
		"x.md:5: osapgw discover modbus 'rtu:///dev/ttyUSB0?baud=19200'",
		"x.md:12: osapgw status",
		"x.md:1: osapgw check -c /etc/osapgw/osapgw.toml",
		"x.md:14: osapgw discover onvif|modbus ...",
	}
	var gotS []string
	for _, c := range got {
		gotS = append(gotS, fmt.Sprintf("%s:%d: %s", c.file, c.line, c.text))
	}
	if strings.Join(gotS, "\n") != strings.Join(want, "\n") {
		t.Errorf("docCommands() =\n%s\nwant\n%s", strings.Join(gotS, "\n"), strings.Join(want, "\n"))
	}
	args := docArgs("osapgw discover onvif|modbus ... [-timeout 3s] && echo done")
	if fmt.Sprint(args) != "[[discover onvif -timeout 3s] [discover modbus -timeout 3s]]" {
		t.Errorf("docArgs() = %q", args)
	}
	if got := docArgs("osapgw discover modbus 'rtu:///dev/ttyUSB0?baud=19200&parity=E'"); fmt.Sprint(got) != "[[discover modbus rtu:///dev/ttyUSB0?baud=19200&parity=E]]" {
		t.Errorf("docArgs(quoted) = %q", got)
	}
}
