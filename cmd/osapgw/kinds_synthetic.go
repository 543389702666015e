//go:build synthetic

package main

// The synthetic kind, a source of attributes and events that needs no
// hardware, is in the daemon only when it is built with -tags synthetic:
// the e2e tests and benchmarks do, to load the gateway; a gateway box has
// no use for it.
import _ "github.com/osapgw/osapgw/adapters/synthetic"
