// Command devsim runs simulated southbound devices for the demo, tests and
// benchmarks: Modbus sensors or the devices that profiles describe (TCP,
// or RTU on a pseudo-terminal) and ONVIF cameras. Every listener binds to
// 127.0.0.1 unless told otherwise.
//
//	devsim modbus [flags]   simulated Modbus sensors, or profiles' devices (--profile)
//	devsim onvif [flags]    simulated ONVIF cameras
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// simulator is one kind of simulated device; run serves until ctx ends.
type simulator struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// simulators is filled by this package's files, one per device kind.
var simulators = map[string]simulator{}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" {
		usage(os.Stderr)
		os.Exit(2)
	}
	sim, ok := simulators[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "devsim: unknown simulator %q\n", os.Args[1])
		usage(os.Stderr)
		os.Exit(2)
	}
	if err := sim.run(ctx, os.Args[2:], os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stderr, "devsim %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: devsim <simulator> [flags]\n\nsimulators:")
	names := make([]string, 0, len(simulators))
	for n := range simulators {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, simulators[n].summary)
	}
}
