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
	simulators["modbus"] = simulator{summary: "simulated Modbus sensors or profiles' devices (TCP, or RTU/ASCII on a pty or tty)", run: runModbus}
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
	profile := fs.String("profile", "", "serve this profile's register map instead of the sensor's; several, comma-separated, serve one unit each (units 1 to n unless --units)")
	profilesDir := fs.String("profiles-dir", "", "read the user's profiles from this directory too, as osapgw's [profiles] dir (default: the embedded ones only)")
	missing := fs.String("missing", "", "points of --profile that answer exception 2 (not implemented): POINT or PROFILE:POINT, comma-separated")
	fs.Usage = func() {
		fmt.Fprint(stderr, modbusUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	units, err := modbus.ParseUnits(*unitList)
	if err != nil {
		return err
	}
	var served *profileUnits
	if *profile != "" {
		if *faultExc != 0 || *faultDelay != 0 || *faultDrop || *faultRange != "" || *registers != 0 {
			return errors.New("--fault-* and --registers apply to the sensor map, not to --profile (use --missing)")
		}
		if served, err = parseProfiles(*profile, *profilesDir, *missing, units, isFlagSet(fs, "units"), *change); err != nil {
			return err
		}
	} else if *missing != "" || *profilesDir != "" {
		return errors.New("--missing and --profiles-dir apply to --profile only")
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
	newServer := func() *sim.Server {
		if served != nil {
			m, _ := served.units() // made once by parseProfiles already
			return sim.NewUnitServer(m)
		}
		m := map[byte]*sim.Sensor{}
		for _, u := range units {
			m[u] = sim.NewSensor(*change, *registers)
			m[u].SetFault(fault)
		}
		return sim.NewServer(m)
	}
	what := "units " + *unitList
	if served != nil {
		what = served.describe()
	}
	g, ctx := errgroup.WithContext(ctx)
	serial := func(path, mode string) error {
		port, shown, err := openSimPort(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "modbus %s %s on %s\n", mode, what, shown)
		srv := newServer()
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
			srv := newServer()
			g.Go(func() error { return srv.ServeTCP(ctx, ln) })
		}
		fmt.Fprintf(stdout, "modbus tcp %s on %d device(s) from %s\n", what, *count, *listen)
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

const modbusUsage = `usage: devsim modbus [flags]

Without --profile, sensors with the register map of sim/modbus (go doc
github.com/osapgw/osapgw/sim/modbus). With --profile NAME, the device a
profile describes (osapgw profile list names them): its register map
with plausible values that change every --change, identity registers
answering their declared value, and the points named by --missing
answering exception 2 (go doc github.com/osapgw/osapgw/sim/modbus/profile).

  devsim modbus --profile eastron-sdm630 --listen 127.0.0.1:5020 --units 1-3
  devsim modbus --profile eastron-sdm630,xy-md02 --missing xy-md02:humidity
  devsim modbus --profile my-meter --profiles-dir /etc/osapgw/profiles.d --rtu /tmp/ttyMETER

`

func isFlagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
