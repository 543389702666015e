//go:build !synthetic

package main

import "github.com/osapgw/osapgw/adapters"

// A configuration naming kind "synthetic" is told how to have it, not
// that the kind is unknown (see kinds_synthetic.go).
func init() {
	adapters.Omit("synthetic", "it is a load-test kind, built in only with `go build -tags synthetic ./cmd/osapgw` (see docs/configuration.md)")
}
