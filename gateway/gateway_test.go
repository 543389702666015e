package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osapgw/osapgw/adapters"
	_ "github.com/osapgw/osapgw/adapters/onvif"
	"github.com/osapgw/osapgw/bridge"
	"github.com/osapgw/osapgw/config"
	"github.com/osapgw/osapgw/model"
	"github.com/osapgw/osapgw/osap"
	"github.com/osapgw/osapgw/osap/platform"
)

// loopAdapter is a sub-device kind for this test: it reports a counter as
// an attribute, emits the events the test asks for, and remembers sets.
type loopAdapter struct {
	id     string
	events chan model.EventOccurrence
	mu     sync.Mutex
	set    map[string]model.Value
}

var loops sync.Map // id → *loopAdapter

func init() {
	adapters.Register(adapters.Kind{Name: "loop", New: func(id string, dec adapters.Decoder, _ adapters.Env) (adapters.Adapter, error) {
		var c struct {
			Every string `toml:"every"`
		}
		if err := dec.Decode(&c); err != nil {
			return nil, err
		}
		a := &loopAdapter{id: id, events: make(chan model.EventOccurrence, 1000)}
		loops.Store(id, a)
		return a, nil
	}})
}

func (a *loopAdapter) Describe(context.Context) (model.Device, error) {
	return model.Device{ID: a.id, Resources: []model.Resource{{Name: "main", Areas: []model.Area{{Name: "env",
		Attributes: []model.Attribute{{Name: "count", Type: model.TypeInt}, {Name: "setpoint", Type: model.TypeFloat, Writable: true}},
		Events:     []model.EventType{{Name: "tick"}},
	}}}}}, nil
}

func (a *loopAdapter) Run(ctx context.Context, sink adapters.Sink) error {
	sink.Status(a.id, true, nil)
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-a.events:
			sink.Event(a.id, ev)
		case now := <-t.C:
			n++
			sink.Attributes(a.id, "main", map[string]model.Value{"count": {V: int64(n), At: now}})
		}
	}
}

func (a *loopAdapter) Set(_ context.Context, _ string, v map[string]model.Value) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.set = v
	return nil
}

func (a *loopAdapter) Get(context.Context, string, []string) (map[string]model.Value, error) {
	return nil, nil
}

