package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/osapgw/osapgw/config"
	"github.com/osapgw/osapgw/gateway"
	"github.com/osapgw/osapgw/internal/backoff"
	"github.com/osapgw/osapgw/osap/platform"
)

const (
	demoSerial = "OSAPGW-DEMO-0001"
	demoCode   = "DEMO-2026"
)

// demoPart is a simulated device the demo starts: it serves until ctx
// ends and returns the [[device]] block that points the gateway at it.
// Parts register themselves from one file each (modbus.go, onvif.go).
type demoPart struct {
	name  string
	start func(ctx context.Context, wg *sync.WaitGroup, log *slog.Logger) (deviceTOML string, err error)
	// actions are run once the gateway is registered, in order.
	actions []demoAction
}

// demoAction is one downlink request the demo walks through.
type demoAction struct {
	title string
	dev   string
	typ   string
	body  any
}

var demoParts []demoPart

// demoState is what the live view shows besides what it reads from the
// gateway and the platform.
type demoState struct {
	mu      sync.Mutex
	actions []string
	notes   []string
	// recent are the last events the platform received, read a page at a
	// time after lastSeq so a frame does not copy the whole event store.
	recent  []platform.Event
	lastSeq uint64
}

func (s *demoState) note(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notes = append(s.notes, time.Now().Format("15:04:05")+" "+fmt.Sprintf(format, args...))
	if len(s.notes) > 6 {
		s.notes = s.notes[len(s.notes)-6:]
	}
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("osapgw-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: osapgw-demo [-duration D] [-outage] [-plain] [-state DIR] [-v]")
		fs.PrintDefaults()
	}
	duration := fs.Duration("duration", 0, "stop after this long (0: run until Ctrl-C)")
	outage := fs.Bool("outage", false, "stop the platform's DAS for 15 s, 20 s after registration, to show events buffering in the outbox")
	plain := fs.Bool("plain", false, "print a status block every few seconds instead of redrawing the screen")
	stateDir := fs.String("state", "", "keep the demo's state in this `directory` (default: a temporary one, removed on exit)")
	verbose := fs.Bool("v", false, "show the components' logs")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	dir := *stateDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "osapgw-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	logOut := io.Discard
	if *verbose {
		logOut = stderr
	}
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelInfo}))

	emu, err := platform.NewEmulator(platform.EmulatorConfig{
		StateDir: filepath.Join(dir, "platform"), HTTPListen: "127.0.0.1:0", Logger: log.With("side", "platform"),
	})
	if err != nil {
		return fmt.Errorf("platform emulator: %w", err)
	}
	emu.Registry.Add(demoSerial, demoCode)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := emu.Run(runCtx); err != nil {
			fmt.Fprintf(stderr, "platform emulator: %v\n", err)
		}
	}()

	var blocks []string
	var actions []demoAction
	for _, p := range demoParts {
		block, err := p.start(runCtx, &wg, log.With("sim", p.name))
		if err != nil {
			cancel()
			return fmt.Errorf("start simulated %s: %w", p.name, err)
		}
		blocks = append(blocks, block)
		actions = append(actions, p.actions...)
	}
	cfg, err := writeDemoConfig(dir, emu.LBSAddr(), blocks)
	if err != nil {
		cancel()
		return err
	}
	gw, err := gateway.New(cfg, gateway.Options{Logger: log.With("side", "gateway")})
	if err != nil {
		cancel()
		return fmt.Errorf("gateway: %w", err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := gw.Run(runCtx); err != nil {
			fmt.Fprintf(stderr, "gateway: %v\n", err)
		}
	}()

	st := &demoState{}
	st.note("platform emulator: LBS %s, DAS %s, API %s", emu.LBSAddr(), emu.DAS[0].URL(), emu.APIURL())
	st.note("gateway %s authenticating with the LBS (first authentication, ECDH P-384)", demoSerial)

	outageNow := make(chan struct{}, 1)
	if isTerminal(os.Stdin) {
		// A read from a terminal cannot be cancelled; this goroutine ends
		// with the process, which is what an interactive demo is.
		go readKeys(os.Stdin, outageNow)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		demoScript(runCtx, emu, gw, actions, *outage, outageNow, st)
	}()

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	frames := 0
	for {
		select {
		case <-runCtx.Done():
			fmt.Fprintln(stdout)
			printDemoFrame(stdout, emu, gw, st, false)
			fmt.Fprintln(stdout, "demo stopped.")
			cancel()
			return nil
		case <-tick.C:
			frames++
			if *plain {
				if frames%5 == 0 {
					printDemoFrame(stdout, emu, gw, st, false)
				}
				continue
			}
			printDemoFrame(stdout, emu, gw, st, true)
		}
	}
}

