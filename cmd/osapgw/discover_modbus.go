package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/osapgw/osapgw/adapters/modbus"
)

// The lead folds this under `osapgw discover modbus` once the discover
// dispatcher exists; until then it is its own command.
func init() {
	discoverers["modbus"] = command{summary: "list the Modbus unit ids that answer on a link", run: runDiscoverModbus}
}

func runDiscoverModbus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("discover modbus", "URL [--units 1-247] [--timeout 500ms]\n\n"+
		"URL is tcp://HOST[:PORT], rtu:///dev/PORT or ascii:///dev/PORT (serial settings in the query:\n"+
		"rtu:///dev/ttyUSB0?baud=19200&parity=E&data_bits=8&stop_bits=1).", stderr)
	unitsFlag := fs.String("units", "1-247", "unit ids to probe: N, N-M, comma-separated")
	timeout := fs.Duration("timeout", 500*time.Millisecond, "how long to wait for each unit")
	// The URL may come before or after the flags.
	var url string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		url, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if url == "" && fs.NArg() == 1 {
		url = fs.Arg(0)
	} else if url == "" || fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	units, err := modbus.ParseUnits(*unitsFlag)
	if err != nil {
		return err
	}
	found, err := modbus.Discover(ctx, url, units, *timeout)
	for _, f := range found {
		fmt.Fprintf(stdout, "unit %d\t%s\n", f.Unit, f.Answer)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%d of %d units answered on %s\n", len(found), len(units), url)
	return nil
}
