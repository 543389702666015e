package modbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/goburrow/modbus"
	"golang.org/x/sync/errgroup"

	"github.com/osapgw/osapgw/adapters"
)

// Defaults of Discover.
const (
	// DefaultProbeTimeout bounds one probe on a TCP link: a LAN device
	// answers in milliseconds, and with DefaultParallel probes at once a
	// scan of 248 silent units takes 16 timeouts (8 s).
	DefaultProbeTimeout = 500 * time.Millisecond
	// DefaultSerialProbeTimeout bounds one probe on a serial link, where
	// units are probed one after another: a full scan of silent units
	// costs 247 of them (74 s).
	DefaultSerialProbeTimeout = 300 * time.Millisecond
	// DefaultParallel is how many TCP connections probe units at once.
	DefaultParallel = 16
)

// Found is a unit that answered a discovery probe, and what it told of
// itself.
type Found struct {
	Unit byte
	// Answer says how it answered: "registers" when it returned holding
	// register 0, or the exception it returned (a unit that answers with
	// an exception is there all the same).
	Answer string
	// Identity is its answer to Read Device Identification, nil when it
	// has none.
	Identity *Identity
	// SunSpec is true when holding registers SunSpecBase and the next
	// hold the SunSpec marker "SunS".
	SunSpec     bool
	SunSpecBase uint16
	// Profiles are the profiles whose fingerprints all match, the one
	// with the most fingerprints first.
	Profiles []string

	broke bool // identification broke the connection
}

// Progress is where a scan stands, reported after each unit.
type Progress struct {
	Scanned, Total, Found int
	// Recheck is set during the second pass, which probes one at a time
	// the units that timed out behind a gateway (see Discover).
	Recheck bool
}

// DiscoverOptions tune Discover; the zero value scans every unit with the
// defaults.
type DiscoverOptions struct {
	// Units are the unit ids to probe, tried in LikelyOrder; nil means
	// DefaultUnits.
	Units []byte
	// Timeout bounds each probe; 0 means DefaultProbeTimeout on TCP and
	// DefaultSerialProbeTimeout on a serial link.
	Timeout time.Duration
	// Parallel is how many TCP connections probe at once; 0 means
	// DefaultParallel. A serial link is one bus: it is probed one unit at
	// a time.
	Parallel int
	// Fingerprints identify the profile of a unit (see Fingerprint).
	Fingerprints []Fingerprint
	// Progress, when set, is called after each unit, one call at a time.
	Progress func(Progress)
}

// DefaultUnits returns the units Discover probes when none are given:
// 0 to 247 on TCP (0 is often the device itself there), 1 to 247 on a
// serial bus (0 is its broadcast address, which no unit answers).
func DefaultUnits(serial bool) []byte {
	first := 0
	if serial {
		first = 1
	}
	out := make([]byte, 0, 248)
	for u := first; u <= 247; u++ {
		out = append(out, byte(u))
	}
	return out
}

// LikelyOrder returns units without duplicates, the likely ones first: 1
// (the factory default of most devices), 247 (of some), 0, 2 to 10 (a
// small site's numbering), then the others in increasing order.
func LikelyOrder(units []byte) []byte {
	rank := func(u byte) int {
		switch {
		case u == 1:
			return 0
		case u == 247:
			return 1
		case u == 0:
			return 2
		case u <= 10:
			return 3 + int(u)
		}
		return 20 + int(u)
	}
	out := slices.Clone(units)
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i]) < rank(out[j]) })
	return slices.Compact(out)
}

// Discover probes the units on the link at rawURL (tcp://, rtu:// or
// ascii://, serial settings in the query) by reading holding register 0,
// and identifies each unit that answers: Read Device Identification, the
// SunSpec marker, the fingerprints of opt. Units are tried in LikelyOrder;
// on TCP, opt.Parallel connections probe at once (a connection the peer
// refuses or breaks leaves its units to the others), on a serial link one
// unit at a time. A TCP gateway's exceptions 10 and 11 (no path, no answer
// from the target) mean no unit; when a gateway answered so and some
// units timed out (they may have waited behind others on its serial bus),
// those are probed again one at a time, once the gateway has answered an
// absent unit again (its queue is empty then). Each silent unit costs
// opt.Timeout.
//
// It returns the units found, by unit id. It fails when the URL or a
// fingerprint is bad or the link cannot be opened, and returns what it
// found so far with ctx.Err() when ctx ends.
func Discover(ctx context.Context, rawURL string, opt DiscoverOptions) ([]Found, error) {
	l, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	fps, err := compileFingerprints(opt.Fingerprints)
	if err != nil {
		return nil, err
	}
	units := opt.Units
	if units == nil {
		units = DefaultUnits(l.serial())
	}
	s := &scan{link: l, timeout: opt.Timeout, fps: fps, progress: opt.Progress}
	if s.timeout <= 0 {
		s.timeout = DefaultProbeTimeout
		if l.serial() {
			s.timeout = DefaultSerialProbeTimeout
		}
	}
	parallel := opt.Parallel
	if parallel <= 0 {
		parallel = DefaultParallel
	}
	if l.serial() {
		parallel = 1
	}
	s.start(LikelyOrder(units), false)
	err = s.run(ctx, parallel)
	if err == nil && s.gatewaySeen && len(s.timedOut) > 0 && parallel > 1 {
		s.drain(ctx, parallel)
		s.start(LikelyOrder(s.timedOut), true)
		err = s.run(ctx, 1)
	}
	sort.Slice(s.found, func(i, j int) bool { return s.found[i].Unit < s.found[j].Unit })
	if err != nil {
		return s.found, fmt.Errorf("discover %s: %w", rawURL, err)
	}
	return s.found, nil
}

