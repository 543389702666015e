package upstream

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sync/errgroup"

	"github.com/osapgw/osapgw/internal/leaktest"
	"github.com/osapgw/osapgw/internal/testenv"
	"github.com/osapgw/osapgw/osap"
)

// mosquitto is Debian's mosquitto broker, run by a test on 127.0.0.1.
type mosquitto struct {
	t    *testing.T
	bin  string
	conf string
	log  string
	addr string
	cmd  *exec.Cmd
}

// startMosquitto starts mosquitto on a free port of 127.0.0.1 with
// persistence in a temporary directory (so a restart keeps persistent
// sessions), or skips the test when mosquitto is not installed.
func startMosquitto(t *testing.T) *mosquitto {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/mosquitto"); serr != nil {
			testenv.Missing(t, "mosquitto is not installed (apt-get install mosquitto; scripts/test-deps.sh does it)")
		}
		bin = "/usr/sbin/mosquitto"
	}
	dir := t.TempDir()
	m := &mosquitto{
		t:    t,
		bin:  bin,
		conf: filepath.Join(dir, "mosquitto.conf"),
		log:  filepath.Join(dir, "mosquitto.log"),
		addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
	}
	_, port, _ := net.SplitHostPort(m.addr)
	conf := strings.Join([]string{
		"listener " + port + " 127.0.0.1",
		"allow_anonymous true",
		"persistence true",
		"persistence_location " + dir + "/",
		"autosave_interval 0",
		"max_queued_messages 10000",
		"log_dest file " + m.log,
		"log_type all",
		"connection_messages true",
	}, "\n") + "\n"
	if os.Geteuid() == 0 {
		conf += "user root\n" // stay root: the temporary directory is root's
	}
	if err := os.WriteFile(m.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	m.start()
	t.Cleanup(m.stop)
	return m
}

