package platform

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/osapgw/osapgw/osap"
)

// CONNACK refusals. mochi speaks MQTT 5 codes and maps them to 3.1.1 return
// codes: "malformed password" becomes 4 (bad user name or password) and "bad
// user name or password" becomes 5 (not authorized).
var (
	connackBadCredentials = packets.ErrMalformedPassword     // 3.1.1 return code 4
	connackNotAuthorized  = packets.ErrBadUsernameOrPassword // 3.1.1 return code 5
)

func capabilities() *mqtt.Capabilities {
	c := mqtt.NewDefaultServerCapabilities()
	c.MinimumProtocolVersion = 4 // MQTT 3.1.1, the binding's version
	c.MaximumQos = 1             // the binding uses QoS 0 and 1
	c.RetainAvailable = 0        // nothing is retained; a will asking for it is refused
	c.SharedSubAvailable = 0
	c.MaximumPacketSize = 2 * osap.MaxMessageSize
	return c
}

// hook is the DAS's mochi hook: login, topic ACL, uplink handling and
// connection tracking. The DAS's own publishes come from mochi's inline
// client and pass untouched.
type hook struct {
	mqtt.HookBase
	d   *DAS
	srv *mqtt.Server
}

func (h *hook) ID() string { return "osap-das" }

func (h *hook) Provides(b byte) bool {
	switch b {
	case mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnSessionEstablished,
		mqtt.OnACLCheck, mqtt.OnPublish, mqtt.OnDisconnect:
		return true
	}
	return false
}

// OnConnect checks the login (binding 2.4) and answers a refusal itself,
// so that it can say 4 (bad credentials) or 5 (not authorized); mochi's
// OnConnectAuthenticate path can only say 5.
func (h *hook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	c, code, reason := h.d.login(cl, pk)
	if c == nil {
		h.d.log.Warn("device refused", "devid", pk.Connect.ClientIdentifier, "remote", cl.Net.Remote,
			"reason", reason, "connack", v3Code(code))
		if err := h.srv.SendConnack(cl, code, false, nil); err != nil {
			return fmt.Errorf("refuse %q: %w", pk.Connect.ClientIdentifier, err)
		}
		return code
	}
	h.d.mu.Lock()
	for old := range h.d.logins { // logins whose CONNACK never went out
		if old.Closed() {
			delete(h.d.logins, old)
		}
	}
	h.d.logins[cl] = c
	h.d.mu.Unlock()
	h.d.log.Info("device authenticated", "devid", c.devID, "remote", c.remote, "suite", c.suite)
	return nil
}

func v3Code(c packets.Code) byte {
	if v3, ok := packets.V5CodesToV3[c]; ok {
		return v3.Code
	}
	return c.Code
}

// OnConnectAuthenticate accepts exactly the clients OnConnect accepted.
func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, _ packets.Packet) bool {
	h.d.mu.Lock()
	defer h.d.mu.Unlock()
	return h.d.logins[cl] != nil
}

// OnSessionEstablished makes the connection the device's current one once
// its CONNACK is out.
func (h *hook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	h.d.established(cl)
}

func (h *hook) OnDisconnect(cl *mqtt.Client, err error, _ bool) {
	if cl.Net.Inline {
		return
	}
	h.d.disconnected(cl, err)
}

// OnACLCheck lets a device publish only to osap/v1/{its DevID}/up/... and
// subscribe only to osap/v1/{its DevID}/down/....
func (h *hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if cl.Net.Inline {
		return true
	}
	dir, what := osap.DirDown, "subscribe"
	if write {
		dir, what = osap.DirUp, "publish"
	}
	prefix := "osap/v1/" + cl.ID + "/" + dir + "/"
	if len(topic) > len(prefix) && strings.HasPrefix(topic, prefix) {
		return true
	}
	h.d.log.Warn(what+" refused", "devid", cl.ID, "topic", topic)
	return false
}