// scan is the state of one Discover, shared by its workers.
type scan struct {
	link     link
	timeout  time.Duration
	fps      fingerprints
	progress func(Progress)

	mu          sync.Mutex
	queue       []byte // units left, next first
	total       int
	scanned     int
	recheck     bool
	found       []Found
	timedOut    []byte
	gatewaySeen bool
	absentUnit  byte  // one a gateway said is absent, when gatewaySeen
	answered    bool  // some unit answered on the link
	linkErr     error // the last link failure
}

// outcome is what a probe of one unit found.
type outcome int

const (
	present  outcome = iota // the unit answered
	absent                  // a gateway said there is no such unit
	silent                  // no answer within the timeout
	linkDown                // the connection failed: the unit is not probed
	broke                   // the probe broke a connection that worked
	stopped                 // ctx ended
)

// start sets the units of a pass.
func (s *scan) start(units []byte, recheck bool) {
	s.queue, s.total, s.scanned, s.recheck = units, len(units), 0, recheck
	s.timedOut = nil
}

// run probes the queued units with n workers, each on its own connection,
// until none is left. It fails when ctx ends, or when every connection
// failed: at once (the link is down), or after some answers (then the
// units left are tried once more on a single connection).
func (s *scan) run(ctx context.Context, n int) error {
	n = min(n, len(s.queue))
	var g errgroup.Group
	for range n {
		g.Go(func() error { s.work(ctx); return nil })
	}
	_ = g.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(s.queue) == 0 {
		return nil
	}
	if !s.answered || n == 1 {
		return s.linkErr
	}
	// Connections refused beyond a peer's limit: one is enough.
	return s.run(ctx, 1)
}

// drain waits until the gateway has worked off the requests the workers
// gave up on: it may still be waiting for them on its bus, and a probe
// sent now would queue behind them and time out again. It asks an absent
// unit and waits for the answer, at most as long as n abandoned requests
// could take.
func (s *scan) drain(ctx context.Context, n int) {
	pool := NewPool()
	sl := pool.acquire(s.link, 0)
	defer pool.release(sl)
	_, _ = sl.do(ctx, s.absentUnit, time.Duration(n+1)*s.timeout, probeFn)
}

// work probes units from the queue on a connection of its own until the
// queue is empty, ctx ends or its connection fails before any unit
// answered on it (refused: the link is down, or the peer takes no more
// connections). A connection that breaks after answers is the unit's
// doing (some devices drop the connection on a request they dislike):
// the worker opens a new one and goes on.
func (s *scan) work(ctx context.Context) {
	pool := NewPool()
	sl := pool.acquire(s.link, 0)
	defer func() { pool.release(sl) }()
	answered := false
	for {
		u, ok := s.take()
		if !ok {
			return
		}
		f, out, err := s.examine(ctx, sl, u)
		if out == linkDown && answered {
			out = broke
		}
		answered = answered || out == present || out == absent
		if !s.record(u, f, out, err) {
			return
		}
		if out == broke || f.broke {
			pool.release(sl)
			sl = pool.acquire(s.link, 0)
		}
	}
}

func (s *scan) take() (byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return 0, false
	}
	u := s.queue[0]
	s.queue = s.queue[1:]
	return u, true
}