// start runs mosquitto and waits until it accepts connections.
func (m *mosquitto) start() {
	m.t.Helper()
	m.cmd = exec.Command(m.bin, "-c", m.conf)
	m.cmd.Stdout, m.cmd.Stderr = io.Discard, io.Discard
	if err := m.cmd.Start(); err != nil {
		m.t.Fatalf("start mosquitto: %v", err)
	}
	deadline := time.Now().Add(waitFor)
	for {
		c, err := net.DialTimeout("tcp", m.addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			m.stop()
			m.t.Fatalf("mosquitto does not listen on %s: %v; log:\n%s", m.addr, err, m.logText())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends mosquitto with SIGTERM, on which it saves its persistent
// sessions, and waits for it.
func (m *mosquitto) stop() {
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	_ = m.cmd.Wait()
	m.cmd = nil
}

func (m *mosquitto) logText() string {
	b, _ := os.ReadFile(m.log)
	return string(b)
}

// waitLog waits until mosquitto's log has a line containing s.
func (m *mosquitto) waitLog(s string) {
	m.t.Helper()
	deadline := time.Now().Add(waitFor)
	for !strings.Contains(m.logText(), s) {
		if time.Now().After(deadline) {
			m.t.Fatalf("mosquitto log has no %q; log:\n%s", s, m.logText())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cutProxy forwards TCP connections to a target and can cut them all
// abruptly (RST, no DISCONNECT), as a failing network would.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []*net.TCPConn
	g      errgroup.Group
}

func startProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	p.g.Go(p.accept)
	t.Cleanup(func() {
		_ = ln.Close()
		p.cut()
		_ = p.g.Wait()
	})
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) accept() error {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return nil
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		a, b := c.(*net.TCPConn), up.(*net.TCPConn)
		p.mu.Lock()
		p.conns = append(p.conns, a, b)
		p.mu.Unlock()
		p.g.Go(func() error { _, _ = io.Copy(b, a); _ = b.CloseWrite(); return nil })
		p.g.Go(func() error { _, _ = io.Copy(a, b); _ = a.CloseWrite(); return nil })
	}
}

// cut resets every connection through the proxy.
func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.SetLinger(0)
		_ = c.Close()
	}
	p.conns = nil
}

// TestMosquittoHeartbeat leaves the connection idle for three keep-alive
// periods: keep-alive pings hold it (mosquitto drops a client silent for
// 1.5 periods).
func TestMosquittoHeartbeat(t *testing.T) {
	if testing.Short() {
		t.Skip("idles for 3.5 s")
	}
	leaktest.Check(t)
	m := startMosquitto(t)
	a := &fakeAuth{das: "mqtt://" + m.addr}
	r := newRecorder()
	s := newSession(t, a, &memStore{}, r, time.Second)
	runSession(t, s)
	recv(t, r.connected, "Handler.Connected")

	time.Sleep(3500 * time.Millisecond)
	if st := s.State(); !s.Connected() || st.Reconnects != 0 || len(r.disconnected) != 0 {
		t.Errorf("after 3.5 idle keep-alive periods: Connected() = %v, State() = %+v, want still the first connection", s.Connected(), st)
	}
	if n := strings.Count(m.logText(), "Received PINGREQ from "+testDevID); n < 2 {
		t.Errorf("mosquitto received %d PINGREQs from %s in 3.5 s with a 1 s heartbeat, want at least 2", n, testDevID)
	}
}

// TestMosquittoRestart publishes a stream of QoS 1 events while mosquitto
// is stopped and started again on the same port: the session reconnects by
// itself, publishes made while it is offline return ErrNotConnected and are
// retried (as the bridge does), and the platform receives every event at
// least once.
func TestMosquittoRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts mosquitto")
	}
	leaktest.Check(t)
	m := startMosquitto(t)
	p := newPlatform(t, m.addr)
	a := &fakeAuth{das: "mqtt://" + m.addr}
	r := newRecorder()
	s := newSession(t, a, &memStore{}, r, 2*time.Second)
	runSession(t, s)
	recv(t, r.connected, "Handler.Connected")

	const n = 150
	ctx, cancel := context.WithTimeout(context.Background(), 3*waitFor)
	defer cancel()
	third := make(chan struct{})
	var once sync.Once
	var retries int
	var g errgroup.Group
	g.Go(func() error {
		var err error
		retries, err = publishAll(ctx, s, n, 10*time.Millisecond, func(acked int) {
			if acked >= n/3 {
				once.Do(func() { close(third) })
			}
		})
		return err
	})
	recv(t, third, "a third of the events acknowledged")
	m.stop()
	for deadline := time.Now().Add(waitFor); s.Connected(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("Connected() still true %s after the broker stopped", waitFor)
		}
	}
	time.Sleep(300 * time.Millisecond) // let publishes meet the outage
	m.start()
	if err := g.Wait(); err != nil {
		t.Fatalf("publishing: %v", err)
	}
	counts, _ := collectEvents(t, p, a, n)

	if err := recv(t, r.disconnected, "Handler.Disconnected"); err == nil {
		t.Error("Disconnected(nil) when the broker went away, want the cause")
	}
	if st := s.State(); st.Reconnects < 1 || !s.Connected() {
		t.Errorf("State() = %+v, Connected() = %v; want reconnected", st, s.Connected())
	}
	if retries == 0 {
		t.Error("no publish was refused while the broker was down; the test did not cover the outage")
	}
	t.Logf("%d events delivered (%d copies), %d publishes retried, state %+v", n, total(counts), retries, s.State())
}

// TestMosquittoWill cuts the gateway's TCP connection without DISCONNECT:
// the broker publishes the will {"online":false}, and the session comes
// back by itself and says {"online":true}.
func TestMosquittoWill(t *testing.T) {
	leaktest.Check(t)
	m := startMosquitto(t)
	p := newPlatform(t, m.addr)
	px := startProxy(t, m.addr)
	a := &fakeAuth{das: "mqtt://" + px.addr()}
	r := newRecorder()
	s := newSession(t, a, &memStore{}, r, 2*time.Second)
	runSession(t, s)
	recv(t, r.connected, "Handler.Connected")
	if !p.nextStatus(t, a) {
		t.Fatal("status at connect says online=false, want true")
	}

	px.cut()
	if p.nextStatus(t, a) {
		t.Fatal("status after the cut says online=true, want the will's online=false")
	}
	if err := recv(t, r.disconnected, "Handler.Disconnected"); err == nil {
		t.Error("Disconnected(nil) after the cut, want the cause")
	}
	recv(t, r.connected, "Handler.Connected after the cut")
	if !p.nextStatus(t, a) {
		t.Error("status after reconnecting says online=false, want true")
	}
	if st := s.State(); st.Reconnects != 1 {
		t.Errorf("State().Reconnects = %d, want 1", st.Reconnects)
	}
}

