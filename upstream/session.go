package upstream

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/osapgw/osapgw/internal/backoff"
	"github.com/osapgw/osapgw/osap"
)

// Phases reported in State.State.
const (
	PhaseIdle           = "idle"           // Run not called yet
	PhaseAuthenticating = "authenticating" // asking the LBS for credentials
	PhaseConnecting     = "connecting"     // CONNECT and SUBSCRIBE to the DAS
	PhaseConnected      = "connected"      // up: Publish works
	PhaseBackoff        = "backoff"        // waiting before the next attempt
	PhaseStopping       = "stopping"       // draining, {"online":false}, DISCONNECT
	PhaseStopped        = "stopped"        // Run has returned
)

// State is a snapshot of the session for /status and metrics.
type State struct {
	// State is one of the Phase constants.
	State string `json:"state"`
	// Since is when the session entered State.
	Since time.Time `json:"since"`
	// DevID is the gateway's identity, empty before first authentication.
	DevID string `json:"dev_id,omitempty"`
	// Reconnects counts connections established after the first one
	// (after a loss or a key refresh).
	Reconnects int64 `json:"reconnects"`
	// AuthFailures counts failed authentications with the LBS and
	// connections the DAS refused with CONNACK 4 or 5.
	AuthFailures int64 `json:"auth_failures"`
	// LastError is the last error the session met, empty if none.
	LastError string `json:"last_error,omitempty"`
}

// Session is the gateway's MQTT session with the device access service.
// Create it with New and drive it with Run; Publish, Connected, DevID and
// State are safe to call from any goroutine at any time.
type Session struct {
	cfg   Config
	auth  Authenticator
	store CredentialStore
	h     Handler
	log   *slog.Logger

	running atomic.Bool
	http    *http.Client // to the picture service; its idle connections closed when Run returns

	mu       sync.RWMutex
	link     *link      // the connection that is up, nil when offline
	keys     []keyEntry // ciphers that may open downlinks, newest first
	st       State
	connects int64
}

// keyEntry is a session key that downlinks may be sealed with.
type keyEntry struct {
	devID  string
	cipher *osap.Cipher
	until  time.Time // zero: until replaced
	// pictureURL is the picture service the LBS announced with this key.
	pictureURL string
}

// New returns a session that authenticates with auth, keeps credentials in
// creds and reports to h. It does no I/O until Run.
func New(cfg Config, auth Authenticator, creds CredentialStore, h Handler) *Session {
	cfg = cfg.withDefaults()
	s := &Session{
		cfg:   cfg,
		auth:  auth,
		store: creds,
		h:     h,
		log:   cfg.Logger.With("component", "upstream"),
		http:  newPictureClient(cfg),
	}
	s.st = State{State: PhaseIdle, Since: cfg.Now()}
	return s
}

// Connected reports whether a connection to the DAS is up and Publish
// would send.
func (s *Session) Connected() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.link != nil
}

// DevID returns the gateway's DevID, empty before first authentication.
func (s *Session) DevID() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.st.DevID
}

// State returns a snapshot of the session's state and counters.
func (s *Session) State() State {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.st
}

// Publish seals body under the current session key, with the topic
// osap/v1/{DevID}/up/{kind} as AAD, and sends it with qos (0 or 1).
//
// It returns ErrNotConnected at once when no connection is up, and an error
// when the message cannot be sealed; done is then never called. Otherwise
// it returns nil and done (if not nil) is called exactly once, on a
// goroutine of the session: with nil on PUBACK for QoS 1 or after the write
// for QoS 0, or with an error (wrapping ErrConnectionLost when the
// connection ended first). done must not block. Publish itself may block
// while the connection's write queue is full, at most 10 s.
func (s *Session) Publish(kind string, h osap.Header, body any, qos byte, done func(error)) error {
	if qos > 1 {
		return fmt.Errorf("upstream: publish %s on %q: QoS %d is not supported", h.Type, kind, qos)
	}
	s.mu.RLock()
	l := s.link
	s.mu.RUnlock()
	if l == nil {
		return ErrNotConnected
	}
	return l.publish(kind, h, body, qos, done, false)
}

