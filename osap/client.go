package osap

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"
)

// DefaultTimeout bounds one connection to the LBS (dial, TLS handshake and
// exchange) when the context has no deadline and ClientConfig.Timeout is 0.
const DefaultTimeout = 30 * time.Second

// Credentials are what authentication yields and what the gateway stores
// (file mode 0600) to re-authenticate on later starts.
type Credentials struct {
	DevID         string
	MasterKey     []byte
	Suite         Suite // negotiated at first authentication
	SessionKey    []byte
	Lifetime      time.Duration // of the session key, as the LBS issued it
	SessionExpiry time.Time
	DASAddress    string
	// PictureURL is the picture service's base URL from 0xB (tag 0x0D,
	// binding 2.7); empty when the platform offers none.
	PictureURL string
}

// LogValue keeps the keys out of logs: only the DevID, suite, lifetime,
// expiry and DAS address are shown.
func (cr Credentials) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("devid", cr.DevID), slog.String("suite", cr.Suite.String()),
		slog.Float64("lifetime_s", cr.Lifetime.Seconds()), slog.Time("session_expiry", cr.SessionExpiry),
		slog.String("das", cr.DASAddress), slog.String("pictures", cr.PictureURL))
}

// String describes cr without its keys, so that %v cannot leak them.
func (cr Credentials) String() string {
	return fmt.Sprintf("devid=%s suite=%v lifetime=%v expiry=%s das=%s pictures=%s", cr.DevID, cr.Suite, cr.Lifetime, cr.SessionExpiry.Format(time.RFC3339), cr.DASAddress, cr.PictureURL)
}

// canReauth reports whether cr holds what re-authentication needs.
func (cr *Credentials) canReauth() bool {
	return cr != nil && cr.DevID != "" && len(cr.MasterKey) == KeySize && cr.Suite.Valid()
}

// ClientConfig configures the gateway side of the LBS exchange.
type ClientConfig struct {
	Addr             string      // host:port of the LBS
	TLS              *tls.Config // nil: plain TCP
	Serial           string
	VerificationCode string
	ShareKeyDomain   string   // empty: DefaultShareKeyDomain
	Suites           SuiteSet // offered; 0: DefaultSuites (AllSuites with AllowLegacy)
	AllowLegacy      bool     // offer the legacy suites (bits 2 and 1) in Suites
	DeviceInfo       DeviceInfo
	// Rand gives nonces and IVs (nil: crypto/rand). Since Go 1.26,
	// crypto/ecdh draws P-384 keys from the system source whatever it is
	// given, so a fixed Rand does not fix the ECDH keys.
	Rand   io.Reader
	Dial   func(ctx context.Context, network, addr string) (net.Conn, error) // nil: net.Dialer
	Logger *slog.Logger                                                      // nil: slog.Default()
	// Timeout bounds each connection to the LBS (dial, TLS handshake and
	// the exchange) when the context has no deadline (0: DefaultTimeout).
	Timeout time.Duration
}

// Client authenticates the gateway with the LBS. It is safe for concurrent
// use; each Authenticate uses its own connections.
type Client struct {
	cfg      ClientConfig
	shareKey []byte
	offer    SuiteSet
	rand     io.Reader
	log      *slog.Logger
}

