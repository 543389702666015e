// Command osapgw-demo runs the whole system in one process: the OSAP
// platform emulator, simulated Modbus sensors and an ONVIF camera, and the
// gateway, with a live view, until interrupted (`make demo`).
//
// It is a program of its own so that the daemon, cmd/osapgw, links none
// of the emulator, its MQTT broker or the simulators: a gateway box
// carries only the gateway.
//
//	osapgw-demo [-duration D] [-outage] [-plain] [-state DIR] [-v]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs the demo and returns the exit code: 0 when it ran until ctx
// ended or its -duration passed, 2 for wrong flags, 1 when it could not
// start.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := runDemo(ctx, args, stdout, stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintf(stderr, "osapgw-demo: %v\n", err)
	return 1
}

// errUsage is returned when the flags are wrong; the usage has been
// printed already.
var errUsage = errors.New("usage")