// readKeys turns a line "o" on stdin into an outage request.
func readKeys(r io.Reader, outage chan<- struct{}) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "o" {
			select {
			case outage <- struct{}{}:
			default:
			}
		}
	}
}

func writeDemoConfig(dir, lbs string, blocks []string) (*config.Config, error) {
	code := filepath.Join(dir, "verification_code")
	if err := os.WriteFile(code, []byte(demoCode+"\n"), 0o600); err != nil {
		return nil, err
	}
	text := fmt.Sprintf(`# osapgw demo configuration, written by "osapgw demo".
[gateway]
serial = %q
verification_code_file = %q

[upstream]
lbs = "tcp://%s"
heartbeat = "5s"
request_timeout = "5s"

[store]
path = %q

[http]
listen = "127.0.0.1:0"

%s`, demoSerial, code, lbs, filepath.Join(dir, "gateway", "osapgw.db"), strings.Join(blocks, "\n"))
	path := filepath.Join(dir, "osapgw.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return nil, err
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, fmt.Errorf("demo configuration: %w", err)
	}
	return cfg, nil
}

// demoScript waits for registration, walks through the actions, and
// stages an outage when asked.
func demoScript(ctx context.Context, emu *platform.Emulator, gw *gateway.Gateway, actions []demoAction, outage bool, outageNow <-chan struct{}, st *demoState) {
	devID := waitRegistered(ctx, emu)
	if devID == "" {
		return
	}
	st.note("gateway registered over MQTT as DevID %s; heartbeat by PINGREQ every 5s", devID)
	// Walk through the requests once every sub-device is online (or after
	// 30 s, so a broken simulator shows its error instead of hanging).
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		online := 0
		devs := gw.Status().Devices
		for _, d := range devs {
			if d.State == "online" {
				online++
			}
		}
		if online == len(devs) {
			break
		}
		if !backoff.Sleep(ctx, 200*time.Millisecond) {
			return
		}
	}
	if !backoff.Sleep(ctx, 2*time.Second) {
		return
	}
	for _, a := range actions {
		start := time.Now()
		reply, err := emu.DAS[0].Request(ctx, devID, a.dev, a.typ, a.body)
		line := fmt.Sprintf("%s → ", a.title)
		switch {
		case err != nil:
			line += "error: " + err.Error()
		case reply.Code != 0:
			line += fmt.Sprintf("code %d: %s", reply.Code, reply.Msg)
		default:
			line += fmt.Sprintf("code 0 ok %s(%d ms)", compactBody(reply.Body), time.Since(start).Milliseconds())
		}
		st.mu.Lock()
		st.actions = append(st.actions, line)
		st.mu.Unlock()
		if !backoff.Sleep(ctx, 2*time.Second) {
			return
		}
	}
	timer := make(<-chan time.Time)
	if outage {
		timer = time.After(20 * time.Second)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer:
		case <-outageNow:
		}
		st.note("OUTAGE: stopping the platform's DAS for 15 s; events wait in the gateway's outbox")
		if emu.StopDAS(ctx, 0) != nil || !backoff.Sleep(ctx, 15*time.Second) {
			return // ctx ended
		}
		if emu.StartDAS(ctx, 0) != nil {
			return // ctx ended
		}
		st.note("DAS back: the gateway reconnects (backoff with jitter) and delivers the backlog in order")
	}
}

func compactBody(b json.RawMessage) string {
	if len(b) == 0 || string(b) == "null" || string(b) == "{}" {
		return ""
	}
	s := string(b)
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s + " "
}

func waitRegistered(ctx context.Context, emu *platform.Emulator) string {
	for {
		for _, d := range emu.DAS[0].Devices() {
			if d.Online {
				return d.DevID
			}
		}
		if !backoff.Sleep(ctx, 200*time.Millisecond) {
			return ""
		}
	}
}

