package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/osapgw/osapgw/adapters/modbus"
	"github.com/osapgw/osapgw/profiles"
)

func init() {
	discoverers["modbus"] = command{summary: "find the Modbus units on a link, identify them and print [[device]] blocks", run: runDiscoverModbus}
}

// fingerprints returns the identity registers of the device profiles of
// dir (with the embedded ones), with which discovery names a unit's
// profile. A user's profile that does not parse is left out; check and
// profile check report it.
func fingerprints(dir string) ([]modbus.Fingerprint, error) {
	cat, _ := profiles.Load(dir)
	return modbus.ProfileFingerprints(cat)
}

// ignoresUnitAfter is how many units must all answer on TCP before
// discovery takes the peer for a device that ignores the unit id.
const ignoresUnitAfter = 16

// runDiscoverModbus scans the units of a link, progress on stderr, and
// prints a ready [[device]] block per unit found on stdout.
func runDiscoverModbus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("discover modbus", "URL [--units LIST] [--timeout D] [--parallel N] [--profiles-dir DIR]\n\n"+
		"URL is tcp://HOST[:PORT], rtu:///dev/PORT or ascii:///dev/PORT (serial settings in the query:\n"+
		"rtu:///dev/ttyUSB0?baud=19200&parity=E&data_bits=8&stop_bits=1). Units are tried in the\n"+
		"likely order (1, 247, 0, 2-10, then the others); each unit that answers is asked what it is\n"+
		"(Read Device Identification, the SunSpec marker, the profiles' identity registers).", stderr)
	unitsFlag := fs.String("units", "", "unit ids to probe: N, N-M, comma-separated (default 0-247 on TCP, 1-247 on serial)")
	timeout := fs.Duration("timeout", 0, fmt.Sprintf("how long to wait for each unit (default %v on TCP, %v on serial)", modbus.DefaultProbeTimeout, modbus.DefaultSerialProbeTimeout))
	parallel := fs.Int("parallel", modbus.DefaultParallel, "TCP connections probing at once (a serial bus is probed one unit at a time)")
	profDir := fs.String("profiles-dir", profiles.DefaultDir, "the user's own profiles, whose identity registers are tried too")
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
	} else if url == "" || fs.NArg() > 0 || *timeout < 0 || *parallel < 1 {
		fs.Usage()
		return errUsage
	}
	l, err := modbus.ParseURL(url)
	if err != nil {
		return err
	}
	serial := l.Scheme != "tcp"
	opt := modbus.DiscoverOptions{Timeout: *timeout, Parallel: *parallel}
	if *unitsFlag != "" {
		if opt.Units, err = modbus.ParseUnits(*unitsFlag); err != nil {
			return err
		}
	} else {
		opt.Units = modbus.DefaultUnits(serial)
	}
	if opt.Timeout == 0 {
		opt.Timeout = modbus.DefaultProbeTimeout
		if serial {
			opt.Timeout = modbus.DefaultSerialProbeTimeout
		}
	}
	if serial {
		opt.Parallel = 1
	}
	if opt.Fingerprints, err = fingerprints(*profDir); err != nil {
		return err
	}
	total := len(modbus.LikelyOrder(opt.Units))
	fmt.Fprintf(stderr, "scanning %s: %d units, %d at a time, timeout %v\n", url, total, min(opt.Parallel, total), opt.Timeout)
	p := &progressPrinter{w: stderr, tty: isTerminal(stderr)}
	opt.Progress = p.update
	start := time.Now()
	found, err := modbus.Discover(ctx, url, opt)
	p.end()
	answered := len(found)
	if !serial && answered == total && total >= ignoresUnitAfter {
		fmt.Fprintf(stderr, "every unit answered: the device ignores the unit id; one block printed\n")
		pick := found[0]
		for _, f := range found {
			if f.Unit == 1 {
				pick = f
			}
		}
		found = []modbus.Found{pick}
	}
	if werr := modbus.WriteTOML(stdout, url, found); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%d of %d units answered on %s in %.1fs\n", answered, total, url, time.Since(start).Seconds())
	return nil
}

// progressPrinter shows a scan's progress: one line rewritten in place on
// a terminal, else a line every tenth of the units (and the last).
type progressPrinter struct {
	w       io.Writer
	tty     bool
	recheck bool
	open    bool // a terminal line is not ended yet
}

func (p *progressPrinter) update(pr modbus.Progress) {
	verb := "scanned"
	if pr.Recheck {
		verb = "rechecked"
		if !p.recheck {
			p.recheck = true
			p.end()
			fmt.Fprintf(p.w, "a gateway answered for absent units: probing the %d that timed out again, one at a time\n", pr.Total)
		}
	}
	line := fmt.Sprintf("%s %d/%d units, %d found", verb, pr.Scanned, pr.Total, pr.Found)
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\x1b[K", line)
		p.open = true
		return
	}
	if step := max(1, pr.Total/10); pr.Scanned%step == 0 || pr.Scanned == pr.Total {
		fmt.Fprintln(p.w, line)
	}
}

// end ends the terminal line, if one is open.
func (p *progressPrinter) end() {
	if p.open {
		fmt.Fprintln(p.w)
		p.open = false
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
