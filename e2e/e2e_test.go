package e2e

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/osapgw/osapgw/osap"
	"github.com/osapgw/osapgw/osap/platform"
)

func synthetic(id string, rate float64) string {
	return "\n[[device]]\nid = \"" + id + "\"\nkind = \"synthetic\"\nattributes = 3\nattribute_every = \"500ms\"\nevent_rate = " +
		strconv.FormatFloat(rate, 'f', 1, 64) + "\n"
}

func TestRegistrationAndRoundTrips(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end with real processes; skipped with -short")
	}
	s := newSite(t)
	s.writeConfig(synthetic("gen-1", 2))
	s.startGateway()
	devID := s.devID()

	waitFor(t, "gen-1 online with its model and attributes", 30*time.Second, func() bool {
		for _, sd := range s.device(devID).SubDevices {
			if sd.ID == "gen-1" && sd.Online && sd.Model != nil && len(sd.Attributes["main"]) >= 3 {
				return true
			}
		}
		return false
	})

	tests := []struct {
		name     string
		verb     string
		body     map[string]any
		wantCode int
		wantBody string
	}{
		{"set", "set", map[string]any{"dev": "gen-1", "resource": "main", "values": map[string]any{"setpoint": 12.5}}, 0, ""},
		{"get", "get", map[string]any{"dev": "gen-1", "resource": "main", "names": []string{"setpoint"}}, 0, `"v":12.5`},
		{"invoke", "invoke", map[string]any{"dev": "gen-1", "resource": "main", "operation": "echo", "input": map[string]any{"text": "hello"}}, 0, `{"output":{"text":"hello"}}`},
		{"not writable", "set", map[string]any{"dev": "gen-1", "resource": "main", "values": map[string]any{"value_0": 1}}, 409, ""},
		{"out of range", "set", map[string]any{"dev": "gen-1", "resource": "main", "values": map[string]any{"setpoint": 5000}}, 400, ""},
		{"unknown sub-device", "set", map[string]any{"dev": "nope", "resource": "main", "values": map[string]any{"setpoint": 1}}, 404, ""},
		{"unknown operation", "invoke", map[string]any{"dev": "gen-1", "resource": "main", "operation": "explode"}, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, reply := s.request(devID, tt.verb, tt.body)
			if status != 200 {
				t.Fatalf("POST %s = HTTP %d: %s", tt.verb, status, reply.Msg)
			}
			if reply.Code != tt.wantCode {
				t.Errorf("reply code = %d (%s), want %d", reply.Code, reply.Msg, tt.wantCode)
			}
			var compact bytes.Buffer
			_ = json.Compact(&compact, reply.Body)
			if tt.wantBody != "" && !strings.Contains(compact.String(), tt.wantBody) {
				t.Errorf("reply body = %s, want it to contain %s", compact.String(), tt.wantBody)
			}
		})
	}

	// osapgw status prints the table from the running daemon.
	out, err := runOutput(bin.osapgw, "status", "-addr", s.gwHTTP)
	if err != nil || !strings.Contains(out, "gen-1") || !strings.Contains(out, "online") {
		t.Errorf("osapgw status = %v\n%s", err, out)
	}
	// SIGTERM: the gateway says goodbye and the platform sees it offline.
	if err := s.gateway.stop(syscall.SIGTERM); err != nil {
		t.Errorf("osapgw exit after SIGTERM: %v", err)
	}
	waitFor(t, "the platform to see the gateway offline", 10*time.Second, func() bool { return !s.device(devID).Online })
}

