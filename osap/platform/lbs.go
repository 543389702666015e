package platform

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/osapgw/osapgw/internal/backoff"
	"github.com/osapgw/osapgw/osap"
)

// Defaults of LBSConfig.
const (
	DefaultSessionLifetime = 24 * time.Hour
	DefaultReadTimeout     = 10 * time.Second
	DefaultMaxConns        = 1024
)

// AccessService is a DAS as the LBS sees it: where devices connect, and how
// many are registered there, for load balancing.
type AccessService interface {
	URL() string
	Registered() int
}

// LBSConfig configures the LBS server.
type LBSConfig struct {
	Registry        *Registry
	Suites          osap.SuiteSet   // supported; 0: osap.DefaultSuites
	SessionLifetime time.Duration   // 0: DefaultSessionLifetime
	DAS             []AccessService // devices go to the one with the fewest registered
	PictureURL      string          // picture service base URL announced in 0xB (tag 0x0D); empty: none
	Logger          *slog.Logger    // nil: slog.Default()
	ReadTimeout     time.Duration   // bounds reading each frame; 0: DefaultReadTimeout
	TLS             *tls.Config     // nil: plain TCP
	ShareKeyDomain  string          // empty: osap.DefaultShareKeyDomain
	MaxConns        int             // connections served at once, beyond them status 5; 0: DefaultMaxConns
	Rand            io.Reader       // nonces, IVs, session keys (not ECDH keys, see osap.ClientConfig.Rand); nil: crypto/rand
}

// LBS is the location/authentication server: it runs first authentication
// and re-authentication and hands out DAS addresses.
type LBS struct {
	cfg  LBSConfig
	log  *slog.Logger
	sem  chan struct{}
	rand io.Reader
}

// NewLBS returns an LBS with cfg's defaults filled in.
func NewLBS(cfg LBSConfig) *LBS {
	if cfg.Suites&osap.AllSuites == 0 {
		cfg.Suites = osap.DefaultSuites
	}
	cfg.Suites &= osap.AllSuites
	if cfg.SessionLifetime <= 0 {
		cfg.SessionLifetime = DefaultSessionLifetime
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	l := &LBS{cfg: cfg, log: cfg.Logger, sem: make(chan struct{}, cfg.MaxConns), rand: cfg.Rand}
	if l.log == nil {
		l.log = slog.Default()
	}
	if l.rand == nil {
		l.rand = rand.Reader
	}
	l.log = l.log.With("component", "lbs")
	return l
}

// Serve accepts connections on ln until ctx ends, then closes ln and every
// connection and waits for their goroutines. It returns nil when ctx ended,
// and the accept error otherwise.
func (l *LBS) Serve(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	l.log.Info("LBS listening", "addr", ln.Addr().String(), "suites", l.cfg.Suites.String())
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("LBS accept: %w", err)
			}
			// EMFILE and the like: wait a little rather than spin.
			l.log.Warn("accept failed", "err", err)
			if !backoff.Sleep(ctx, 50*time.Millisecond) {
				return nil
			}
			continue
		}
		wg.Go(func() { l.serveConn(ctx, nc) })
	}
}

// state is where a connection is in the exchange.
type state int

const (
	stStart   state = iota // expects 0x1 or 0x4
	stAuthed               // after 0x2: expects 0x7
	stApplied              // after 0x8: expects 0x9
	stSession              // after 0x9 or 0x6: expects 0xA
)

// lbsConn is the state of one connection.
type lbsConn struct {
	l      *LBS
	done   <-chan struct{} // closed when Serve is stopping
	nc     net.Conn
	r      *bufio.Reader
	log    *slog.Logger
	st     state
	seq    uint16
	kind   string // "first" or "reauth"
	suite  osap.Suite
	serial string
	devID  string
	master *osap.Cipher
	sess   *osap.Cipher
	// first authentication, until 0x9 confirms it
	masterKey  []byte
	sessionKey []byte
	nonce7     []byte
	info       osap.DeviceInfo
}

