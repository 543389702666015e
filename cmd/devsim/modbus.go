package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/osapgw/osapgw/adapters/modbus"
	sim "github.com/osapgw/osapgw/sim/modbus"
)

func init() {
	simulators["modbus"] = simulator{summary: "simulated Modbus sensors (TCP, or RTU/ASCII on a pty or tty)", run: runModbus}
}

func runModbus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("devsim modbus", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:5020", "TCP address of the first device")
	count := fs.Int("count", 1, "number of TCP devices, on consecutive ports from --listen")
	unitList := fs.String("units", "1", "unit ids each device (or the serial bus) serves: N, N-M, comma-separated")
	rtu := fs.String("rtu", "", "serve RTU on this tty, or create a pty and link this path to it")
	ascii := fs.String("ascii", "", "serve ASCII on this tty, or create a pty and link this path to it")
	change := fs.Duration("change", time.Second, "how often the values change")
	registers := fs.Int("registers", 0, "extra holding registers from 100, each changing every --change (benchmarks)")
	faultExc := fs.Int("fault-exception", 0, "answer requests with this exception code (2 illegal address, 3 illegal value, 6 busy)")
	faultDelay := fs.Duration("fault-delay", 0, "answer requests this late")
	faultDrop := fs.Bool("fault-drop", false, "do not answer requests")
	faultRange := fs.String("fault-registers", "", "apply the faults only to requests touching these addresses (N or N-M; all when empty)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: devsim modbus [flags]\n\nSensors with the register map of sim/modbus (go doc github.com/osapgw/osapgw/sim/modbus).")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	units, err := modbus.ParseUnits(*unitList)
	if err != nil {
		return err
	}
	fault := sim.Fault{Exception: byte(*faultExc), Delay: *faultDelay, Drop: *faultDrop}
	if *faultRange != "" {
		lo, hi, isRange := strings.Cut(*faultRange, "-")
		a, err1 := strconv.ParseUint(lo, 10, 16)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.ParseUint(hi, 10, 16)
		}
		if err1 != nil || err2 != nil || a > b {
			return fmt.Errorf("--fault-registers: %q, want N or N-M", *faultRange)
		}
		fault.From, fault.To = uint16(a), uint16(b)
	}
	newSensors := func() map[byte]*sim.Sensor {
		m := map[byte]*sim.Sensor{}
		for _, u := range units {
			m[u] = sim.NewSensor(*change, *registers)
			m[u].SetFault(fault)
		}
		return m
	}
	g, ctx := errgroup.WithContext(ctx)
	serial := func(path, mode string) error {
		port, shown, err := openSimPort(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "modbus %s units %s on %s\n", mode, *unitList, shown)
		srv := sim.NewServer(newSensors())
		g.Go(func() error {
			defer func() {
				if shown != path {
					os.Remove(path)
				}
			}()
			if mode == "rtu" {
				return srv.ServeRTU(ctx, port)
			}
			return srv.ServeASCII(ctx, port)
		})
		return nil
	}
	if *rtu != "" {
		if err := serial(*rtu, "rtu"); err != nil {
			return err
		}
	}
	if *ascii != "" {
		if err := serial(*ascii, "ascii"); err != nil {
			return err
		}
	}
	if *rtu == "" && *ascii == "" || isFlagSet(fs, "listen") || isFlagSet(fs, "count") {
		host, portStr, err := net.SplitHostPort(*listen)
		if err != nil {
			return fmt.Errorf("--listen: %w", err)
		}
		first, err := strconv.Atoi(portStr)
		if err != nil {
			return fmt.Errorf("--listen: bad port %q", portStr)
		}
		for i := 0; i < *count; i++ {
			addr := net.JoinHostPort(host, strconv.Itoa(first+i))
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			srv := sim.NewServer(newSensors())
			g.Go(func() error { return srv.ServeTCP(ctx, ln) })
		}
		fmt.Fprintf(stdout, "modbus tcp units %s on %d device(s) from %s\n", *unitList, *count, *listen)
	}
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// openSimPort opens path if it is a terminal; otherwise it creates a pty
// and links path to its slave side. It returns the port and the path to
// show (the pty's, when one was made).
func openSimPort(path string) (io.ReadWriteCloser, string, error) {
	if fi, err := os.Stat(path); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		f, err := sim.OpenSerial(path)
		return f, path, err
	}
	m, slave, err := sim.OpenPTY()
	if err != nil {
		return nil, "", err
	}
	if err := os.Symlink(slave, path); err != nil {
		m.Close()
		return nil, "", fmt.Errorf("link %s to %s: %w", path, slave, err)
	}
	return m, slave + " (linked from " + path + ")", nil
}

func isFlagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