// OnPublish opens and handles an uplink before mochi acknowledges it, so an
// event is on disk before its PUBACK goes out. Uplinks are not forwarded to
// subscribers (there are none: devices may only subscribe to down topics).
// When an event cannot be stored the device is disconnected without a
// PUBACK, so that it sends the event again.
func (h *hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	err := h.d.uplink(h.srv, cl, pk.TopicName, pk.Payload)
	if errors.Is(err, errNotCurrent) {
		h.d.log.Debug("uplink on a connection taken over; not acknowledged", "devid", cl.ID, "topic", pk.TopicName)
		return pk, packets.ErrRejectPacket
	}
	if err != nil {
		h.d.log.Error("uplink not stored; disconnecting the device so that it resends", "devid", cl.ID, "topic", pk.TopicName, "err", err)
		_ = h.srv.DisconnectClient(cl, packets.ErrUnspecifiedError)
		return pk, packets.ErrRejectPacket
	}
	return pk, packets.CodeSuccessIgnore
}

// login checks a CONNECT. It returns the accepted connection, or nil with
// the refusal code and the reason to log.
func (d *DAS) login(cl *mqtt.Client, pk packets.Packet) (*conn, packets.Code, string) {
	devID := pk.Connect.ClientIdentifier
	d.log.Info("device connecting", "devid", devID, "remote", cl.Net.Remote)
	if cl.Properties.ProtocolVersion != 4 {
		return nil, packets.ErrUnsupportedProtocolVersion, fmt.Sprintf("MQTT protocol version %d, want 4 (3.1.1)", cl.Properties.ProtocolVersion)
	}
	if devID == "" || strings.ContainsAny(devID, "/+#") {
		return nil, connackNotAuthorized, "client id is not a DevID"
	}
	if !pk.Connect.UsernameFlag || string(pk.Connect.Username) != devID {
		return nil, connackNotAuthorized, "user name is not the client id"
	}
	if pk.Connect.WillFlag && pk.Connect.WillTopic != osap.Topic(devID, osap.DirUp, osap.KindStatus) {
		return nil, connackNotAuthorized, fmt.Sprintf("will topic %q is not the device's status topic", pk.Connect.WillTopic)
	}
	if !pk.Connect.PasswordFlag {
		return nil, connackBadCredentials, "no password"
	}
	suite, ciphers, err := sessionCiphers(d.cfg.Keys, devID)
	if err != nil {
		return nil, connackNotAuthorized, err.Error()
	}
	type login struct {
		at    time.Time
		nonce [osap.NonceSize]byte
	}
	password := string(pk.Connect.Password)
	lg, open, err := openProof(ciphers, func(c *osap.Cipher) (login, error) {
		at, nonce, err := c.OpenLoginPassword(devID, password)
		return login{at, nonce}, err
	})
	if open < 0 {
		return nil, connackBadCredentials, "password does not open with the session key: " + err.Error()
	}
	ciphers[0], ciphers[open] = ciphers[open], ciphers[0]
	now := d.now()
	if err := checkProofTime(lg.at, now, osap.LoginMaxAge); err != nil {
		return nil, connackBadCredentials, "password " + err.Error()
	}
	if !d.freshNonce(devID, lg.nonce, lg.at, now) {
		return nil, connackBadCredentials, "replayed password"
	}
	return &conn{
		cl:      cl,
		devID:   devID,
		remote:  cl.Net.Remote,
		suite:   suite,
		ciphers: ciphers,
		done:    make(chan struct{}),
	}, packets.CodeSuccess, ""
}

// freshNonce records the nonce of an accepted password and reports whether
// it was new (see replayCache.fresh).
func (d *DAS) freshNonce(devID string, nonce [osap.NonceSize]byte, at, now time.Time) bool {
	return d.replay.fresh(devID, nonce, at, now)
}