// Run keeps the session up until ctx ends: it loads the stored credentials
// and authenticates with the LBS (re-authentication, 0x4, when a DevID is
// stored: binding 2.1). When the LBS cannot be reached (no connection, no
// answer in time, busy or internal error) and the stored session key's
// lifetime has not ended, it uses that key meanwhile and logs so; a
// verdict of the LBS (another status, a response that does not verify)
// retires it. It then connects to the DAS (client id = user name = DevID, a
// fresh login password on every CONNECT, clean session false, will
// {"online":false} on up/status with QoS 1, keep-alive = Config.Heartbeat),
// subscribes to down/#, publishes {"online":true} and calls
// Handler.Connected. It refreshes the session key at RefreshFraction of
// its lifetime and reconnects with it, re-authenticates when the DAS
// refuses the credentials, and reconnects after a loss with exponential
// backoff and jitter.
//
// When ctx ends it stops taking publishes, waits up to 2 s for
// unacknowledged QoS 1 messages, publishes {"online":false}, sends
// DISCONNECT (so the broker drops the will) and returns nil, within about
// 4 s. It returns an error only when it cannot start: the stored
// credentials cannot be read, or Run was already called.
func (s *Session) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("upstream: Run called more than once")
	}
	defer s.setPhase(PhaseStopped)
	defer s.http.CloseIdleConnections()

	var creds *Credentials
	stored, ok, err := s.store.LoadCredentials()
	if err != nil {
		return fmt.Errorf("upstream: load credentials: %w", err)
	}
	if ok {
		creds = &stored
		s.setDevID(stored.DevID)
		if usable(&stored, s.cfg.Now(), s.cfg.RefreshFraction) {
			s.addKey(stored)
		}
	}

	failures := 0 // consecutive failed attempts, for the backoff
	fresh := false
	// A start re-authenticates whenever the LBS answers (binding 2.1);
	// the session key kept from the last run is only the fallback.
	starting := creds != nil && creds.DevID != ""
	for ctx.Err() == nil {
		if starting || creds == nil || !usable(creds, s.cfg.Now(), s.cfg.RefreshFraction) {
			s.setPhase(PhaseAuthenticating)
			c, err := s.authenticate(ctx, creds)
			switch {
			case err == nil:
				if starting {
					s.log.Info("re-authenticated at start; the session key kept from the last run is not used", "dev_id", c.DevID)
				}
				creds, fresh = &c, true
			case ctx.Err() != nil:
				return nil
			case !lbsAnswered(err) && alive(creds, s.cfg.Now()):
				// The LBS cannot be reached and the key it issued last
				// has not expired: go to the DAS with it meanwhile.
				what := "LBS unreachable; using the session key it issued earlier until it can be reached"
				if starting {
					what = "LBS unreachable at start; using the session key kept from the last run"
				}
				s.log.Warn(what, "err", err, "key_expires", creds.SessionExpiry)
				s.addKey(*creds)
			default:
				if lbsAnswered(err) && creds != nil && creds.SessionKey != nil {
					// The LBS gave its verdict: the old key is not used.
					refused := *creds
					refused.SessionKey = nil
					creds = &refused
				}
				starting = false
				s.log.Warn("authentication failed", "err", err)
				if !s.pause(ctx, failures) {
					return nil
				}
				failures++
				continue
			}
			starting = false
		}

		s.setPhase(PhaseConnecting)
		l, err := s.connect(ctx, *creds)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			s.noteError(err)
			if errors.Is(err, ErrRefused) {
				s.countAuthFailure()
				// Make the next round re-authenticate: at once when these
				// credentials were not just issued, after a pause if they
				// were (the DAS and the LBS disagree; do not hammer them).
				refused := *creds
				refused.SessionKey = nil
				creds = &refused
				if !fresh {
					s.log.Info("DAS refused the session key; re-authenticating", "err", err)
					continue
				}
			}
			s.log.Warn("connection to the DAS failed", "err", err)
			fresh = false
			if !s.pause(ctx, failures) {
				break
			}
			failures++
			if failures%reauthAfter == 0 && creds.SessionKey != nil {
				// The DAS may be gone for good: ask the LBS, which may
				// send the gateway to another one.
				s.log.Info("DAS unreachable; asking the LBS again", "failures", failures)
				again := *creds
				again.SessionKey = nil
				creds = &again
			}
			continue
		}
		failures, fresh = 0, false

		switch s.serve(ctx, l, creds) {
		case endStop:
			return nil
		case endRefresh:
			continue
		case endLost:
			if !s.pause(ctx, 0) {
				return nil
			}
			failures = 1
		}
	}
	return nil
}

