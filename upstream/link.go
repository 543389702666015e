package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/sync/errgroup"

	"github.com/osapgw/osapgw/osap"
)

// link is one MQTT connection to the DAS: one paho client, one session key.
// It is never reconnected; the session makes a new link instead (see
// doc.go for why).
type link struct {
	s      *Session
	devID  string
	das    string // host:port, for logs and errors
	cipher *osap.Cipher
	client mqtt.Client
	log    *slog.Logger

	// gone is closed by close, the link's own end (it outlives Run's ctx
	// to drain and say goodbye): the dispatcher returns, downlinks are no
	// longer queued and publishes still waiting fail.
	gone    chan struct{}
	hcancel context.CancelFunc // ends Handler.Connected's context

	lost chan error        // paho's connection-lost report (capacity 1)
	down chan mqtt.Message // downlinks waiting for Handler.Downlink

	connMu  sync.Mutex
	conn    net.Conn // the connection being set up
	dialing bool

	mu      sync.Mutex
	open    bool // Publish accepted
	dead    bool // g is being waited for: nothing may join it
	pending int  // publishes not yet completed
	drained chan struct{}
	g       errgroup.Group // publish watchers, the downlink dispatcher, Handler.Connected
}

// connect dials the DAS with creds, subscribes to down/# and makes the
// link current. The error wraps ErrRefused on CONNACK 4 or 5.
func (s *Session) connect(ctx context.Context, creds Credentials) (*link, error) {
	u, err := parseDAS(creds.DASAddress)
	if err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	cipher, err := osap.NewCipher(creds.Suite, creds.SessionKey)
	if err != nil {
		return nil, fmt.Errorf("upstream: session key for %q: %w", creds.DevID, err)
	}
	statusTopic := osap.Topic(creds.DevID, osap.DirUp, osap.KindStatus)
	will, err := cipher.SealMessage(s.cfg.Rand, statusTopic, s.header(osap.TypeStatus), osap.Status{Online: false})
	if err != nil {
		return nil, fmt.Errorf("upstream: will: %w", err)
	}

	l := &link{
		s:       s,
		devID:   creds.DevID,
		das:     u.Host,
		cipher:  cipher,
		log:     s.log.With("dev_id", creds.DevID, "das", u.Host),
		gone:    make(chan struct{}),
		hcancel: func() {},
		lost:    make(chan error, 1),
		down:    make(chan mqtt.Message, downlinkQueue),
		dialing: true,
	}

	opts := mqtt.NewClientOptions().
		AddBroker(u.String()).
		SetClientID(creds.DevID).
		SetCredentialsProvider(func() (string, string) { return l.login() }).
		SetCleanSession(false).
		SetProtocolVersion(4).
		SetKeepAlive(s.cfg.Heartbeat).
		SetPingTimeout(min(max(s.cfg.Heartbeat, 5*time.Second), 10*time.Second)).
		SetBinaryWill(statusTopic, will, 1, false).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetResumeSubs(false).
		SetConnectTimeout(connectTimeout).
		SetWriteTimeout(writeTimeout).
		SetOrderMatters(true).
		SetAutoAckDisabled(true).
		SetDefaultPublishHandler(l.onMessage). // queued downlinks may come before SUBACK
		SetConnectionLostHandler(l.onLost).
		SetCustomOpenConnectionFn(l.dialer(ctx, u.Scheme == "mqtts"))
	l.client = mqtt.NewClient(opts)

	l.mu.Lock()
	l.g.Go(func() error { l.dispatch(); return nil })
	l.mu.Unlock()

	abort := context.AfterFunc(ctx, l.abortDial)
	tok := l.client.Connect()
	<-tok.Done() // bounded by connectTimeout; ctx ending closes the connection
	abort()
	l.connMu.Lock()
	l.dialing, l.conn = false, nil
	l.connMu.Unlock()
	if err := tok.Error(); err != nil {
		l.close(closeLost)
		if rc := tok.(*mqtt.ConnectToken).ReturnCode(); rc == 4 || rc == 5 {
			return nil, fmt.Errorf("upstream: connect to %s as %q: %w", u.Host, creds.DevID, &refusedError{code: rc})
		}
		return nil, fmt.Errorf("upstream: connect to %s as %q: %w", u.Host, creds.DevID, err)
	}

	filter := osap.DownFilter(creds.DevID)
	st := l.client.Subscribe(filter, 1, l.onMessage)
	if err := l.wait(ctx, st, subackTimeout); err != nil {
		l.close(closeStop)
		return nil, fmt.Errorf("upstream: subscribe %q: %w", filter, err)
	}
	if rc := st.(*mqtt.SubscribeToken).Result()[filter]; rc > 1 {
		l.close(closeStop)
		return nil, fmt.Errorf("upstream: subscribe %q: refused with code %#x", filter, rc)
	}

	// The link is up: make it current, say so, and hand over.
	l.mu.Lock()
	l.open = true
	l.mu.Unlock()
	s.mu.Lock()
	s.link = l
	s.connects++
	s.st.Reconnects = max(0, s.connects-1)
	s.mu.Unlock()
	s.setPhase(PhaseConnected)
	l.log.Info("connected to the DAS", "heartbeat_seconds", s.cfg.Heartbeat.Seconds())

	if err := l.publish(osap.KindStatus, s.header(osap.TypeStatus), osap.Status{Online: true}, 1, func(err error) {
		if err != nil {
			l.log.Warn("status online not acknowledged", "err", err)
		}
	}, false); err != nil {
		l.log.Warn("status online not sent", "err", err)
	}
	hctx, hcancel := context.WithCancel(ctx)
	l.mu.Lock()
	l.hcancel = hcancel
	l.g.Go(func() error { s.h.Connected(hctx); return nil })
	l.mu.Unlock()
	return l, nil
}