// errClose ends a connection without an answer (0x9 that does not verify).
var errClose = errors.New("closed without response")

func (l *LBS) serveConn(ctx context.Context, nc net.Conn) {
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	remote := nc.RemoteAddr().String()
	log := l.log.With("remote", remote)
	if l.cfg.TLS != nil {
		tc := tls.Server(nc, l.cfg.TLS)
		_ = tc.SetDeadline(time.Now().Add(l.cfg.ReadTimeout))
		if err := tc.HandshakeContext(ctx); err != nil {
			log.Warn("TLS handshake failed", "err", err)
			return
		}
		nc = tc
	}
	c := &lbsConn{l: l, done: ctx.Done(), nc: nc, r: bufio.NewReaderSize(nc, 4096), log: log}
	select {
	case l.sem <- struct{}{}:
		defer func() { <-l.sem }()
	default:
		c.busy()
		return
	}
	log.Debug("connection opened")
	for {
		if err := c.step(); err != nil {
			if !errors.Is(err, io.EOF) {
				c.log.Debug("connection closed", "err", err)
			}
			return
		}
	}
}

func (c *lbsConn) stopping() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// busyTimeout bounds how long a connection over the limit is kept to read
// its first frame, so that a flood cannot pile up goroutines.
const busyTimeout = time.Second

// busy answers the first frame with status 5.
func (c *lbsConn) busy() {
	_ = c.nc.SetDeadline(time.Now().Add(min(c.l.cfg.ReadTimeout, busyTimeout)))
	raw, err := osap.ReadFrame(c.r)
	t := osap.MsgAuthRsp
	var seq uint16
	if err == nil {
		if h, herr := osap.DecodeFixedHeader(raw); herr == nil {
			if rt, ok := h.Type.Response(); ok {
				t = rt
			}
		}
		if len(raw) >= 4 {
			if f, _ := osap.DecodeFrame(raw); f != nil {
				seq = f.Seq
			}
		}
	}
	se := &osap.StatusError{Status: osap.StatusBusy, RetryAfter: time.Second}
	c.log.Warn("authentication refused", "status", uint8(se.Status), "reason", "too many connections")
	if b, err := osap.EncodeError(t, seq, c.l.cfg.Suites, se); err == nil {
		_, _ = c.nc.Write(b)
	}
}

// expected returns the response type of what the state waits for.
func (c *lbsConn) expected() osap.MsgType {
	switch c.st {
	case stAuthed:
		return osap.MsgApplyDevIDRsp
	case stSession:
		return osap.MsgAccessRsp
	}
	return osap.MsgAuthRsp
}

// fail answers err with its status on the response type rt, logs it, and
// returns an error that closes the connection.
func (c *lbsConn) fail(rt osap.MsgType, seq uint16, err error) error {
	st := osap.StatusOf(err)
	se := &osap.StatusError{Status: st}
	var got *osap.StatusError
	if errors.As(err, &got) {
		se = got
	}
	group := c.l.cfg.Suites
	if st != osap.StatusUnsupported && c.suite != 0 {
		group = osap.SuiteSet(c.suite)
	}
	c.log.Warn("authentication refused", "kind", c.kind, "serial", c.serial, "devid", c.devID, "status", uint8(st), "reason", err.Error())
	b, eerr := osap.EncodeError(rt, seq, group, se)
	if eerr == nil {
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.l.cfg.ReadTimeout))
		_, _ = c.nc.Write(b)
	}
	return fmt.Errorf("answered status %d: %w", st, err)
}

func (c *lbsConn) send(b []byte) error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.l.cfg.ReadTimeout))
	if _, err := c.nc.Write(b); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// step reads and answers one frame.