// lbsAnswered reports whether an authentication error carries the LBS's
// verdict on the device: a status other than busy (5) or internal error
// (7), or a response that did not verify. An LBS that cannot be dialled,
// drops the connection, does not answer in time, is busy or fails
// internally gave none: it "cannot be reached" in the sense of binding
// 2.1.
func lbsAnswered(err error) bool {
	var se *osap.StatusError
	if errors.As(err, &se) {
		return se.Status != osap.StatusBusy && se.Status != osap.StatusInternal
	}
	return errors.Is(err, osap.ErrMalformed) || errors.Is(err, osap.ErrDecrypt)
}

// alive reports whether c holds a session key whose lifetime has not
// ended at now, and a DAS to use it with.
func alive(c *Credentials, now time.Time) bool {
	if c == nil || c.DevID == "" || len(c.SessionKey) == 0 || c.DASAddress == "" {
		return false
	}
	return (c.SessionExpiry.IsZero() && c.Lifetime <= 0) || now.Before(c.SessionExpiry)
}

// endReason says why a connection ended.
type endReason int

const (
	endStop    endReason = iota // ctx ended; the session closed it
	endLost                     // the connection dropped
	endRefresh                  // the session closed it to use a new key
)

// serve watches the connection l until it drops, ctx ends or the session
// key is due for refresh. On refresh it updates *creds.
func (s *Session) serve(ctx context.Context, l *link, creds *Credentials) endReason {
	var refresh <-chan time.Time // nil: the key never needs refreshing
	var timer *time.Timer
	if at := refreshAt(creds, s.cfg.RefreshFraction); !at.IsZero() {
		timer = time.NewTimer(max(0, at.Sub(s.cfg.Now())))
		defer timer.Stop()
		refresh = timer.C
	}
	failures := 0
	for {
		select {
		case <-ctx.Done():
			s.setPhase(PhaseStopping)
			s.closeLink(l, closeStop)
			s.h.Disconnected(nil)
			return endStop
		case err := <-l.lost:
			err = fmt.Errorf("upstream: connection to %s lost: %w", l.das, err)
			s.noteError(err)
			s.log.Warn("connection to the DAS lost", "err", err)
			s.closeLink(l, closeLost)
			s.h.Disconnected(err)
			return endLost
		case <-refresh:
			c, err := s.authenticate(ctx, creds)
			if err != nil {
				if ctx.Err() != nil {
					continue
				}
				d := backoff.Delay(failures, s.cfg.BackoffMin, s.cfg.BackoffMax)
				failures++
				s.log.Warn("session key refresh failed; the connection stays up", "err", err, "retry_in_seconds", d.Seconds())
				timer.Reset(d)
				continue
			}
			*creds = c
			s.log.Info("session key refreshed; reconnecting with it", "dev_id", c.DevID, "lifetime_seconds", c.Lifetime.Seconds())
			s.closeLink(l, closeRefresh)
			s.h.Disconnected(ErrKeyRefresh)
			return endRefresh
		}
	}
}

