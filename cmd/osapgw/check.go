package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/config"
)

func init() {
	commands["check"] = command{summary: "validate a configuration file and print what would run", run: runCheck}
}

const defaultConfigPath = "/etc/osapgw/osapgw.toml"

func runCheck(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check", "[-c FILE]", stderr)
	path := fs.String("c", defaultConfigPath, "configuration `file`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, warnings, err := loadChecked(*path)
	if err != nil {
		problems := config.Problems(err)
		fmt.Fprintf(stderr, "%s: %d problem(s):\n", *path, len(problems))
		for _, p := range problems {
			fmt.Fprintf(stderr, "  %v\n", p)
		}
		for _, w := range warnings {
			fmt.Fprintf(stderr, "  warning: %v\n", w)
		}
		return errors.New("configuration is not valid")
	}
	printSummary(stdout, cfg)
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(stdout, "\nwarning: %s\n", w)
	}
	for _, w := range warnings {
		fmt.Fprintf(stdout, "\nwarning: %v\n", w)
	}
	return nil
}

// loadChecked parses the file and checks everything that can be checked
// without connecting anywhere, returning every problem at once, and the
// warnings of the devices (valid, but worth a look).
func loadChecked(path string) (*config.Config, []error, error) {
	cfg, err := config.Load(path)
	if cfg == nil {
		return nil, nil, err
	}
	cat, profErr := cfg.LoadProfiles()
	warnings, checkErr := cfg.Check(func(config.Device) adapters.Env {
		return adapters.Env{Logger: slog.New(slog.DiscardHandler), Profiles: cat}
	})
	if err := errors.Join(err, profErr, checkErr); err != nil {
		return nil, warnings, err
	}
	return cfg, warnings, nil
}

func printSummary(w io.Writer, cfg *config.Config) {
	fmt.Fprintf(w, "%s is valid.\n\n", cfg.Path)
	fmt.Fprintf(w, "gateway   serial %s, model %s\n", cfg.Gateway.Serial, cfg.Gateway.Model)
	suites, _ := cfg.Upstream.SuiteSet()
	fmt.Fprintf(w, "upstream  %s, suites %v, heartbeat %v\n", cfg.Upstream.LBS, suites, time.Duration(cfg.Upstream.Heartbeat))
	fmt.Fprintf(w, "store     %s (max %d MiB, max age %v)\n", cfg.Store.Path, cfg.Store.MaxBytes>>20, time.Duration(cfg.Store.MaxAge))
	fmt.Fprintf(w, "http      %s\n", cfg.HTTP.Listen)
	if len(cfg.Devices) == 0 {
		fmt.Fprintln(w, "devices   none (add [[device]] blocks; see docs/configuration.md)")
		return
	}
	fmt.Fprintf(w, "devices   %d\n\n", len(cfg.Devices))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ID\tKIND\tNAME\tSTATE")
	for _, d := range cfg.Devices {
		state := "enabled"
		if d.Disabled {
			state = "disabled"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", d.ID, d.Kind, d.Name, state)
	}
	tw.Flush()
}