// TestMosquittoGracefulStop stops the session: mosquitto receives
// {"online":false} and then DISCONNECT, and publishes no will.
func TestMosquittoGracefulStop(t *testing.T) {
	leaktest.Check(t)
	m := startMosquitto(t)
	p := newPlatform(t, m.addr)
	a := &fakeAuth{das: "mqtt://" + m.addr}
	r := newRecorder()
	s := newSession(t, a, &memStore{}, r, 2*time.Second)
	stop := runSession(t, s)
	recv(t, r.connected, "Handler.Connected")
	if !p.nextStatus(t, a) {
		t.Fatal("status at connect says online=false, want true")
	}

	stop()
	if err := recv(t, r.disconnected, "Handler.Disconnected"); err != nil {
		t.Errorf("Disconnected(%v) at stop, want Disconnected(nil)", err)
	}
	m.waitLog("Client " + testDevID + " disconnected.")
	log := m.logText()
	if !strings.Contains(log, "Received DISCONNECT from "+testDevID) {
		t.Errorf("mosquitto did not receive DISCONNECT from %s; log:\n%s", testDevID, log)
	}
	// A will would have been queued to the platform when mosquitto handled
	// the disconnect, so before this marker.
	marker := osap.Topic(testDevID, osap.DirUp, "marker")
	p.raw(t, marker, []byte("marker"))
	var offline int
	for {
		u := recv(t, p.up, "uplink")
		if u.topic == marker {
			break
		}
		if !strings.HasSuffix(u.topic, "/up/status") {
			continue
		}
		msg, _, err := a.open(u.topic, u.payload)
		if err != nil {
			t.Fatal(err)
		}
		var st osap.Status
		if err := msg.DecodeBody(&st); err != nil {
			t.Fatal(err)
		}
		if !st.Online {
			offline++
		}
	}
	if offline != 1 {
		t.Errorf("platform received %d {\"online\":false} messages at stop, want 1 (the session's, and no will)", offline)
	}
}

// TestMosquittoDownlinkQueued stops the gateway, lets the platform send a
// downlink meanwhile, and starts the gateway again from its stored
// credentials: it re-authenticates, and the persistent session hands the
// downlink, sealed under the earlier key, over, opened and decoded.
func TestMosquittoDownlinkQueued(t *testing.T) {
	leaktest.Check(t)
	m := startMosquitto(t)
	p := newPlatform(t, m.addr)
	a := &fakeAuth{das: "mqtt://" + m.addr, lifetime: time.Hour}
	st := &memStore{}
	r := newRecorder()
	stop := runSession(t, newSession(t, a, st, r, 2*time.Second))
	recv(t, r.connected, "Handler.Connected")
	p.publish(t, a.ciphers()[0], "request", osap.Header{ID: "1", Type: osap.TypeAttributeGet, Dev: "boiler-1"}, osap.AttributeGet{Resource: "main"})
	if got := recv(t, r.downlinks, "downlink while online"); got.ID != "1" || got.Type != osap.TypeAttributeGet {
		t.Errorf("downlink = %+v, want id 1, %s", got.Header, osap.TypeAttributeGet)
	}
	stop()

	want := osap.OperationInvoke{Resource: "ptz/1", Operation: "goto_preset", Input: map[string]any{"preset": "3"}}
	p.publish(t, a.ciphers()[0], "request", osap.Header{ID: "2", Type: osap.TypeOperationInvoke, Dev: "cam-1"}, want)

	r2 := newRecorder()
	runSession(t, newSession(t, a, st, r2, 2*time.Second))
	msg := recv(t, r2.downlinks, "downlink queued while offline")
	var got osap.OperationInvoke
	if err := msg.DecodeBody(&got); err != nil {
		t.Fatal(err)
	}
	if msg.ID != "2" || msg.Dev != "cam-1" || !cmp.Equal(want, got) {
		t.Errorf("queued downlink = %+v %+v, want id 2 for cam-1 with %+v", msg.Header, got, want)
	}
	// The restart re-authenticated (binding 2.1), and the downlink sealed
	// under the key of the last run was still opened.
	if calls := a.calls(); !cmp.Equal(calls, []bool{false, true}) {
		t.Errorf("Authenticate calls (stored credentials passed?) = %v, want [false true]: first authentication, then re-authentication at the restart", calls)
	}
}

// TestMosquittoKeyRefresh runs the key refresh flow against mosquitto,
// whose persistent sessions are the real thing: nothing queued across the
// reconnections is lost.
func TestMosquittoKeyRefresh(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for session key refreshes (seconds)")
	}
	leaktest.Check(t)
	m := startMosquitto(t)
	a := &fakeAuth{das: "mqtt://" + m.addr, lifetime: 2 * time.Second}
	if n := keyRefreshFlow(t, a, m.addr); strings.Count(m.logText(), "Received DISCONNECT from "+testDevID) < n {
		t.Errorf("mosquitto log has fewer DISCONNECTs from %s than the %d refreshes", testDevID, n)
	}
}