// authenticate asks the LBS for credentials, checks and saves them and
// makes their session key current.
func (s *Session) authenticate(ctx context.Context, stored *Credentials) (Credentials, error) {
	var arg *Credentials
	if stored != nil && stored.DevID != "" {
		c := *stored
		arg = &c
	}
	c, err := s.auth.Authenticate(ctx, arg)
	if err == nil {
		err = check(c)
	}
	if err != nil {
		if ctx.Err() == nil {
			s.countAuthFailure()
		}
		err = fmt.Errorf("upstream: authenticate: %w", err)
		s.noteError(err)
		return Credentials{}, err
	}
	if c.SessionExpiry.IsZero() && c.Lifetime > 0 {
		c.SessionExpiry = s.cfg.Now().Add(c.Lifetime)
	}
	if err := s.store.SaveCredentials(c); err != nil {
		// The session goes on with the credentials in memory; what is lost
		// is only that the next start must authenticate again.
		s.log.Error("credentials not saved", "err", fmt.Errorf("upstream: save credentials: %w", err))
	}
	s.setDevID(c.DevID)
	s.addKey(c)
	s.log.Info("authenticated", "dev_id", c.DevID, "das", c.DASAddress, "pictures", c.PictureURL, "suite", c.Suite.String(), "lifetime_seconds", c.Lifetime.Seconds())
	return c, nil
}

// check refuses credentials the session cannot connect with.
func check(c Credentials) error {
	if c.DevID == "" {
		return errors.New("credentials have no DevID")
	}
	if _, err := osap.NewCipher(c.Suite, c.SessionKey); err != nil {
		return fmt.Errorf("credentials for %q: %w", c.DevID, err)
	}
	if _, err := parseDAS(c.DASAddress); err != nil {
		return fmt.Errorf("credentials for %q: %w", c.DevID, err)
	}
	return nil
}

// parseDAS parses a DAS address: mqtt://host:port or mqtts://host:port.
func parseDAS(addr string) (*url.URL, error) {
	u, err := url.Parse(addr)
	if err != nil {
		return nil, fmt.Errorf("DAS address %q: %w", addr, err)
	}
	if (u.Scheme != "mqtt" && u.Scheme != "mqtts") || u.Hostname() == "" || u.Port() == "" {
		return nil, fmt.Errorf("DAS address %q is not mqtt://host:port or mqtts://host:port", addr)
	}
	return u, nil
}

// pause waits the backoff delay after n failures; false if ctx ended.
func (s *Session) pause(ctx context.Context, n int) bool {
	d := backoff.Delay(n, s.cfg.BackoffMin, s.cfg.BackoffMax)
	s.setPhase(PhaseBackoff)
	s.log.Debug("waiting before the next attempt", "retry_in_seconds", d.Seconds())
	return backoff.Sleep(ctx, d)
}

// addKey makes c's session key the newest one that opens downlinks, and
// keeps the previous one until its expiry (the platform may still seal
// with it while the connection switches).
func (s *Session) addKey(c Credentials) {
	cipher, err := osap.NewCipher(c.Suite, c.SessionKey)
	if err != nil {
		return // check has refused such credentials already
	}
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := []keyEntry{{devID: c.DevID, cipher: cipher, until: c.SessionExpiry, pictureURL: c.PictureURL}}
	for _, k := range s.keys {
		if len(keys) == 2 {
			break
		}
		if k.devID == c.DevID && (k.until.IsZero() || now.Before(k.until)) {
			keys = append(keys, k)
		}
	}
	s.keys = keys
}

// openDownlink opens a downlink with the newest key that opens it.
func (s *Session) openDownlink(topic string, payload []byte) (osap.Message, error) {
	s.mu.RLock()
	keys := s.keys
	s.mu.RUnlock()
	err := error(osap.ErrDecrypt)
	for _, k := range keys {
		var m osap.Message
		if m, err = k.cipher.OpenMessage(topic, payload); err == nil || !errors.Is(err, osap.ErrDecrypt) {
			return m, err
		}
	}
	return osap.Message{}, err
}

func (s *Session) setPhase(p string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.State != p {
		s.st.State, s.st.Since = p, s.cfg.Now()
	}
}

func (s *Session) setDevID(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.DevID = id
}

func (s *Session) noteError(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.LastError = err.Error()
}

func (s *Session) countAuthFailure() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.AuthFailures++
}

// header builds the general payload of a message the session sends itself.
func (s *Session) header(typ string) osap.Header {
	var id [8]byte
	if _, err := io.ReadFull(s.cfg.Rand, id[:]); err != nil {
		_, _ = rand.Read(id[:]) // never fails
	}
	return osap.Header{ID: hex.EncodeToString(id[:]), TS: s.cfg.Now().UnixMilli(), Type: typ}
}
