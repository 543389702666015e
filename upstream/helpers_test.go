package upstream

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"golang.org/x/sync/errgroup"

	"github.com/osapgw/osapgw/osap"
)

const testDevID = "gw-test-1"

// waitFor is how long a test waits for something that should happen; a
// failure to happen in this time fails the test (it is not a speed check).
const waitFor = 20 * time.Second

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// fakeAuth is an Authenticator that issues a new random session key at
// every call, like the LBS would.
type fakeAuth struct {
	das      string
	dasSeq   []string // if set, the DAS of the n-th issue (the last one repeats)
	lifetime time.Duration
	pictures string // the picture service URL of 0xB; empty: none

	mu     sync.Mutex
	keys   [][]byte // every session key issued, oldest first
	stored []bool   // per call: whether credentials were passed in
	fail   int      // fail this many calls first
	// failErr is the error of a failing call: nil for one that does not
	// carry the LBS's verdict (as when it cannot be reached).
	failErr error
}

func (a *fakeAuth) Authenticate(ctx context.Context, stored *Credentials) (Credentials, error) {
	if err := ctx.Err(); err != nil {
		return Credentials{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stored = append(a.stored, stored != nil)
	if a.fail > 0 {
		a.fail--
		if a.failErr != nil {
			return Credentials{}, a.failErr
		}
		return Credentials{}, errors.New("fake LBS: connection refused")
	}
	key := make([]byte, osap.KeySize)
	_, _ = rand.Read(key)
	a.keys = append(a.keys, key)
	c := Credentials{
		DevID:      testDevID,
		MasterKey:  bytes.Repeat([]byte{0x4d}, osap.KeySize),
		Suite:      osap.SuiteAESGCM,
		SessionKey: key,
		Lifetime:   a.lifetime,
		DASAddress: a.das,
		PictureURL: a.pictures,
	}
	if len(a.dasSeq) > 0 {
		c.DASAddress = a.dasSeq[min(len(a.keys)-1, len(a.dasSeq)-1)]
	}
	if a.lifetime > 0 {
		c.SessionExpiry = time.Now().Add(a.lifetime)
	}
	return c, nil
}

func (a *fakeAuth) calls() []bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]bool(nil), a.stored...)
}

// ciphers returns a cipher for every key issued, newest first.
func (a *fakeAuth) ciphers() []*osap.Cipher {
	a.mu.Lock()
	defer a.mu.Unlock()
	var cs []*osap.Cipher
	for i := len(a.keys) - 1; i >= 0; i-- {
		c, err := osap.NewCipher(osap.SuiteAESGCM, a.keys[i])
		if err != nil {
			panic(err) // a 16-byte key always makes a cipher
		}
		cs = append(cs, c)
	}
	return cs
}

// open opens an uplink with whichever issued key seals it, and returns
// the message and the index of that key (0 = first issued).
func (a *fakeAuth) open(topic string, payload []byte) (osap.Message, int, error) {
	cs := a.ciphers()
	for i, c := range cs {
		m, err := c.OpenMessage(topic, payload)
		if err == nil {
			return m, len(cs) - 1 - i, nil
		}
	}
	return osap.Message{}, -1, fmt.Errorf("no issued key opens the message on %q", topic)
}

// memStore is a CredentialStore in memory.
type memStore struct {
	mu    sync.Mutex
	c     Credentials
	ok    bool
	saves int
}

func (m *memStore) LoadCredentials() (Credentials, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.c, m.ok, nil
}

func (m *memStore) SaveCredentials(c Credentials) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.c, m.ok = c, true
	m.saves++
	return nil
}

// recorder is a Handler that records what it is told.
type recorder struct {
	connected    chan struct{}
	disconnected chan error
	downlinks    chan osap.Message
	unreadable   chan *osap.UnreadableError
}

func newRecorder() *recorder {
	return &recorder{
		connected:    make(chan struct{}, 100),
		disconnected: make(chan error, 100),
		downlinks:    make(chan osap.Message, 1000),
		unreadable:   make(chan *osap.UnreadableError, 100),
	}
}

// Connected holds on until ctx ends, as the bridge's replay would: the
// session must cancel it at every disconnect and wait for it.
func (r *recorder) Connected(ctx context.Context) {
	r.connected <- struct{}{}
	<-ctx.Done()
}

func (r *recorder) Disconnected(err error)  { r.disconnected <- err }
func (r *recorder) Downlink(m osap.Message) { r.downlinks <- m }
func (r *recorder) Unreadable(h osap.Header, err error) {
	r.unreadable <- &osap.UnreadableError{Header: h, Err: err}
}

// recv waits for one value from ch.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitFor):
		t.Fatalf("no %s within %s", what, waitFor)
		panic("unreachable")
	}
}

// runSession starts s.Run on a goroutine and returns a stop function that
// cancels it and waits for Run to return (also registered as cleanup).
func runSession(t *testing.T, s *Session) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var g errgroup.Group
	g.Go(func() error { return s.Run(ctx) })
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := g.Wait(); err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func newSession(t *testing.T, a *fakeAuth, st *memStore, h Handler, heartbeat time.Duration) *Session {
	return New(Config{
		Heartbeat:  heartbeat,
		BackoffMin: 50 * time.Millisecond,
		BackoffMax: 500 * time.Millisecond,
		Logger:     testLogger(t),
	}, a, st, h)
}

// --- the in-process broker ---

// mochiBroker is an in-process mochi broker on 127.0.0.1 with a hook that
// records what happens and can refuse logins.
type mochiBroker struct {
	srv  *mochi.Server
	addr string
	hook *recordHook
}