// checkExactlyOnce asserts that the platform holds the ticks 1..max of dev
// exactly once each, with strictly increasing gateway ids in arrival
// order, and with the capture time each event was created with.
func checkExactlyOnce(t *testing.T, evs []platform.Event, dev string) int {
	t.Helper()
	seen := map[int64]bool{}
	var lastID uint64
	var maxN int64
	for _, e := range evs {
		if e.Dev != dev {
			continue
		}
		id, err := strconv.ParseUint(e.ID, 10, 64)
		if err != nil {
			t.Fatalf("event id %q is not a decimal sequence number", e.ID)
		}
		if id <= lastID {
			t.Fatalf("event id %d arrived after %d: ids must increase per sub-device", id, lastID)
		}
		lastID = id
		var rep osap.EventReport
		if err := json.Unmarshal(e.Body, &rep); err != nil {
			t.Fatalf("event %s body: %v", e.ID, err)
		}
		body, err := rep.Occurrence()
		if err != nil {
			t.Fatalf("event %s body: %v", e.ID, err)
		}
		n := int64(body.Params["n"].(float64))
		if seen[n] {
			t.Fatalf("tick %d stored twice", n)
		}
		seen[n] = true
		maxN = max(maxN, n)
		if !e.Captured.Equal(body.At) || body.At.IsZero() {
			t.Fatalf("event %s: captured %v, body ts %v: the capture time must be kept", e.ID, e.Captured, body.At)
		}
		if e.Received.Before(e.Captured.Add(-time.Second)) {
			t.Fatalf("event %s received %v before it was captured %v", e.ID, e.Received, e.Captured)
		}
	}
	for n := int64(1); n <= maxN; n++ {
		if !seen[n] {
			t.Fatalf("tick %d of %d is missing at the platform", n, maxN)
		}
	}
	return int(maxN)
}

// stopGenerating reloads the gateway with no devices, so no new events are
// captured, and waits for the outbox to drain.
func (s *site) stopGenerating() {
	s.t.Helper()
	s.writeConfig("")
	s.gateway.signal(syscall.SIGHUP)
	waitFor(s.t, "the reload to stop every device", 20*time.Second, func() bool { return len(s.gatewayStatus().Devices) == 0 })
	waitFor(s.t, "the outbox to drain", 5*time.Minute, func() bool {
		st := s.gatewayStatus()
		return st.Outbox.Events == 0 && st.Upstream.State == "connected"
	})
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestOutagesLoseNothing stops the platform 10 times for 5-30 s while a
// sub-device produces events, then checks the platform holds every event
// exactly once, in order, with its capture time.
func TestOutagesLoseNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("ten platform outages take minutes; skipped with -short")
	}
	outages := envInt("OSAPGW_E2E_OUTAGES", 10)
	maxDown := envInt("OSAPGW_E2E_MAX_DOWN_SECONDS", 30)
	seed := time.Now().UnixNano()
	t.Logf("seed %d (outages %d, 5-%d s each)", seed, outages, maxDown)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))

	s := newSite(t)
	s.writeConfig(synthetic("gen-1", 20))
	s.startGateway()
	devID := s.devID()
	for i := range outages {
		// The gateway backs off exponentially (1 s to 5 min) while the
		// platform is away: let it reconnect before the next outage, as
		// the outages of a site come and go.
		waitFor(t, "the gateway to reconnect", 3*time.Minute, func() bool { return s.gatewayStatus().Upstream.State == "connected" })
		time.Sleep(time.Duration(1+rng.IntN(3)) * time.Second)
		down := time.Duration(5+rng.IntN(maxDown-4)) * time.Second
		t.Logf("outage %d: platform down for %v", i+1, down)
		s.restartPlatform(down, func() {
			if got := s.gatewayStatus().Outbox.Events; got == 0 {
				t.Errorf("outage %d: the outbox holds no events after %v down, want the events captured meanwhile", i+1, down)
			}
		})
	}
	s.stopGenerating()
	n := checkExactlyOnce(t, s.events(devID), "gen-1")
	t.Logf("%d events delivered exactly once across %d outages", n, outages)
	if n < outages*5*20/2 {
		t.Errorf("only %d events were captured; the generator should have made more", n)
	}
}