// NewClient checks cfg and derives the share key. It fails when the
// serial, the verification code or the address is missing, or when no
// suite is left to offer (legacy suites are dropped unless AllowLegacy).
func NewClient(cfg ClientConfig) (*Client, error) {
	switch {
	case cfg.Addr == "":
		return nil, errors.New("osap client: no LBS address")
	case cfg.Serial == "" || len(cfg.Serial) > MaxIDLen:
		return nil, fmt.Errorf("osap client: serial %q is not 1..%d bytes", cfg.Serial, MaxIDLen)
	case cfg.VerificationCode == "":
		return nil, errors.New("osap client: no verification code")
	}
	c := &Client{cfg: cfg, rand: cfg.Rand, log: cfg.Logger}
	if c.rand == nil {
		c.rand = rand.Reader
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.log = c.log.With("component", "lbs-client", "lbs", cfg.Addr)
	c.offer = cfg.Suites & AllSuites
	if c.offer == 0 {
		c.offer = DefaultSuites
		if cfg.AllowLegacy {
			c.offer = AllSuites
		}
	}
	if !cfg.AllowLegacy {
		c.offer &^= SuiteSet(SuiteAESCBC | SuiteAESECB)
	}
	if c.offer == 0 {
		return nil, fmt.Errorf("osap client: suites %v: %w: legacy suites need allow_legacy_ciphers", cfg.Suites, ErrUnsupportedSuite)
	}
	if cfg.DeviceInfo.Kind == "" {
		c.cfg.DeviceInfo.Kind = "gateway"
	}
	c.shareKey = ShareKey(cfg.VerificationCode, cfg.Serial, cfg.ShareKeyDomain)
	return c, nil
}

// Offer returns the suites the client offers.
func (c *Client) Offer() SuiteSet { return c.offer }

// Authenticate runs re-authentication (0x4/0x6, 0xA/0xB) when stored holds
// a DevID, a master key and a suite, and first authentication (0x1/0x2,
// 0x7/0x8/0x9, 0xA/0xB) otherwise, or when the LBS answers 0x4 with status
// 4 (master key unknown), 1 (stored suite no longer supported) or 2 (it
// cannot open 0x4 with the master key it holds). It
// returns the new credentials. LBS refusals are *StatusError (status 5
// carries RetryAfter); a failed negotiation wraps ErrUnsupportedSuite and
// names both sets. Every connection it opens is closed before it returns.
func (c *Client) Authenticate(ctx context.Context, stored *Credentials) (Credentials, error) {
	if stored.canReauth() {
		cr, err := c.reauth(ctx, stored)
		var se *StatusError
		if err == nil || !errors.As(err, &se) || !reauthFallback(se.Status) {
			return cr, err
		}
		c.log.Info("re-authentication refused, running first authentication", "devid", stored.DevID, "status", uint8(se.Status), "reason", se.Status.String())
	}
	return c.firstAuth(ctx)
}

// reauthFallback reports whether status st in answer to 0x4 sends the
// client back to first authentication: 4 (master key unknown), 1 (stored
// suite no longer supported) and 2 (the LBS cannot open 0x4: the master
// key it holds is not ours, e.g. after a restore from backup). First
// authentication still needs the verification code, so this opens nothing.
func reauthFallback(st StatusCode) bool {
	return st == StatusNoMasterKey || st == StatusUnsupported || st == StatusAuthFailed
}

// conn is one LBS connection with its sequence numbers.
type conn struct {
	net.Conn
	r    *bufio.Reader
	seq  uint16
	stop func() bool // undoes the AfterFunc on dial's ctx
	// deadline is dial's ctx's: a timeout at or after it is ctx's, even
	// when the conn's timer fires before ctx's own.
	deadline    time.Time
	hasDeadline bool
}

func (c *Client) dial(ctx context.Context) (*conn, error) {
	dial := c.cfg.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	ctxDeadline, hasDeadline := ctx.Deadline()
	deadline := ctxDeadline
	if !hasDeadline {
		timeout := c.cfg.Timeout
		if timeout <= 0 {
			timeout = DefaultTimeout
		}
		deadline = time.Now().Add(timeout)
	}
	// The deadline bounds the dial and the TLS handshake too: an LBS (or a
	// middlebox) that accepts and then stays silent must not hold the
	// gateway for ever.
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	nc, err := dial(dctx, "tcp", c.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("dial LBS %s: %w", c.cfg.Addr, err)
	}
	if c.cfg.TLS != nil {
		cfg := c.cfg.TLS
		if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
			// As tls.Dial does: verify the name we dialled.
			cfg = cfg.Clone()
			if host, _, err := net.SplitHostPort(c.cfg.Addr); err == nil {
				cfg.ServerName = host
			}
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(dctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("TLS with LBS %s: %w", c.cfg.Addr, err)
		}
		nc = tc
	}
	if err := nc.SetDeadline(deadline); err != nil {
		nc.Close()
		return nil, fmt.Errorf("LBS %s: set deadline: %w", c.cfg.Addr, err)
	}
	// Cancelling ctx unblocks any read or write at once.
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	return &conn{Conn: nc, r: bufio.NewReaderSize(nc, 4096), stop: stop, deadline: ctxDeadline, hasDeadline: hasDeadline}, nil
}

func (lc *conn) Close() error {
	lc.stop()
	return lc.Conn.Close()
}

// ioErr names the failed read or write; ctx is the one lc was dialled
// with, so that its end is reported rather than the deadline it forced.
func (lc *conn) ioErr(ctx context.Context, what string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%s: %w", what, cerr)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && lc.hasDeadline && !time.Now().Before(lc.deadline) {
		return fmt.Errorf("%s: %w", what, context.DeadlineExceeded)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// next returns the sequence number of the next request.
func (lc *conn) next() uint16 { lc.seq++; return lc.seq }

// send writes the request b of type t; ctx is the one lc was dialled with.
func (lc *conn) send(ctx context.Context, t MsgType, b []byte) error {
	if _, err := lc.Write(b); err != nil {
		return lc.ioErr(ctx, fmt.Sprintf("send %v", t), err)
	}
	return nil
}

// recv reads the response of type t to request seq. A frame that is not of
// this binding is still returned when it carries a non-zero status, so
// that status 1 with the LBS's own type and group can be read. ctx is the
// one lc was dialled with.
func (lc *conn) recv(ctx context.Context, t MsgType, seq uint16) (*Frame, error) {
	b, err := ReadFrame(lc.r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("LBS closed the connection: %w", err)
		}
		return nil, lc.ioErr(ctx, fmt.Sprintf("receive %v", t), err)
	}
	f, derr := DecodeFrame(b)
	if f == nil {
		return nil, fmt.Errorf("receive %v: %w", t, derr)
	}
	if f.Type != t {
		return nil, fmt.Errorf("receive %v: %w: got %v", t, ErrMalformed, f.Type)
	}
	if f.Seq != seq {
		return nil, fmt.Errorf("receive %v: %w: sequence %d, want %d", t, ErrMalformed, f.Seq, seq)
	}
	if err := ResponseError(f); err != nil {
		return f, fmt.Errorf("%v: %w", t, err)
	}
	if derr != nil {
		return nil, fmt.Errorf("receive %v: %w", t, derr)
	}
	return f, nil
}

func (c *Client) nonce() ([]byte, error) {
	n := make([]byte, NonceSize)
	if _, err := io.ReadFull(c.rand, n); err != nil {
		return nil, fmt.Errorf("read nonce: %w", err)
	}
	return n, nil
}

func (c *Client) warnLegacy(offer SuiteSet) {
	if offer&SuiteSet(SuiteAESCBC|SuiteAESECB) != 0 {
		c.log.Warn("offering legacy cipher suites without integrity protection", "offer", offer.String())
	}
}

// firstAuth runs first authentication, renegotiating once on status 1.
func (c *Client) firstAuth(ctx context.Context) (Credentials, error) {
	cr, lbsSet, err := c.firstAuthOnce(ctx, c.offer)
	if lbsSet == nil {
		return cr, err
	}
	retry := c.offer & *lbsSet
	if retry == 0 || retry == c.offer {
		return Credentials{}, fmt.Errorf("first authentication: %w: gateway offers %v, LBS supports %v", ErrUnsupportedSuite, c.offer, *lbsSet)
	}
	c.log.Info("LBS refused the offered suites, retrying with the intersection", "offer", c.offer.String(), "lbs", lbsSet.String(), "retry", retry.String())
	cr, lbsSet2, err := c.firstAuthOnce(ctx, retry)
	if lbsSet2 != nil {
		return Credentials{}, fmt.Errorf("first authentication: %w: gateway offered %v, then %v; LBS supports %v", ErrUnsupportedSuite, c.offer, retry, *lbsSet2)
	}
	return cr, err
}

// firstAuthOnce runs first authentication on one connection with offer.
// On status 1 to 0x1 it returns the LBS's set (nil otherwise).
func (c *Client) firstAuthOnce(ctx context.Context, offer SuiteSet) (Credentials, *SuiteSet, error) {
	c.warnLegacy(offer)
	start := time.Now()
	lc, err := c.dial(ctx)
	if err != nil {
		return Credentials{}, nil, err
	}
	defer lc.Close()

	// 0x1 / 0x2: ECDH under the share key.
	priv, err := GenerateKey(c.rand)
	if err != nil {
		return Credentials{}, nil, err
	}
	nonceDev, err := c.nonce()
	if err != nil {
		return Credentials{}, nil, err
	}
	seq := lc.next()
	b, err := AuthReq{Serial: c.cfg.Serial, PublicKey: priv.PublicKey().Bytes(), Nonce: nonceDev}.Encode(seq, offer, c.shareKey)
	if err != nil {
		return Credentials{}, nil, err
	}
	if err := lc.send(ctx, MsgAuthReq, b); err != nil {
		return Credentials{}, nil, err
	}
	f, err := lc.recv(ctx, MsgAuthRsp, seq)
	if err != nil {
		var se *StatusError
		if f != nil && errors.As(err, &se) && se.Status == StatusUnsupported {
			if f.Protocol != ProtocolType {
				return Credentials{}, nil, fmt.Errorf("first authentication: %w: LBS speaks protocol type %d, not %d", ErrUnsupported, f.Protocol, ProtocolType)
			}
			set := f.Group
			return Credentials{}, &set, err
		}
		return Credentials{}, nil, fmt.Errorf("first authentication: %w", err)
	}
	suite := Suite(f.Group)
	if !suite.Valid() || !offer.Has(suite) {
		return Credentials{}, nil, fmt.Errorf("first authentication: %w: LBS chose %v, not one of the offered %v", ErrUnsupportedSuite, f.Group, offer)
	}
	shareC, err := NewCipher(suite, c.shareKey)
	if err != nil {
		return Credentials{}, nil, err
	}
	rsp, err := DecodeAuthRsp(f, shareC)
	if err != nil {
		return Credentials{}, nil, fmt.Errorf("first authentication: %w", err)
	}
	lbsPub, err := ParsePublicKey(rsp.PublicKey)
	if err != nil {
		return Credentials{}, nil, fmt.Errorf("first authentication: %w: %w", ErrMalformed, err)
	}
	master, err := MasterKey(priv, lbsPub, nonceDev, rsp.Nonce)
	if err != nil {
		return Credentials{}, nil, fmt.Errorf("first authentication: %w", err)
	}
	masterC, err := NewCipher(suite, master)
	if err != nil {
		return Credentials{}, nil, err
	}

	// 0x7 / 0x8: DevID and session key under the master key.
	nonce7, err := c.nonce()
	if err != nil {
		return Credentials{}, nil, err
	}
	seq = lc.next()
	if b, err = (ApplyReq{Serial: c.cfg.Serial, Info: c.cfg.DeviceInfo, Nonce: nonce7}).Encode(seq, masterC, c.rand); err != nil {
		return Credentials{}, nil, err
	}
	if err := lc.send(ctx, MsgApplyDevIDReq, b); err != nil {
		return Credentials{}, nil, err
	}
	if f, err = lc.recv(ctx, MsgApplyDevIDRsp, seq); err != nil {
		return Credentials{}, nil, fmt.Errorf("first authentication: %w", err)
	}
	apply, err := DecodeApplyRsp(f, masterC)
	if err != nil {
		return Credentials{}, nil, fmt.Errorf("first authentication: %w", err)
	}
	if err := checkGroup(f, suite); err != nil {
		return Credentials{}, nil, err
	}
	if !bytes.Equal(apply.Nonce, nonce7) {
		return Credentials{}, nil, fmt.Errorf("first authentication: %w: 0x8 does not echo the nonce of 0x7", ErrDecrypt)
	}
	cr := Credentials{DevID: apply.DevID, MasterKey: master, Suite: suite, SessionKey: clone(apply.SessionKey), Lifetime: apply.Lifetime, SessionExpiry: time.Now().Add(apply.Lifetime)}
	sessC, err := NewCipher(suite, cr.SessionKey)
	if err != nil {
		return Credentials{}, nil, err
	}

	// 0x9: confirm with the session key; no response.
	seq = lc.next()
	if b, err = (ApplyCfm{DevID: cr.DevID, Nonce: nonce7}).Encode(seq, sessC, c.rand); err != nil {
		return Credentials{}, nil, err
	}
	if err := lc.send(ctx, MsgApplyDevIDCfm, b); err != nil {
		return Credentials{}, nil, err
	}

	if cr.DASAddress, cr.PictureURL, err = c.access(ctx, lc, sessC, cr.DevID); err != nil {
		return Credentials{}, nil, fmt.Errorf("first authentication: %w", err)
	}
	c.log.Info("first authentication done", "devid", cr.DevID, "suite", suite.String(), "lifetime_s", cr.Lifetime.Seconds(), "das", cr.DASAddress, "duration_s", time.Since(start).Seconds())
	return cr, nil, nil
}

func checkGroup(f *Frame, s Suite) error {
	if f.Group != SuiteSet(s) {
		return fmt.Errorf("receive %v: %w: protocol group %v, negotiated %v", f.Type, ErrMalformed, f.Group, s)
	}
	return nil
}

// access runs 0xA / 0xB on lc and returns the DAS address and the
// picture service URL (empty when none is offered).
func (c *Client) access(ctx context.Context, lc *conn, sessC *Cipher, devID string) (das, pictures string, err error) {
	nonce, err := c.nonce()
	if err != nil {
		return "", "", err
	}
	seq := lc.next()
	b, err := AccessReq{DevID: devID, Nonce: nonce}.Encode(seq, sessC, c.rand)
	if err != nil {
		return "", "", err
	}
	if err := lc.send(ctx, MsgAccessReq, b); err != nil {
		return "", "", err
	}
	f, err := lc.recv(ctx, MsgAccessRsp, seq)
	if err != nil {
		return "", "", err
	}
	rsp, err := DecodeAccessRsp(f, sessC)
	if err != nil {
		return "", "", err
	}
	if err := checkGroup(f, sessC.Suite()); err != nil {
		return "", "", err
	}
	if !bytes.Equal(rsp.Nonce, nonce) {
		return "", "", fmt.Errorf("%w: 0xB does not echo the nonce of 0xA", ErrDecrypt)
	}
	return rsp.DASAddress, rsp.PictureURL, nil
}

// reauth runs re-authentication on one new connection.
func (c *Client) reauth(ctx context.Context, stored *Credentials) (Credentials, error) {
	if !c.offer.Has(stored.Suite) {
		// The stored suite is no longer allowed here: as if the LBS refused it.
		return Credentials{}, &StatusError{Status: StatusUnsupported, Message: fmt.Sprintf("stored suite %v not in the offer %v", stored.Suite, c.offer)}
	}
	c.warnLegacy(SuiteSet(stored.Suite))
	start := time.Now()
	masterC, err := NewCipher(stored.Suite, stored.MasterKey)
	if err != nil {
		return Credentials{}, err
	}
	lc, err := c.dial(ctx)
	if err != nil {
		return Credentials{}, err
	}
	defer lc.Close()
	nonce, err := c.nonce()
	if err != nil {
		return Credentials{}, err
	}
	seq := lc.next()
	b, err := RefreshReq{DevID: stored.DevID, Nonce: nonce}.Encode(seq, masterC, c.rand)
	if err != nil {
		return Credentials{}, err
	}
	if err := lc.send(ctx, MsgRefreshReq, b); err != nil {
		return Credentials{}, err
	}
	f, err := lc.recv(ctx, MsgRefreshRsp, seq)
	if err != nil {
		return Credentials{}, fmt.Errorf("re-authentication: %w", err)
	}
	rsp, err := DecodeRefreshRsp(f, masterC)
	if err != nil {
		return Credentials{}, fmt.Errorf("re-authentication: %w", err)
	}
	if err := checkGroup(f, stored.Suite); err != nil {
		return Credentials{}, err
	}
	if !bytes.Equal(rsp.Nonce, nonce) {
		return Credentials{}, fmt.Errorf("re-authentication: %w: 0x6 does not echo the nonce of 0x4", ErrDecrypt)
	}
	cr := Credentials{DevID: stored.DevID, MasterKey: clone(stored.MasterKey), Suite: stored.Suite, SessionKey: clone(rsp.SessionKey), Lifetime: rsp.Lifetime, SessionExpiry: time.Now().Add(rsp.Lifetime)}
	sessC, err := NewCipher(cr.Suite, cr.SessionKey)
	if err != nil {
		return Credentials{}, err
	}
	if cr.DASAddress, cr.PictureURL, err = c.access(ctx, lc, sessC, cr.DevID); err != nil {
		return Credentials{}, fmt.Errorf("re-authentication: %w", err)
	}
	c.log.Info("re-authentication done", "devid", cr.DevID, "suite", cr.Suite.String(), "lifetime_s", cr.Lifetime.Seconds(), "das", cr.DASAddress, "duration_s", time.Since(start).Seconds())
	return cr, nil
}