func (c *lbsConn) step() error {
	_ = c.nc.SetReadDeadline(time.Now().Add(c.l.cfg.ReadTimeout))
	raw, err := osap.ReadFrame(c.r)
	if err != nil {
		var ne net.Error
		switch {
		case errors.Is(err, io.EOF) && c.st == stStart:
			return err
		case c.stopping():
			return err
		case errors.As(err, &ne) && ne.Timeout():
			c.log.Warn("read deadline passed, closing", "kind", c.kind, "serial", c.serial, "devid", c.devID, "state", int(c.st))
			return err
		case errors.Is(err, osap.ErrMalformed), errors.Is(err, osap.ErrFrameTooLarge):
			return c.fail(c.expected(), 0, err)
		}
		c.log.Warn("connection lost", "kind", c.kind, "serial", c.serial, "devid", c.devID, "err", err)
		return err
	}
	f, err := osap.DecodeFrame(raw)
	rt := c.expected()
	if f != nil {
		if t, ok := f.Type.Response(); ok {
			rt = t
		}
	}
	if err != nil {
		var seq uint16
		if f != nil {
			seq = f.Seq
		}
		return c.fail(rt, seq, err)
	}
	if f.Seq != c.seq+1 {
		return c.fail(rt, f.Seq, fmt.Errorf("%w: sequence %d, want %d", osap.ErrMalformed, f.Seq, c.seq+1))
	}
	c.seq = f.Seq
	switch {
	case c.st == stStart && f.Type == osap.MsgAuthReq:
		return c.authReq(f, raw)
	case c.st == stStart && f.Type == osap.MsgRefreshReq:
		return c.refreshReq(f)
	case c.st == stAuthed && f.Type == osap.MsgApplyDevIDReq:
		return c.applyReq(f)
	case c.st == stApplied && f.Type == osap.MsgApplyDevIDCfm:
		return c.applyCfm(f)
	case c.st == stSession && f.Type == osap.MsgAccessReq:
		return c.accessReq(f)
	}
	if c.st == stApplied {
		c.log.Warn("authentication refused", "kind", c.kind, "serial", c.serial, "devid", c.devID, "reason", fmt.Sprintf("got %v, want 0x9", f.Type))
		return errClose
	}
	return c.fail(rt, f.Seq, fmt.Errorf("%w: unexpected %v", osap.ErrMalformed, f.Type))
}

// checkGroup checks that a frame after negotiation carries its suite.
func (c *lbsConn) checkGroup(f *osap.Frame) error {
	if f.Group != osap.SuiteSet(c.suite) {
		return fmt.Errorf("%w: protocol group %v, negotiated %v", osap.ErrMalformed, f.Group, c.suite)
	}
	return nil
}

func (c *lbsConn) nonce() ([]byte, error) {
	n := make([]byte, osap.NonceSize)
	if _, err := io.ReadFull(c.l.rand, n); err != nil {
		return nil, fmt.Errorf("read nonce: %w", err)
	}
	return n, nil
}

func (c *lbsConn) authReq(f *osap.Frame, raw []byte) error {
	c.kind = "first"
	shared := f.Group & c.l.cfg.Suites
	suite, ok := shared.Best()
	if !ok {
		return c.fail(osap.MsgAuthRsp, f.Seq, &osap.StatusError{Status: osap.StatusUnsupported, Message: fmt.Sprintf("no shared cipher suite: offered %v, supported %v", f.Group, c.l.cfg.Suites)})
	}
	c.suite = suite
	req, err := osap.DecodeAuthReq(f)
	if err != nil {
		return c.fail(osap.MsgAuthRsp, f.Seq, err)
	}
	c.serial = req.Serial
	share, ok := c.l.cfg.Registry.shareKey(req.Serial, c.l.cfg.ShareKeyDomain)
	if !ok {
		return c.fail(osap.MsgAuthRsp, f.Seq, &osap.StatusError{Status: osap.StatusUnknown})
	}
	if err := osap.VerifyAuthReqMAC(raw, share); err != nil {
		return c.fail(osap.MsgAuthRsp, f.Seq, err)
	}
	devPub, err := osap.ParsePublicKey(req.PublicKey)
	if err != nil {
		return c.fail(osap.MsgAuthRsp, f.Seq, fmt.Errorf("%w: %w", osap.ErrMalformed, err))
	}
	priv, err := osap.GenerateKey(c.l.rand)
	if err != nil {
		return c.fail(osap.MsgAuthRsp, f.Seq, err)
	}
	nonceLBS, err := c.nonce()
	if err != nil {
		return c.fail(osap.MsgAuthRsp, f.Seq, err)
	}
	if c.masterKey, err = osap.MasterKey(priv, devPub, req.Nonce, nonceLBS); err != nil {
		return c.fail(osap.MsgAuthRsp, f.Seq, fmt.Errorf("%w: %w", osap.ErrMalformed, err))
	}
	shareC, err := osap.NewCipher(suite, share)
	if err != nil {
		return c.fail(osap.MsgAuthRsp, f.Seq, err)
	}
	if c.master, err = osap.NewCipher(suite, c.masterKey); err != nil {
		return c.fail(osap.MsgAuthRsp, f.Seq, err)
	}
	b, err := osap.AuthRsp{PublicKey: priv.PublicKey().Bytes(), Nonce: nonceLBS}.Encode(f.Seq, shareC, c.l.rand)
	if err != nil {
		return c.fail(osap.MsgAuthRsp, f.Seq, err)
	}
	if suite.Legacy() {
		c.log.Warn("legacy cipher suite negotiated", "suite", suite.String())
	}
	c.st = stAuthed
	return c.send(b)
}

