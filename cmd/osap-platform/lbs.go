package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"

	"github.com/osapgw/osapgw/osap/platform"
)

// GAP(lbs): the registry and the LBS are being written in osap/platform
// (registry.go, lbs.go). Until they are on main, these two functions are
// the only missing wiring; replace their bodies with, roughly:
//
//	reg, err := platform.OpenRegistry(o.registry, o.state, ...)   // implements platform.KeySource
//	srv, err := platform.NewLBS(platform.LBSConfig{Registry: reg, Suites: o.suites,
//		SessionLifetime: o.sessionLifetime, DAS: accessServices(das), Logger: log.With("component", "lbs"),
//		ReadTimeout: 10 * time.Second})
//	return func(ctx context.Context) error { return srv.Serve(ctx, o.lbs, tlsCfg) }, nil
//
// where accessServices converts []*platform.DAS to the LBS's
// []platform.AccessService (interface{ URL() string; Registered() int }).

var errNotWired = errors.New("not wired yet: the LBS and the device registry (osap/platform registry.go, lbs.go) are missing")

// openRegistry opens the device registry, which gives the DAS its session
// keys.
func openRegistry(o options, _ *slog.Logger) (platform.KeySource, error) {
	return nil, fmt.Errorf("registry %q: %w", o.registry, errNotWired)
}

// newLBS builds the LBS over the DAS instances and returns the function
// that serves it until ctx ends; nil means no LBS.
func newLBS(o options, _ platform.KeySource, _ []*platform.DAS, _ *tls.Config, _ *slog.Logger) (func(context.Context) error, error) {
	return nil, fmt.Errorf("LBS on %s: %w", o.lbs, errNotWired)
}
