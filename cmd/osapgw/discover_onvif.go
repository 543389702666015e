package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/osapgw/osapgw/adapters/onvif"
)

func init() {
	discoverers["onvif"] = command{summary: "find ONVIF cameras (WS-Discovery) and print [[device]] blocks", run: runDiscoverONVIF}
}

// runDiscoverONVIF sends a WS-Discovery probe and prints a ready-to-paste
// [[device]] block per camera that answers. It needs no credentials.
func runDiscoverONVIF(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("discover onvif", "[-iface NAME] [-timeout 3s]", stderr)
	iface := fs.String("iface", "", "network interface to probe on (default: the route's choice)")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for answers")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 || *timeout <= 0 {
		fs.Usage()
		return errUsage
	}
	found, err := onvif.Discover(ctx, *iface, *timeout)
	if err != nil {
		return fmt.Errorf("discover: %w", err)
	}
	if len(found) == 0 {
		fmt.Fprintln(stderr, "no ONVIF camera answered")
		return nil
	}
	fmt.Fprintf(stderr, "%d camera(s) answered; add username and password_file to each block\n", len(found))
	return onvif.WriteTOML(stdout, found)
}
