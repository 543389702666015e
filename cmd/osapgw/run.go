package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/osapgw/osapgw/config"
	"github.com/osapgw/osapgw/gateway"
	"github.com/osapgw/osapgw/internal/sdnotify"
)

func init() {
	commands["run"] = command{summary: "run the gateway daemon (systemd's entry point)", run: runRun}
}

// stopDeadline bounds the drain after SIGTERM: in-flight work, the goodbye
// to the platform and closing the store.
const stopDeadline = 5 * time.Second

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", "[-c FILE]", stderr)
	path := fs.String("c", defaultConfigPath, "configuration `file`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, warnings, err := loadChecked(*path)
	if err != nil {
		return fmt.Errorf("%s: configuration is not valid:\n%w", *path, err)
	}
	log := newLogger(cfg.Log, stderr)
	logWarnings(log, warnings)
	if gc := setGCPercent(); gc != "" {
		log.Info("garbage collector", "GOGC", gc)
	}
	return runGateway(ctx, cfg, *path, log)
}

// defaultGCPercent is the daemon's GOGC when the environment sets none.
// A gateway box has far less memory than CPU to spare: at 50 the heap
// grows half as much between collections as at Go's default of 100. At
// 100 Modbus devices polled every second this costs 0.3-0.4 % of a core
// and saves about 3 MB of RSS (docs/performance.md).
const defaultGCPercent = 50

// setGCPercent applies defaultGCPercent unless GOGC is set, and returns
// the GOGC in force.
func setGCPercent() string {
	if v, ok := os.LookupEnv("GOGC"); ok {
		return v
	}
	debug.SetGCPercent(defaultGCPercent)
	return strconv.Itoa(defaultGCPercent)
}

// newLogger builds the root logger from the [log] section.
func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// runGateway runs the daemon until ctx ends, reloading the configuration
// at path on SIGHUP, and talking to systemd when run under Type=notify.
func runGateway(ctx context.Context, cfg *config.Config, path string, log *slog.Logger) error {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	gw, err := gateway.New(cfg, gateway.Options{Logger: log, Ready: func() {
		if _, err := sdnotify.Notify(sdnotify.Ready, sdnotify.Status("running")); err != nil {
			log.Warn("sd_notify READY", "err", err)
		}
	}})
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-hup:
				reload(gw, path, log)
			}
		}
	}()

	if iv, err := sdnotify.WatchdogInterval(); err != nil {
		log.Warn("systemd watchdog settings", "err", err)
	} else if iv > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := sdnotify.RunWatchdog(runCtx, iv, nil); err != nil {
				log.Warn("systemd watchdog", "err", err)
			}
		}()
	}

	// SIGTERM (ctx) starts the drain; the drain has stopDeadline to finish.
	done := make(chan error, 1)
	go func() { done <- gw.Run(runCtx) }()
	select {
	case err := <-done:
		cancel()
		return err
	case <-ctx.Done():
	}
	log.Info("stopping", "deadline_seconds", stopDeadline.Seconds())
	_, _ = sdnotify.Notify(sdnotify.Stopping)
	cancel()
	select {
	case err := <-done:
		return err
	case <-time.After(stopDeadline):
		return errors.New("stop took longer than 5s; exiting anyway (the outbox is crash-safe)")
	}
}

func reload(gw *gateway.Gateway, path string, log *slog.Logger) {
	_, _ = sdnotify.Notify(sdnotify.Reloading)
	defer sdnotify.Notify(sdnotify.Ready)
	cfg, warnings, err := loadChecked(path)
	if err != nil {
		log.Error("reload refused: the new configuration is not valid; the old one keeps running", "path", path, "err", err)
		return
	}
	logWarnings(log, warnings)
	gw.Reload(cfg)
}

// logWarnings logs the configuration's warnings (what osapgw check prints
// as such): the daemon runs regardless.
func logWarnings(log *slog.Logger, warnings []error) {
	for _, w := range warnings {
		log.Warn("configuration warning", "warning", w.Error())
	}
}