// TestKillDuringReplay builds a backlog while the platform is down, kills
// the gateway with SIGKILL while it replays it, restarts it, and checks
// that nothing was lost or doubled.
func TestKillDuringReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end with real processes; skipped with -short")
	}
	s := newSite(t)
	s.writeConfig(synthetic("gen-1", 500))
	s.startGateway()
	devID := s.devID()
	if err := s.platform.stop(syscall.SIGTERM); err != nil {
		t.Logf("platform stop: %v", err)
	}
	waitFor(t, "a backlog of 3000 events", 60*time.Second, func() bool { return s.gatewayStatus().Outbox.Events >= 3000 })
	// Stop capturing, keep the backlog.
	s.writeConfig("")
	s.gateway.signal(syscall.SIGHUP)
	waitFor(t, "the reload", 20*time.Second, func() bool { return len(s.gatewayStatus().Devices) == 0 })
	backlog := s.gatewayStatus().Outbox.Events

	s.platform.start()
	s.waitHTTP("http://" + s.api + "/api/devices")
	waitFor(t, "the replay to start", 60*time.Second, func() bool { return len(s.events(devID)) > 0 })
	if err := s.gateway.stop(syscall.SIGKILL); err == nil {
		t.Log("gateway had exited before SIGKILL")
	}
	delivered := len(s.events(devID))
	t.Logf("killed the gateway with %d of %d+ events delivered", delivered, backlog)
	s.startGateway()
	waitFor(t, "the outbox to drain after the restart", 120*time.Second, func() bool {
		st := s.gatewayStatus()
		return st.Outbox.Events == 0 && st.Upstream.State == "connected"
	})
	n := checkExactlyOnce(t, s.events(devID), "gen-1")
	if n < backlog {
		t.Errorf("platform holds %d events, the backlog was %d", n, backlog)
	}
}

// TestReloadAddsAndRemovesDevices changes the configuration under a
// running gateway: the platform sees the new sub-device and loses the old
// one, and the session stays up.
func TestReloadAddsAndRemovesDevices(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end with real processes; skipped with -short")
	}
	s := newSite(t)
	s.writeConfig(synthetic("gen-1", 0) + synthetic("gen-2", 0))
	s.startGateway()
	devID := s.devID()
	subs := func() map[string]bool {
		out := map[string]bool{}
		for _, sd := range s.device(devID).SubDevices {
			if sd.Model != nil {
				out[sd.ID] = sd.Online
			}
		}
		return out
	}
	waitFor(t, "gen-1 and gen-2 announced", 30*time.Second, func() bool { m := subs(); return m["gen-1"] && m["gen-2"] })
	before := s.device(devID).ConnectedAt

	// A bad file is refused and the old configuration keeps running.
	refused := s.gateway.logCount("reload refused")
	write(t, s.cfgPath, "[gateway\n", 0o600)
	s.gateway.signal(syscall.SIGHUP)
	waitFor(t, "the gateway to refuse the bad file", 20*time.Second, func() bool { return s.gateway.logCount("reload refused") > refused })
	if n := len(s.gatewayStatus().Devices); n != 2 {
		t.Fatalf("after a bad reload %d devices run, want the old 2", n)
	}

	s.writeConfig(synthetic("gen-2", 0) + synthetic("gen-3", 0))
	s.gateway.signal(syscall.SIGHUP)
	waitFor(t, "gen-3 announced and gen-1 removed", 30*time.Second, func() bool {
		m := subs()
		_, has1 := m["gen-1"]
		return m["gen-3"] && m["gen-2"] && !has1
	})
	if after := s.device(devID).ConnectedAt; !after.Equal(before) {
		t.Errorf("the upstream session reconnected during the reload (%v → %v)", before, after)
	}
}

func runOutput(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	b, err := cmd.CombinedOutput()
	return string(b), err
}

// TestShippedDaemonCarriesNoEmulator: osapgw as packaged links neither the
// platform emulator nor its MQTT broker (issue 8: a gateway box does not
// carry the emulator), and its demo command says where the demo is.
func TestShippedDaemonCarriesNoEmulator(t *testing.T) {
	out, err := exec.Command("go", "version", "-m", bin.osapgw).CombinedOutput()
	if err != nil {
		t.Fatalf("go version -m: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "github.com/mochi-mqtt/server") {
		t.Errorf("the packaged osapgw links mochi-mqtt, the emulator's broker:\n%s", out)
	}
	if !strings.Contains(string(out), "go.etcd.io/bbolt") {
		t.Errorf("go version -m lists no bbolt; is this the daemon?\n%s", out)
	}
	out, err = exec.Command(bin.osapgw, "demo").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "make demo") {
		t.Errorf("osapgw demo in the packaged build = %v, %q; want an error that points to make demo", err, out)
	}
}
