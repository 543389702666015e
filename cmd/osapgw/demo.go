package main

import (
	"context"
	"fmt"
	"io"
)

// The demo is its own program, cmd/osapgw-demo, so that the daemon links
// none of the platform emulator, its MQTT broker or the simulators (a
// gateway box carries only the gateway). The command stays, to say where
// the demo went.
func init() {
	commands["demo"] = command{summary: "not in this program: run `make demo` in the source tree", run: runNoDemo}
}

const noDemoHint = "this build has no demo; run `make demo` in the source tree (or `go run ./cmd/osapgw-demo`)"

func runNoDemo(_ context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlags("demo", "(not in this program: run `make demo` in the source tree)", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintln(stderr, noDemoHint)
	return errUsage
}
