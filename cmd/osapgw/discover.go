package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
)

// discoverers are the `osapgw discover KIND` subcommands, one file each.
var discoverers = map[string]command{}

func init() {
	commands["discover"] = command{summary: "find devices on the site network: discover onvif | discover modbus URL", run: runDiscover}
}

func runDiscover(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	kinds := make([]string, 0, len(discoverers))
	for k := range discoverers {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintf(stderr, "usage: osapgw discover %s [flags]\n", strings.Join(kinds, "|"))
		for _, k := range kinds {
			fmt.Fprintf(stderr, "  %-8s %s\n", k, discoverers[k].summary)
		}
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	d, ok := discoverers[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "osapgw discover: unknown kind %q (one of %s)\n", args[0], strings.Join(kinds, ", "))
		return errUsage
	}
	return d.run(ctx, args[1:], stdout, stderr)
}