func startMochi(t *testing.T, check func(user, password string) bool) *mochiBroker {
	t.Helper()
	srv := mochi.New(&mochi.Options{InlineClient: false, Logger: slog.New(slog.DiscardHandler)})
	h := &recordHook{check: check, disconnects: make(chan string, 100), wills: make(chan string, 100)}
	if err := srv.AddHook(h, nil); err != nil {
		t.Fatalf("AddHook: %v", err)
	}
	l := listeners.NewTCP(listeners.Config{ID: "t", Address: "127.0.0.1:0"})
	if err := srv.AddListener(l); err != nil {
		t.Fatalf("AddListener: %v", err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	b := &mochiBroker{srv: srv, addr: l.Address(), hook: h}
	t.Cleanup(func() { _ = srv.Close() })
	return b
}

func (b *mochiBroker) das() string { return "mqtt://" + b.addr }

// recordHook records logins, disconnects and wills, refuses the logins
// check turns down and allows everything else (mochi refuses all without an
// auth hook; its own hooks/auth needs a module this repo does not require).
type recordHook struct {
	mochi.HookBase
	check func(user, password string) bool

	mu          sync.Mutex
	logins      []string // "user:ok" or "user:refused"
	disconnects chan string
	wills       chan string
}

func (h *recordHook) ID() string { return "record" }

func (h *recordHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mochi.OnConnectAuthenticate, mochi.OnACLCheck, mochi.OnDisconnect, mochi.OnWillSent}, []byte{b})
}

func (h *recordHook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	if cl.ID != testDevID {
		return true // the platform's own client
	}
	user := string(pk.Connect.Username)
	ok := h.check == nil || h.check(user, string(pk.Connect.Password))
	h.mu.Lock()
	defer h.mu.Unlock()
	h.logins = append(h.logins, fmt.Sprintf("%s:%v", user, ok))
	return ok
}

// OnACLCheck lets every client reach every topic.
func (h *recordHook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool { return true }

func (h *recordHook) OnDisconnect(cl *mochi.Client, err error, expire bool) {
	h.disconnects <- cl.ID
}

func (h *recordHook) OnWillSent(cl *mochi.Client, pk packets.Packet) {
	h.wills <- cl.ID
}

func (h *recordHook) loginLog() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.logins...)
}

// --- the platform side: a second MQTT client ---

// uplink is one message the platform received.
type uplink struct {
	topic   string
	payload []byte
}

// platform is a paho client that plays the platform: it receives every
// uplink and publishes downlinks.
type platform struct {
	c  mqtt.Client
	up chan uplink
}

func newPlatform(t *testing.T, addr string) *platform {
	t.Helper()
	p := &platform{up: make(chan uplink, 10000)}
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).
		SetClientID("platform-" + strings.ReplaceAll(t.Name(), "/", "-")).
		SetCleanSession(false).
		SetProtocolVersion(4).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(100 * time.Millisecond).
		SetMaxReconnectInterval(200 * time.Millisecond).
		SetKeepAlive(5 * time.Second).
		// paho's Subscribe waits up to WriteTimeout (default 30 s) to hand
		// its packet over; the resubscribe below can meet a connection the
		// test is closing, and must give up well within leaktest's Settle.
		SetWriteTimeout(2 * time.Second).
		SetOnConnectHandler(func(c mqtt.Client) {
			// Subscribe again at each connect: harmless with a persistent
			// session, needed if the broker lost it.
			c.Subscribe("osap/v1/+/up/#", 1, nil)
		}).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			p.up <- uplink{topic: m.Topic(), payload: m.Payload()}
		})
	p.c = mqtt.NewClient(opts)
	t.Cleanup(func() { p.c.Disconnect(100) })
	tok := p.c.Connect()
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("platform connect to %s: %v", addr, tok.Error())
	}
	st := p.c.Subscribe("osap/v1/+/up/#", 1, nil)
	if !st.WaitTimeout(waitFor) || st.Error() != nil {
		t.Fatalf("platform subscribe: %v", st.Error())
	}
	return p
}

// publish sends a downlink sealed with c.
func (p *platform) publish(t *testing.T, c *osap.Cipher, kind string, h osap.Header, body any) {
	t.Helper()
	topic := osap.Topic(testDevID, osap.DirDown, kind)
	payload, err := c.SealMessage(rand.Reader, topic, h, body)
	if err != nil {
		t.Fatalf("SealMessage: %v", err)
	}
	p.raw(t, topic, payload)
}

func (p *platform) raw(t *testing.T, topic string, payload []byte) {
	t.Helper()
	tok := p.c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("platform publish on %q: %v", topic, tok.Error())
	}
}

// nextStatus waits for the next message on the status topic and returns
// its online flag.
func (p *platform) nextStatus(t *testing.T, a *fakeAuth) bool {
	t.Helper()
	for {
		u := recv(t, p.up, "status message")
		if !strings.HasSuffix(u.topic, "/up/status") {
			continue
		}
		m, _, err := a.open(u.topic, u.payload)
		if err != nil {
			t.Fatalf("open status: %v", err)
		}
		var st osap.Status
		if err := m.DecodeBody(&st); err != nil {
			t.Fatalf("status body: %v", err)
		}
		return st.Online
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// acceptsLogin is the platform's check of a login password: it must open
// with the newest session key the LBS issued, for the DevID it names, and
// be fresh.
func (a *fakeAuth) acceptsLogin(user, password string) bool {
	cs := a.ciphers()
	if len(cs) == 0 || user != testDevID {
		return false
	}
	at, _, err := cs[0].OpenLoginPassword(user, password)
	return err == nil && time.Since(at) < osap.LoginMaxAge
}