func (c *lbsConn) applyReq(f *osap.Frame) error {
	rt := osap.MsgApplyDevIDRsp
	if err := c.checkGroup(f); err != nil {
		return c.fail(rt, f.Seq, err)
	}
	req, err := osap.DecodeApplyReq(f, c.master)
	if err != nil {
		return c.fail(rt, f.Seq, err)
	}
	if req.Serial != c.serial {
		return c.fail(rt, f.Seq, fmt.Errorf("%w: serial %q in 0x7, %q in 0x1", osap.ErrMalformed, req.Serial, c.serial))
	}
	if c.devID, err = c.l.cfg.Registry.devIDFor(c.serial); err != nil {
		return c.fail(rt, f.Seq, &osap.StatusError{Status: osap.StatusUnknown})
	}
	c.sessionKey = make([]byte, osap.KeySize)
	if _, err := io.ReadFull(c.l.rand, c.sessionKey); err != nil {
		return c.fail(rt, f.Seq, err)
	}
	if c.sess, err = osap.NewCipher(c.suite, c.sessionKey); err != nil {
		return c.fail(rt, f.Seq, err)
	}
	c.nonce7, c.info = req.Nonce, req.Info
	b, err := osap.ApplyRsp{DevID: c.devID, SessionKey: c.sessionKey, Lifetime: c.l.cfg.SessionLifetime, Nonce: req.Nonce}.Encode(f.Seq, c.master, c.l.rand)
	if err != nil {
		return c.fail(rt, f.Seq, err)
	}
	c.st = stApplied
	return c.send(b)
}

// applyCfm verifies 0x9; it has no response, and one that does not verify
// closes the connection.
func (c *lbsConn) applyCfm(f *osap.Frame) error {
	refuse := func(reason string) error {
		c.log.Warn("authentication refused", "kind", c.kind, "serial", c.serial, "devid", c.devID, "status", uint8(osap.StatusAuthFailed), "reason", "0x9 does not verify: "+reason)
		return errClose
	}
	if err := c.checkGroup(f); err != nil {
		return refuse(err.Error())
	}
	cfm, err := osap.DecodeApplyCfm(f, c.sess)
	if err != nil {
		return refuse(err.Error())
	}
	if cfm.DevID != c.devID || string(cfm.Nonce) != string(c.nonce7) {
		return refuse("DevID or nonce differ from 0x7/0x8")
	}
	if err := c.l.cfg.Registry.confirm(c.serial, c.devID, c.masterKey, c.suite, c.info, c.sessionKey, c.l.cfg.SessionLifetime); err != nil {
		c.log.Error("cannot record first authentication", "serial", c.serial, "devid", c.devID, "err", err)
		return errClose
	}
	c.st = stSession
	return nil
}