// established makes cl its device's current connection.
func (d *DAS) established(cl *mqtt.Client) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.logins[cl]
	delete(d.logins, cl)
	if c == nil {
		return
	}
	dev := d.device(c.devID)
	if old := dev.conn; old != nil {
		close(old.done) // taken over; its OnDisconnect will find it is not current
	} else {
		d.online++
	}
	dev.conn = c
	dev.remote = c.remote
	dev.suite = c.suite
	dev.connectedAt = d.now()
	dev.lastSeen = dev.connectedAt
	dev.statusOnline = true
}

// device returns devID's entry, creating it. d.mu must be held.
func (d *DAS) device(devID string) *device {
	dev := d.devices[devID]
	if dev == nil {
		dev = &device{id: devID, attrs: attributes{}, subs: map[string]*subDevice{}}
		d.devices[devID] = dev
	}
	return dev
}

// current returns cl's connection if it is its device's current one.
func (d *DAS) current(cl *mqtt.Client) *conn {
	d.mu.Lock()
	defer d.mu.Unlock()
	if dev := d.devices[cl.ID]; dev != nil && dev.conn != nil && dev.conn.cl == cl {
		return dev.conn
	}
	return nil
}

func (d *DAS) disconnected(cl *mqtt.Client, cause error) {
	d.mu.Lock()
	delete(d.logins, cl)
	dev := d.devices[cl.ID]
	current := dev != nil && dev.conn != nil && dev.conn.cl == cl
	if current {
		close(dev.conn.done)
		dev.conn = nil
		dev.disconnectedAt = d.now()
		dev.statusOnline = false
		d.online--
	}
	d.mu.Unlock()
	if !current {
		return // refused at login, or taken over by a newer connection
	}
	if cause == nil || errors.Is(cause, packets.CodeDisconnect) {
		d.log.Info("device disconnected", "devid", cl.ID, "remote", cl.Net.Remote)
	} else {
		d.log.Info("device disconnected", "devid", cl.ID, "remote", cl.Net.Remote, "err", cause)
	}
}

// listener serves an already bound net.Listener to mochi, and owns every
// goroutine it starts: wait returns once the accept loop and every
// connection have ended.
type listener struct {
	id      string
	ln      net.Listener
	log     *slog.Logger
	timeout time.Duration // to finish TLS and send CONNECT

	wg     sync.WaitGroup
	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

var _ listeners.Listener = (*listener)(nil)

func (l *listener) ID() string       { return l.id }
func (l *listener) Address() string  { return l.ln.Addr().String() }
func (l *listener) Protocol() string { return "tcp" }

// Init is called by AddListener; the accept loop it accounts for starts in
// Serve, which mochi calls once in Server.Serve.
func (l *listener) Init(*slog.Logger) error {
	l.wg.Add(1)
	return nil
}

func (l *listener) Serve(establish listeners.EstablishFn) {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			c.Close()
			return
		}
		l.conns[c] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go func() {
			defer l.wg.Done()
			defer func() {
				l.mu.Lock()
				delete(l.conns, c)
				l.mu.Unlock()
				c.Close()
			}()
			// mochi sets no deadline until CONNECT is read; a silent peer
			// would hold the goroutine for ever.
			_ = c.SetDeadline(time.Now().Add(l.timeout))
			if err := establish(l.id, c); err != nil && !isQuietEnd(err) {
				l.log.Debug("connection ended", "remote", c.RemoteAddr().String(), "err", err)
			}
		}()
	}
}

func isQuietEnd(err error) bool {
	return errors.Is(err, packets.CodeDisconnect)
}

// Close asks mochi to disconnect the listener's clients, stops accepting,
// and closes every connection still open (even one that has not sent its
// CONNECT yet).
func (l *listener) Close(closeClients listeners.CloseFn) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()
	closeClients(l.id)
	l.ln.Close()
	l.mu.Lock()
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
}

func (l *listener) wait() { l.wg.Wait() }