// login returns the CONNECT user name and a fresh login password; paho
// calls it for every CONNECT it writes.
func (l *link) login() (string, string) {
	pw, err := l.cipher.LoginPassword(l.s.cfg.Rand, l.devID, l.s.cfg.Now())
	if err != nil {
		// The DAS refuses the empty password; the session re-authenticates.
		l.log.Error("login password", "err", err)
		return l.devID, ""
	}
	return l.devID, pw
}

// dialer opens the TCP (and TLS) connection for paho, bounded by ctx.
func (l *link) dialer(ctx context.Context, useTLS bool) mqtt.OpenConnectionFunc {
	return func(u *url.URL, _ mqtt.ClientOptions) (net.Conn, error) {
		dctx, cancel := context.WithTimeout(ctx, connectTimeout)
		defer cancel()
		d := net.Dialer{}
		conn, err := d.DialContext(dctx, "tcp", u.Host)
		if err != nil {
			return nil, err // names the address already
		}
		if useTLS {
			cfg := &tls.Config{}
			if l.s.cfg.TLS != nil {
				cfg = l.s.cfg.TLS.Clone()
			}
			if cfg.ServerName == "" {
				cfg.ServerName = u.Hostname()
			}
			cfg.MinVersion = max(cfg.MinVersion, tls.VersionTLS12)
			tc := tls.Client(conn, cfg)
			if err := tc.HandshakeContext(dctx); err != nil {
				_ = conn.Close()
				return nil, fmt.Errorf("TLS handshake with %s: %w", u.Host, err)
			}
			conn = tc
		}
		l.connMu.Lock()
		defer l.connMu.Unlock()
		if !l.dialing {
			_ = conn.Close()
			return nil, fmt.Errorf("dial %s: %w", u.Host, context.Canceled)
		}
		l.conn = conn
		return conn, nil
	}
}

// abortDial closes the connection being set up when Run's ctx ends.
func (l *link) abortDial() {
	l.connMu.Lock()
	defer l.connMu.Unlock()
	if l.dialing {
		l.dialing = false
		if l.conn != nil {
			_ = l.conn.Close()
		}
	}
}

// wait waits for tok, at most timeout and not past ctx.
func (l *link) wait(ctx context.Context, tok mqtt.Token, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("no answer in %s", timeout)
	}
}

// onLost is paho's connection-lost callback; it runs on a goroutine of
// paho's and never blocks.
func (l *link) onLost(_ mqtt.Client, err error) {
	select {
	case l.lost <- err:
	default:
	}
}

// onMessage is paho's message callback; it never blocks. A downlink that
// finds the queue full is left unacknowledged: the broker keeps it in the
// persistent session and sends it again on the next connection.
func (l *link) onMessage(_ mqtt.Client, m mqtt.Message) {
	if l.closed() {
		return
	}
	select {
	case l.down <- m:
	default:
		l.log.Warn("downlink queue full; message left for redelivery", "topic", m.Topic())
	}
}

// dispatch opens downlinks and hands them to Handler.Downlink one at a
// time, acknowledging each when it returns.
func (l *link) dispatch() {
	for {
		select {
		case <-l.gone:
			return
		case m := <-l.down:
			l.deliver(m)
			m.Ack()
		}
	}
}