// record notes what the probe of u found, reports progress, and tells
// whether the worker goes on.
func (s *scan) record(u byte, f Found, out outcome, err error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch out {
	case linkDown, stopped:
		s.queue = append([]byte{u}, s.queue...) // for another worker
		if out == linkDown {
			s.linkErr = fmt.Errorf("unit %d: %w", u, err)
		}
		return false
	case present:
		s.found = append(s.found, f)
		s.answered = true
	case absent:
		s.gatewaySeen, s.answered, s.absentUnit = true, true, u
	case silent:
		s.timedOut = append(s.timedOut, u)
	}
	s.scanned++
	if s.progress != nil {
		s.progress(Progress{Scanned: s.scanned, Total: s.total, Found: len(s.found), Recheck: s.recheck})
	}
	return true
}

// probeFn reads holding register 0: what any unit answers, with its value
// or with an exception.
var probeFn = readFn(Read{Table: Holding, Address: 0, Count: 1})

// examine probes unit u and, when it answers, identifies it.
func (s *scan) examine(ctx context.Context, sl *sharedLink, u byte) (Found, outcome, error) {
	f := Found{Unit: u}
	_, err := sl.do(ctx, u, s.timeout, probeFn)
	var mbErr *modbus.ModbusError
	switch {
	case ctx.Err() != nil:
		return f, stopped, ctx.Err()
	case err == nil:
		f.Answer = "registers"
	case errors.As(err, &mbErr):
		if mbErr.ExceptionCode == modbus.ExceptionCodeGatewayPathUnavailable || mbErr.ExceptionCode == modbus.ExceptionCodeGatewayTargetDeviceFailedToRespond {
			return f, absent, nil
		}
		f.Answer = fmt.Sprintf("exception %d", mbErr.ExceptionCode)
	case errors.Is(err, adapters.ErrTimeout):
		return f, silent, nil
	default:
		return f, linkDown, err
	}
	s.identify(ctx, sl, &f)
	return f, present, nil
}

// ParseUnits parses a list of unit ids and ranges such as "1-10,17,20-22"
// (0 to 255).
func ParseUnits(s string) ([]byte, error) {
	var out []byte
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || a < 0 || b > 255 || a > b {
			return nil, fmt.Errorf("units: bad element %q (want N or N-M within 0-255)", part)
		}
		for u := a; u <= b; u++ {
			out = append(out, byte(u))
		}
	}
	return out, nil
}

// WriteTOML prints a ready [[device]] block for each unit found on the
// link at rawURL: kind, url (serial settings as keys), unit, and profile
// when fingerprints matched one; what the unit told of itself (answer,
// identification, SunSpec marker, other matching profiles) as comments.
// A block without a profile needs one, or attributes, before it is used.
func WriteTOML(w io.Writer, rawURL string, found []Found) error {
	l, err := ParseURL(rawURL)
	if err != nil {
		return err
	}
	var b strings.Builder
	for i, f := range found {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "# unit %d answered (%s)\n", f.Unit, f.Answer)
		if id := f.Identity; id != nil {
			fmt.Fprintf(&b, "# identification: vendor %q, product %q, revision %q\n", id.Vendor, id.Product, id.Revision)
		}
		if f.SunSpec {
			fmt.Fprintf(&b, "# SunSpec marker at holding %d\n", f.SunSpecBase)
		}
		name := "modbus"
		if f.Identity != nil && slugOf(f.Identity.Product) != "" {
			name = slugOf(f.Identity.Product)
		}
		b.WriteString("[[device]]\n")
		fmt.Fprintf(&b, "id = %q\n", fmt.Sprintf("%s-%d", name, f.Unit))
		b.WriteString("kind = \"modbus\"\n")
		if l.serial() {
			fmt.Fprintf(&b, "url = %q\nbaud = %d\nparity = %q\n", l.Scheme+"://"+l.Address, l.Baud, l.Parity)
			if def, _ := ParseURL(l.Scheme + "://" + l.Address); def.DataBits != l.DataBits || def.StopBits != l.StopBits {
				fmt.Fprintf(&b, "data_bits = %d\nstop_bits = %d\n", l.DataBits, l.StopBits)
			}
		} else {
			fmt.Fprintf(&b, "url = %q\n", "tcp://"+l.Address)
		}
		fmt.Fprintf(&b, "unit = %d\n", f.Unit)
		switch {
		case len(f.Profiles) > 0:
			fmt.Fprintf(&b, "profile = %q\n", f.Profiles[0])
			for _, p := range f.Profiles[1:] {
				fmt.Fprintf(&b, "# also matches: profile = %q\n", p)
			}
		case f.SunSpec:
			b.WriteString("# SunSpec device: profile = \"sunspec\"\n")
		default:
			b.WriteString("# no profile matched: add profile = \"NAME\", or [[device.attribute]] blocks\n")
		}
	}
	_, err = io.WriteString(w, b.String())
	return err
}

// slugOf returns s in lower case with runs of other characters than
// letters and digits made one dash, for a device id.
func slugOf(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}