func (c *lbsConn) refreshReq(f *osap.Frame) error {
	c.kind = "reauth"
	rt := osap.MsgRefreshRsp
	devID, err := osap.RequiredID(f, osap.TagDevID)
	if err != nil {
		return c.fail(rt, f.Seq, err)
	}
	c.devID = devID
	suite := osap.Suite(f.Group)
	if !suite.Valid() || !c.l.cfg.Suites.Has(suite) {
		return c.fail(rt, f.Seq, &osap.StatusError{Status: osap.StatusUnsupported, Message: fmt.Sprintf("suite %v not supported (%v)", f.Group, c.l.cfg.Suites)})
	}
	c.suite = suite // error responses from here on carry it
	masterKey, stored, ok := c.l.cfg.Registry.master(devID)
	if !ok {
		return c.fail(rt, f.Seq, &osap.StatusError{Status: osap.StatusNoMasterKey})
	}
	c.serial, _ = c.l.cfg.Registry.DeviceSerial(devID)
	if suite != stored {
		c.suite = 0 // status 1 names the LBS's set
		return c.fail(rt, f.Seq, &osap.StatusError{Status: osap.StatusUnsupported, Message: fmt.Sprintf("suite %v is not the one negotiated (%v)", suite, stored)})
	}
	if c.master, err = osap.NewCipher(suite, masterKey); err != nil {
		return c.fail(rt, f.Seq, err)
	}
	req, err := osap.DecodeRefreshReq(f, c.master)
	if err != nil {
		return c.fail(rt, f.Seq, err)
	}
	session := make([]byte, osap.KeySize)
	if _, err := io.ReadFull(c.l.rand, session); err != nil {
		return c.fail(rt, f.Seq, err)
	}
	if c.sess, err = osap.NewCipher(suite, session); err != nil {
		return c.fail(rt, f.Seq, err)
	}
	if err := c.l.cfg.Registry.refresh(devID, session, c.l.cfg.SessionLifetime); err != nil {
		return c.fail(rt, f.Seq, err)
	}
	b, err := osap.RefreshRsp{SessionKey: session, Lifetime: c.l.cfg.SessionLifetime, Nonce: req.Nonce}.Encode(f.Seq, c.master, c.l.rand)
	if err != nil {
		return c.fail(rt, f.Seq, err)
	}
	c.st = stSession
	return c.send(b)
}

// pickDAS returns the DAS with the fewest registered devices (the first of
// those tied).
func (l *LBS) pickDAS() (string, bool) {
	best, n := -1, 0
	for i, d := range l.cfg.DAS {
		if r := d.Registered(); best < 0 || r < n {
			best, n = i, r
		}
	}
	if best < 0 {
		return "", false
	}
	return l.cfg.DAS[best].URL(), true
}

func (c *lbsConn) accessReq(f *osap.Frame) error {
	rt := osap.MsgAccessRsp
	if err := c.checkGroup(f); err != nil {
		return c.fail(rt, f.Seq, err)
	}
	req, err := osap.DecodeAccessReq(f, c.sess)
	if err != nil {
		return c.fail(rt, f.Seq, err)
	}
	if req.DevID != c.devID {
		return c.fail(rt, f.Seq, fmt.Errorf("%w: DevID %q in 0xA, %q authenticated", osap.ErrMalformed, req.DevID, c.devID))
	}
	das, ok := c.l.pickDAS()
	if !ok {
		return c.fail(rt, f.Seq, &osap.StatusError{Status: osap.StatusInternal, Message: "no access service"})
	}
	b, err := osap.AccessRsp{DASAddress: das, Nonce: req.Nonce, PictureURL: c.l.cfg.PictureURL}.Encode(f.Seq, c.sess, c.l.rand)
	if err != nil {
		return c.fail(rt, f.Seq, err)
	}
	if err := c.send(b); err != nil {
		return err
	}
	c.log.Info("device authenticated", "kind", c.kind, "serial", c.serial, "devid", c.devID, "status", 0, "suite", c.suite.String(), "das", das)
	return io.EOF // done: close
}