func (a *loopAdapter) Invoke(context.Context, string, string, map[string]any) (map[string]any, error) {
	return nil, nil
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// TestGatewayEndToEnd runs the platform emulator and a gateway in one
// process over loopback: registration, topology, events, a set round
// trip, and an outage of the DAS during which events wait in the outbox.
func TestGatewayEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with a DAS outage; skipped with -short")
	}
	dir := t.TempDir()
	log := testLogger(t)
	emu, err := platform.NewEmulator(platform.EmulatorConfig{StateDir: filepath.Join(dir, "platform"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	emu.Registry.Add("GW-E2E", "ABCDEF")
	runEmulator(t, emu)
	code := writeCode(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	text := fmt.Sprintf(`
[gateway]
serial = "GW-E2E"
verification_code_file = %q
[upstream]
lbs = "tcp://%s"
heartbeat = "2s"
[store]
path = %q
[[device]]
id = "s1"
kind = "loop"
every = "50ms"
`, code, emu.LBSAddr(), filepath.Join(dir, "state", "osapgw.db"))
	cfg, err := config.Parse("e2e.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gw, err := New(cfg, Options{Logger: log, Listener: ln})
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := gw.Run(ctx); err != nil {
			t.Errorf("gateway Run() = %v", err)
		}
	}()

	das := emu.DAS[0]
	var devID string
	waitFor(t, "the gateway to register with its sub-device", 20*time.Second, func() bool {
		for _, d := range das.Devices() {
			info, err := das.Device(d.DevID)
			if err != nil || !info.Online {
				continue
			}
			for _, s := range info.SubDevices {
				if s.ID == "s1" && s.Online && s.Model != nil && len(s.Attributes["main"]) > 0 {
					devID = d.DevID
					return true
				}
			}
		}
		return false
	})

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + gw.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != 200 {
		t.Errorf("/readyz = %d %q, want 200 once registered", code, body)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "osapgw_outbox_events") || !strings.Contains(body, `osapgw_device_online{device="s1",kind="loop"} 1`) {
		t.Errorf("/metrics = %d, lacks the outbox or device series:\n%.2000s", code, body)
	}

	// A set round trip through the platform.
	reply, err := das.Request(ctx, devID, "s1", osap.TypeAttributeSet, osap.AttributeSet{Resource: "main", Values: map[string]any{"setpoint": 21.5}})
	if err != nil || reply.Code != 0 {
		t.Fatalf("attribute.set = %+v, %v, want code 0", reply.Header, err)
	}
	v, _ := loops.Load("s1")
	a := v.(*loopAdapter)
	a.mu.Lock()
	got := a.set["setpoint"].V
	a.mu.Unlock()
	if got != 21.5 {
		t.Errorf("adapter got setpoint %v, want 21.5", got)
	}
	// A body that is not JSON is answered 400 on up/reply, never dropped
	// (binding 2.4), and does not reach the device.
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	reply, err = das.RequestRaw(rctx, devID, "s1", osap.TypeAttributeSet, []byte(`{"resource":"main","values":{"setpoint":`))
	rcancel()
	if err != nil || reply.Code != osap.CodeBadRequest || reply.Type != osap.TypeReply || reply.Dev != "s1" || reply.Msg == "" {
		t.Errorf("attribute.set with a garbled body = %+v, %v, want a 400 reply for s1 with a message", reply.Header, err)
	}
	a.mu.Lock()
	got = a.set["setpoint"].V
	a.mu.Unlock()
	if got != 21.5 {
		t.Errorf("adapter got setpoint %v after the garbled set, want 21.5", got)
	}

	emit := func(from, to int) {
		for i := from; i < to; i++ {
			a.events <- model.EventOccurrence{Resource: "main", Event: "tick", Params: map[string]any{"n": i}, At: time.Now()}
		}
	}
	emit(0, 5)
	waitFor(t, "5 events at the platform", 10*time.Second, func() bool { return emu.Events.Len(devID) >= 5 })

	// Outage: the DAS goes away; events wait in the outbox.
	if err := emu.StopDAS(ctx, 0); err != nil {
		t.Fatalf("StopDAS(0) = %v", err)
	}
	waitFor(t, "the gateway to notice the outage", 20*time.Second, func() bool { return !gw.session.Connected() })
	emit(5, 25)
	waitFor(t, "20 events in the outbox", 10*time.Second, func() bool { return gw.Status().Outbox.Events >= 20 })
	if code, _ := get("/readyz"); code != 503 {
		t.Errorf("/readyz during the outage = %d, want 503", code)
	}
	if err := emu.StartDAS(ctx, 0); err != nil {
		t.Fatalf("StartDAS(0) = %v", err)
	}
	waitFor(t, "25 events at the platform", 30*time.Second, func() bool { return emu.Events.Len(devID) >= 25 })
	waitFor(t, "the outbox to empty", 10*time.Second, func() bool { return gw.Status().Outbox.Events == 0 })

	evs := emu.Events.Events(devID, 0, 1000)
	if len(evs) != 25 {
		t.Fatalf("platform holds %d events, want exactly 25", len(evs))
	}
	deliveredOnce(t, evs)
	for _, e := range evs {
		if e.Dev != "s1" {
			t.Errorf("event %s from %q, want s1", e.ID, e.Dev)
		}
	}
	var st Status
	_, body := get("/status")
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/status is not JSON: %v\n%s", err, body)
	}
	if len(st.Devices) != 1 || st.Devices[0].State != "online" || st.Upstream.DevID != devID {
		t.Errorf("/status = %+v", st)
	}
}

// TestNotProvisioned: with no verification code file the gateway runs its
// devices, keeps their events and dials nowhere; once the file appears it
// registers and delivers them.
func TestNotProvisioned(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end; skipped with -short")
	}
	dir := t.TempDir()
	log := testLogger(t)
	emu, err := platform.NewEmulator(platform.EmulatorConfig{StateDir: filepath.Join(dir, "platform"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	emu.Registry.Add("GW-PROV", "ABCDEF")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Add(1)
	go func() { defer wg.Done(); _ = emu.Run(ctx) }()
	code := filepath.Join(dir, "code")
	text := fmt.Sprintf("[gateway]\nserial = \"GW-PROV\"\nverification_code_file = %q\n[upstream]\nlbs = \"tcp://%s\"\n[store]\npath = %q\n[http]\nlisten = \"off\"\n[[device]]\nid = \"p1\"\nkind = \"loop\"\n",
		code, emu.LBSAddr(), filepath.Join(dir, "state", "osapgw.db"))
	cfg, err := config.Parse("prov.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	loops.Delete("p1") // an adapter of an earlier run (-count)
	gw, err := New(cfg, Options{Logger: log})
	if err != nil {
		t.Fatalf("New() without a code file = %v, want a gateway that waits to be provisioned", err)
	}
	t.Cleanup(func() { loops.Delete("p1") }) // -count=N must not find this run's adapter
	wg.Add(1)
	go func() { defer wg.Done(); _ = gw.Run(ctx) }()
	var v any
	waitFor(t, "the adapter of p1", 10*time.Second, func() bool {
		var ok bool
		v, ok = loops.Load("p1")
		return ok
	})
	a := v.(*loopAdapter)
	a.events <- model.EventOccurrence{Resource: "main", Event: "tick", At: time.Now()}
	waitFor(t, "the event in the outbox", 10*time.Second, func() bool { return gw.Status().Outbox.Events == 1 })
	waitFor(t, "an authentication attempt to fail", 10*time.Second, func() bool {
		return strings.Contains(gw.Status().Upstream.LastError, "not provisioned")
	})
	if n := len(emu.DAS[0].Devices()); n != 0 {
		t.Fatalf("the platform knows %d gateways before provisioning, want 0", n)
	}
	if err := os.WriteFile(code, []byte("ABCDEF\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "registration once provisioned", 30*time.Second, func() bool { return gw.session.Connected() })
	waitFor(t, "the kept event at the platform", 10*time.Second, func() bool { return gw.Status().Outbox.Events == 0 })
}

// TestMissingSecretFile: a camera whose password file does not exist yet
// passes the check with a warning; the daemon runs its other devices, and
// the camera's status names the file.
func TestMissingSecretFile(t *testing.T) {
	dir := t.TempDir()
	log := testLogger(t)
	text := fmt.Sprintf(`[gateway]
serial = "GW-SECRET"
verification_code_file = %q
[upstream]
lbs = "tcp://127.0.0.1:1"
[store]
path = %q
[http]
listen = "off"
[[device]]
id = "s1"
kind = "loop"
[[device]]
id = "cam"
kind = "onvif"
url = "http://127.0.0.1:1/onvif/device_service"
username = "admin"
password_file = %q
`, filepath.Join(dir, "code"), filepath.Join(dir, "state", "osapgw.db"), filepath.Join(dir, "cam.password"))
	cfg, err := config.Parse("secret.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	warnings, err := cfg.Check(func(config.Device) adapters.Env { return adapters.Env{} })
	if err != nil {
		t.Fatalf("Check() = %v, want only a warning", err)
	}
	if len(warnings) != 1 || !strings.HasPrefix(warnings[0].Error(), `secret.toml:18: device "cam": password_file: `) {
		t.Fatalf("Check() warnings = %v, want one at secret.toml:18 about the password file", warnings)
	}
	loops.Delete("s1")
	gw, err := New(cfg, Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { loops.Delete("s1") })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	defer func() { cancel(); <-done }()
	status := func(id string) bridge.DeviceStatus {
		for _, d := range gw.Status().Devices {
			if d.ID == id {
				return d
			}
		}
		return bridge.DeviceStatus{}
	}
	waitFor(t, "the loop device online", 10*time.Second, func() bool { return status("s1").State == "online" })
	waitFor(t, "the camera offline, naming its password file", 10*time.Second, func() bool {
		st := status("cam")
		return st.State == "offline" && strings.Contains(st.LastError, "password_file") && strings.Contains(st.LastError, "no such file")
	})
}

// deliveredOnce checks that the platform's events have strictly
// increasing ids and that no tick (param "n") is there twice, and returns
// the ticks it holds.
func deliveredOnce(t *testing.T, evs []platform.Event) map[int]bool {
	t.Helper()
	seen := map[int]bool{}
	var last uint64
	for _, e := range evs {
		id, err := strconv.ParseUint(e.ID, 10, 64)
		if err != nil || id <= last {
			t.Fatalf("event id %q after %d: want strictly increasing ids", e.ID, last)
		}
		last = id
		var rep osap.EventReport
		if err := json.Unmarshal(e.Body, &rep); err != nil {
			t.Fatal(err)
		}
		body, err := rep.Occurrence()
		if err != nil {
			t.Fatal(err)
		}
		n := int(body.Params["n"].(float64))
		if seen[n] {
			t.Errorf("event n=%d delivered twice", n)
		}
		seen[n] = true
	}
	return seen
}

// runEmulator runs emu until the test ends.
func runEmulator(t *testing.T, emu *platform.Emulator) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := emu.Run(ctx); err != nil {
			t.Errorf("emulator Run() = %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// writeCode writes the verification code ABCDEF to dir/code and returns
// its path.
func writeCode(t *testing.T, dir string) string {
	t.Helper()
	code := filepath.Join(dir, "code")
	if err := os.WriteFile(code, []byte("ABCDEF\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return code
}