// printDemoFrame draws one view of the demo: what the gateway reports of
// itself, what the platform holds, and what happened.
func printDemoFrame(w io.Writer, emu *platform.Emulator, gw *gateway.Gateway, st *demoState, redraw bool) {
	var b strings.Builder
	if redraw {
		b.WriteString("\x1b[H\x1b[2J")
	}
	gs := gw.Status()
	fmt.Fprintf(&b, "osapgw demo — platform API %s — Ctrl-C stops; type o and Enter for a DAS outage\n\n", emu.APIURL())
	fmt.Fprintf(&b, "GATEWAY   upstream %s (DevID %s, %d reconnects)   outbox: %d events waiting, %d dropped\n",
		gs.Upstream.State, orDash(gs.Upstream.DevID), gs.Upstream.Reconnects, gs.Outbox.Events, gs.Outbox.Dropped)
	fmt.Fprintf(&b, "PLATFORM  %d events stored (each id once)\n\n", emu.Events.Len(gs.Upstream.DevID))
	fmt.Fprintln(&b, "SUB-DEVICES")
	now := time.Now()
	for _, d := range gs.Devices {
		fmt.Fprintf(&b, "  %-10s %-7s %-8s last data %-8s %s\n", d.ID, d.Kind, d.State, ago(now, d.LastData), orDash(d.LastError))
	}
	if info, err := emu.DAS[0].Device(gs.Upstream.DevID); err == nil {
		fmt.Fprintln(&b, "\nATTRIBUTES (as the platform sees them)")
		for _, sd := range info.SubDevices {
			var lines []string
			for res, vals := range sd.Attributes {
				for name, v := range vals {
					lines = append(lines, fmt.Sprintf("  %-10s %s.%s = %v", sd.ID, res, name, formatValue(v.V)))
				}
			}
			sort.Strings(lines)
			if len(lines) > 8 {
				lines = append(lines[:8], fmt.Sprintf("  %-10s ... and %d more", sd.ID, len(lines)-8))
			}
			for _, l := range lines {
				fmt.Fprintln(&b, l)
			}
		}
	}
	fmt.Fprintln(&b, "\nEVENTS (last received by the platform)")
	st.mu.Lock()
	for {
		page := emu.Events.Events(gs.Upstream.DevID, st.lastSeq, 1000)
		if len(page) == 0 {
			break
		}
		st.lastSeq = page[len(page)-1].Seq
		st.recent = append(st.recent, page...)
		if len(st.recent) > 6 {
			st.recent = append(st.recent[:0], st.recent[len(st.recent)-6:]...)
		}
	}
	evs := append([]platform.Event(nil), st.recent...)
	st.mu.Unlock()
	for _, e := range evs {
		pic := ""
		switch {
		case len(e.Pictures) > 0:
			pic = "  picture " + strings.Join(e.Pictures, ",")
		case e.PictureError != "":
			pic = "  no picture: " + e.PictureError
		}
		fmt.Fprintf(&b, "  #%-6s %-10s %s/%s captured %s%s\n", e.ID, orDash(e.Dev), e.Resource, e.Name, e.Captured.Format("15:04:05.000"), pic)
	}
	st.mu.Lock()
	if len(st.actions) > 0 {
		fmt.Fprintln(&b, "\nREQUESTS FROM THE PLATFORM")
		for _, a := range st.actions {
			fmt.Fprintf(&b, "  %s\n", a)
		}
	}
	fmt.Fprintln(&b, "\nLOG")
	for _, n := range st.notes {
		fmt.Fprintf(&b, "  %s\n", n)
	}
	st.mu.Unlock()
	io.WriteString(w, b.String())
}

func formatValue(v any) string {
	switch x := v.(type) {
	case float64:
		return fmt.Sprintf("%.2f", x)
	case string:
		if len(x) > 60 {
			return fmt.Sprintf("%q...", x[:57])
		}
		return fmt.Sprintf("%q", x)
	}
	return fmt.Sprint(v)
}

// isTerminal reports whether f is a character device (a terminal), so
// the demo reads keys only when a person can type them.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return now.Sub(t).Round(time.Second).String() + " ago"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
