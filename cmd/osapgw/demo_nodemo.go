//go:build nodemo

package main

import (
	"context"
	"errors"
	"io"
)

// The packaged daemon is built with -tags nodemo: a gateway box does not
// carry the platform emulator and the simulators (unused, they still cost
// the daemon 1.5 MB of resident memory). The command stays, to say where
// the demo is.
func init() {
	commands["demo"] = command{summary: "not in this build: run `make demo` in the source tree", run: runNoDemo}
}

var errNoDemo = errors.New("this osapgw is built without the demo (build tag nodemo, as packaged): run `make demo` in the source tree, or `go run ./cmd/osapgw demo`")

func runNoDemo(_ context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlags("demo", "(not in this build: run `make demo` in the source tree)", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return errNoDemo
}