func (l *link) deliver(m mqtt.Message) {
	topic := m.Topic()
	dev, dir, _, err := osap.ParseTopic(topic)
	if err == nil && (dev != l.devID || dir != osap.DirDown) {
		err = fmt.Errorf("topic %q is not one of %q's downlinks", topic, l.devID)
	}
	var msg osap.Message
	if err == nil {
		msg, err = l.s.openDownlink(topic, m.Payload())
	}
	var ue *osap.UnreadableError
	if errors.As(err, &ue) {
		l.s.h.Unreadable(ue.Header, ue.Err) // it answers and logs
		return
	}
	if err != nil {
		// Acknowledged all the same: it would not open the next time.
		l.log.Warn("downlink dropped", "topic", topic, "err", err)
		return
	}
	l.s.h.Downlink(msg)
}

// publish seals and sends one message. force lets the session's own final
// status through after the link stopped taking publishes.
func (l *link) publish(kind string, h osap.Header, body any, qos byte, done func(error), force bool) error {
	topic := osap.Topic(l.devID, osap.DirUp, kind)
	payload, err := l.cipher.SealMessage(l.s.cfg.Rand, topic, h, body)
	if err != nil {
		return fmt.Errorf("upstream: publish: %w", err)
	}
	// Join the link's group before sending, so that close waits for this
	// publish; paho's Publish may block (write queue full), so it runs
	// outside the lock.
	tokc := make(chan mqtt.Token, 1)
	l.mu.Lock()
	if l.dead || (!l.open && !force) {
		l.mu.Unlock()
		return ErrNotConnected
	}
	l.pending++
	l.g.Go(func() error {
		defer l.completed()
		err := l.await(<-tokc)
		if err != nil {
			err = fmt.Errorf("upstream: publish %s on %q: %w", h.Type, topic, err)
		}
		if done != nil {
			done(err)
		}
		return nil
	})
	l.mu.Unlock()
	tokc <- l.client.Publish(topic, qos, false, payload)
	return nil
}

// await waits for a publish token; if the link closes first the publish
// fails with ErrConnectionLost.
func (l *link) await(tok mqtt.Token) error {
	select {
	case <-tok.Done():
	case <-l.gone:
		select {
		case <-tok.Done():
		default:
			return ErrConnectionLost
		}
	}
	err := tok.Error()
	if err == nil {
		return nil
	}
	if l.closed() || errors.Is(err, mqtt.ErrNotConnected) {
		return fmt.Errorf("%w: %w", ErrConnectionLost, err)
	}
	return err
}

func (l *link) completed() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending--
	if l.pending == 0 && l.drained != nil {
		close(l.drained)
		l.drained = nil
	}
}

// closeMode says how a link is closed.
type closeMode int

const (
	closeLost    closeMode = iota // the connection is gone already
	closeRefresh                  // drain, then DISCONNECT
	closeStop                     // drain, {"online":false}, then DISCONNECT
)

// closeLink takes l out of service and closes it.
func (s *Session) closeLink(l *link, mode closeMode) {
	s.mu.Lock()
	if s.link == l {
		s.link = nil
	}
	s.mu.Unlock()
	l.close(mode)
}

// close stops l taking publishes, lets the in-flight ones finish (for a
// planned close), says goodbye, and waits for every goroutine of the link.
// Publishes still pending fail with ErrConnectionLost.
func (l *link) close(mode closeMode) {
	l.mu.Lock()
	l.open = false
	drained := make(chan struct{})
	if l.pending == 0 {
		close(drained)
	} else {
		l.drained = drained
	}
	l.mu.Unlock()
	l.hcancel()

	if mode != closeLost && l.client.IsConnectionOpen() {
		t := time.NewTimer(drainTimeout)
		select {
		case <-drained:
		case <-t.C:
			l.log.Warn("publishes still unacknowledged at disconnect", "wait_seconds", drainTimeout.Seconds())
		}
		t.Stop()
		if mode == closeStop {
			l.goodbye()
		}
		l.client.Disconnect(uint(quiesce.Milliseconds()))
		l.log.Info("disconnected from the DAS")
	}

	l.mu.Lock()
	if !l.dead {
		close(l.gone)
		l.dead = true
	}
	l.mu.Unlock()
	_ = l.g.Wait()
}

// closed reports whether close has ended the link.
func (l *link) closed() bool {
	select {
	case <-l.gone:
		return true
	default:
		return false
	}
}

// goodbye publishes {"online":false} and waits a little for its PUBACK.
func (l *link) goodbye() {
	acked := make(chan error, 1)
	err := l.publish(osap.KindStatus, l.s.header(osap.TypeStatus), osap.Status{Online: false}, 1, func(err error) { acked <- err }, true)
	if err == nil {
		t := time.NewTimer(statusTimeout)
		defer t.Stop()
		select {
		case err = <-acked:
		case <-t.C:
			err = fmt.Errorf("no PUBACK in %s", statusTimeout)
		}
	}
	if err != nil {
		l.log.Warn("status offline not acknowledged", "err", err)
	}
}
