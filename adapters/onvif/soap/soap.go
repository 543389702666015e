package soap

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Namespaces are the XML namespaces declared on every request envelope, by
// prefix. The request types of github.com/use-go/onvif name their elements
// with these prefixes ("tds:GetDeviceInformation", "onvif:Resolution").
var Namespaces = map[string]string{
	"s":     "http://www.w3.org/2003/05/soap-envelope",
	"tt":    "http://www.onvif.org/ver10/schema",
	"onvif": "http://www.onvif.org/ver10/schema",
	"tds":   "http://www.onvif.org/ver10/device/wsdl",
	"trt":   "http://www.onvif.org/ver10/media/wsdl",
	"tev":   "http://www.onvif.org/ver10/events/wsdl",
	"tptz":  "http://www.onvif.org/ver20/ptz/wsdl",
	"timg":  "http://www.onvif.org/ver20/imaging/wsdl",
	"wsnt":  "http://docs.oasis-open.org/wsn/b-2",
	"wsa":   "http://www.w3.org/2005/08/addressing",
	"xsd":   "http://www.w3.org/2001/XMLSchema",
}

// nsOrder fixes the order of the declarations so requests are stable.
var nsOrder = []string{"s", "tt", "onvif", "tds", "trt", "tev", "tptz", "timg", "wsnt", "wsa", "xsd"}

// ErrMalformed is returned (wrapped) when a response is not a SOAP
// envelope with a body.
var ErrMalformed = errors.New("malformed SOAP response")

// ErrUnauthorized is returned (wrapped) when the camera refuses the
// credentials with every authentication it offers.
var ErrUnauthorized = errors.New("not authorized")

// maxBody bounds what is read of any response.
const maxBody = 8 << 20

// Fault is a SOAP fault returned by the camera.
type Fault struct {
	// Code is the fault code (env:Sender, env:Receiver...).
	Code string
	// Subcode is the first subcode (ter:NotAuthorized, ter:InvalidArgVal),
	// followed by deeper ones separated by "/".
	Subcode string
	// Reason is the human-readable reason.
	Reason string
	// Detail is the text of the fault's Detail (SOAP 1.2 env:Detail, SOAP
	// 1.1 detail), whitespace collapsed: what the camera says went wrong,
	// often more than Reason.
	Detail string
}

// Error returns code, subcode chain, reason and detail.
func (f *Fault) Error() string {
	s := "SOAP fault " + f.Code
	if f.Subcode != "" {
		s += " (" + f.Subcode + ")"
	}
	if f.Reason != "" {
		s += ": " + f.Reason
	}
	if f.Detail != "" && f.Detail != f.Reason {
		s += ": detail: " + f.Detail
	}
	return s
}

// NotAuthorized reports whether the fault says the request was not
// authenticated, as cameras say it in several ways.
func (f *Fault) NotAuthorized() bool {
	all := strings.ToLower(f.Code + " " + f.Subcode + " " + f.Reason)
	return strings.Contains(all, "notauthorized") || strings.Contains(all, "not authorized") ||
		strings.Contains(all, "failedauthentication")
}

// StatusError is an HTTP error status without a SOAP fault in the body.
type StatusError struct {
	Status int
}

// Error names the status.
func (e *StatusError) Error() string {
	return fmt.Sprintf("HTTP status %d %s", e.Status, http.StatusText(e.Status))
}

// Auth is the authentication a Client uses.
type Auth int

// The authentications, in the order a client discovers them.
const (
	AuthNone Auth = iota
	AuthDigest
	AuthUsernameToken
	AuthBasic
)

// String names the authentication.
func (a Auth) String() string {
	switch a {
	case AuthDigest:
		return "digest"
	case AuthUsernameToken:
		return "usernametoken"
	case AuthBasic:
		return "basic"
	}
	return "none"
}

// Options configure a Client.
type Options struct {
	Username string
	Password string
	// Timeout bounds each call (0: 10s).
	Timeout time.Duration
	// InsecureTLS skips verification of the camera's certificate.
	InsecureTLS bool
	// RootCAs verify the camera's certificate when set.
	RootCAs *x509.CertPool
}

// Client calls SOAP operations on one camera. It is safe for concurrent
// use.
type Client struct {
	user, pass string
	timeout    time.Duration
	tr         *http.Transport
	hc         *http.Client

	mu     sync.Mutex
	auth   Auth
	dig    *challenge
	nc     uint32
	offset time.Duration
	now    func() time.Time
}

// New returns a client with its own HTTP transport. It opens nothing until
// the first call; Close releases its connections.
func New(o Options) *Client {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: o.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       60 * time.Second,
		TLSHandshakeTimeout:   o.Timeout,
		ResponseHeaderTimeout: o.Timeout,
		TLSClientConfig:       &tls.Config{InsecureSkipVerify: o.InsecureTLS, RootCAs: o.RootCAs}, //nolint:gosec // operator's choice, documented
	}
	return &Client{
		user: o.Username, pass: o.Password, timeout: o.Timeout,
		tr: tr, hc: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		now: time.Now,
	}
}

// Close releases the client's idle connections. Calls in flight end on
// their own contexts.
func (c *Client) Close() {
	c.tr.CloseIdleConnections()
}

// SetClockOffset records how far the camera's clock is ahead of ours
// (negative when behind); UsernameToken's created time uses it.
func (c *Client) SetClockOffset(d time.Duration) {
	c.mu.Lock()
	c.offset = d
	c.mu.Unlock()
}

// ClockOffset returns the offset set by SetClockOffset.
func (c *Client) ClockOffset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset
}

// Auth returns the authentication the client settled on.
func (c *Client) Auth() Auth {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.auth
}

// Call sends body (a request struct marshalled with encoding/xml, whose
// element name carries a prefix of Namespaces) to endpoint and decodes the
// first element of the response body into resp (nil to ignore it). The
// SOAP action is derived from the element's prefix and name. Its errors
// are those of Do.
func (c *Client) Call(ctx context.Context, endpoint string, body, resp any) error {
	return c.Do(ctx, Request{URL: endpoint, Body: body}, resp)
}

// Request is one SOAP call.
type Request struct {
	// URL is the service address.
	URL string
	// Body is marshalled into the envelope's body.
	Body any
	// Action overrides the action derived from the body's element name.
	Action string
	// Addressing adds WS-Addressing headers (Action, To, MessageID), as
	// event subscriptions need.
	Addressing bool
}

// Do performs req and decodes the response into resp, switching to the
// authentication the camera asks for. A camera that refuses the
// credentials gives an error wrapping ErrUnauthorized; a SOAP fault, a
// *Fault; another HTTP status, a *StatusError; a response that is not a
// SOAP envelope, one wrapping ErrMalformed; a network failure or timeout,
// the net/http error.
func (c *Client) Do(ctx context.Context, req Request, resp any) error {
	payload, err := xml.Marshal(req.Body)
	if err != nil {
		return fmt.Errorf("marshal request: %w", err)
	}
	action := req.Action
	if action == "" {
		action = actionOf(payload)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	switched := map[Auth]bool{}
	for attempt := 0; ; attempt++ {
		c.mu.Lock()
		auth := c.auth
		c.mu.Unlock()
		env := c.envelope(auth, req, action, payload)
		status, hdr, data, err := c.post(ctx, req.URL, action, env, auth)
		if err != nil {
			return err
		}
		if status == http.StatusUnauthorized {
			next, ok := c.onChallenge(hdr)
			if !ok && c.user != "" {
				// A 401 without a challenge: some cameras answer so when
				// they want WS-UsernameToken.
				next, ok = AuthUsernameToken, true
				c.mu.Lock()
				c.auth = AuthUsernameToken
				c.mu.Unlock()
			}
			if ok && !switched[next] && attempt < 3 {
				switched[next] = true
				continue
			}
			return fmt.Errorf("%w (HTTP 401, %s)", ErrUnauthorized, auth)
		}
		fault, derr := decode(data, resp)
		if fault != nil {
			if fault.NotAuthorized() && c.user != "" && auth != AuthUsernameToken && !switched[AuthUsernameToken] && attempt < 3 {
				switched[AuthUsernameToken] = true
				c.mu.Lock()
				c.auth = AuthUsernameToken
				c.mu.Unlock()
				continue
			}
			if fault.NotAuthorized() {
				return fmt.Errorf("%w: %w", ErrUnauthorized, fault)
			}
			return fault
		}
		if status != http.StatusOK {
			return &StatusError{Status: status}
		}
		return derr
	}
}

// onChallenge reads a 401's challenges and switches authentication; it
// reports the new one and whether there is any to try.
func (c *Client) onChallenge(h http.Header) (Auth, bool) {
	if c.user == "" {
		return AuthNone, false
	}
	ch, basic := parseChallenges(h.Values("WWW-Authenticate"))
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case ch != nil:
		c.auth, c.dig, c.nc = AuthDigest, ch, 0
		return AuthDigest, true
	case basic:
		c.auth = AuthBasic
		return AuthBasic, true
	}
	return AuthNone, false
}

func (c *Client) post(ctx context.Context, url, action string, body []byte, auth Auth) (int, http.Header, []byte, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("request to %q: %w", url, err)
	}
	hreq.Header.Set("Content-Type", `application/soap+xml; charset=utf-8; action="`+action+`"`)
	c.authorize(hreq, auth)
	res, err := c.hc.Do(hreq)
	if err != nil {
		return 0, nil, nil, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("read response: %w", err)
	}
	return res.StatusCode, res.Header, data, nil
}

// authorize adds an Authorization header for digest or basic.
func (c *Client) authorize(r *http.Request, auth Auth) {
	switch auth {
	case AuthDigest:
		c.mu.Lock()
		ch := c.dig
		c.nc++
		nc := c.nc
		c.mu.Unlock()
		if ch != nil {
			r.Header.Set("Authorization", ch.authorization(r.Method, r.URL.RequestURI(), c.user, c.pass, nc, randomHex(16)))
		}
	case AuthBasic:
		r.SetBasicAuth(c.user, c.pass)
	}
}

// Get fetches url (a snapshot) with the camera's HTTP authentication
// (digest or basic, from its challenge), reading at most limit bytes.
// Refused credentials give an error wrapping ErrUnauthorized; another
// HTTP status, a *StatusError; a response over limit, an error.
func (c *Client) Get(ctx context.Context, url string, limit int64) ([]byte, error) {
	body, err := c.Open(ctx, url, limit)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	data, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	return data, nil
}

// Open starts fetching url (a snapshot) as Get does and returns its body
// as a stream, so that a picture goes where it is kept without being held
// in memory whole. The client's timeout bounds the whole fetch, reading
// included; reading past limit bytes fails. The caller must Close the
// body. Errors are Get's.
func (c *Client) Open(ctx context.Context, url string, limit int64) (io.ReadCloser, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	var ch *challenge
	basic := false
	for attempt := 0; attempt < 2; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("request to %q: %w", url, err)
		}
		switch {
		case ch != nil:
			req.Header.Set("Authorization", ch.authorization(http.MethodGet, req.URL.RequestURI(), c.user, c.pass, 1, randomHex(16)))
		case basic:
			req.SetBasicAuth(c.user, c.pass)
		}
		res, err := c.hc.Do(req)
		if err != nil {
			cancel()
			return nil, err
		}
		if res.StatusCode == http.StatusOK {
			return &limitedBody{body: res.Body, left: limit, limit: limit, cancel: cancel}, nil
		}
		// Read a little of a refusal so that the connection can be
		// used again, never a large body.
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
		res.Body.Close()
		if res.StatusCode == http.StatusUnauthorized && attempt == 0 && c.user != "" {
			ch, basic = parseChallenges(res.Header.Values("WWW-Authenticate"))
			if ch != nil || basic {
				continue
			}
		}
		cancel()
		if res.StatusCode == http.StatusUnauthorized {
			return nil, fmt.Errorf("%w (HTTP 401)", ErrUnauthorized)
		}
		return nil, &StatusError{Status: res.StatusCode}
	}
	cancel()
	return nil, fmt.Errorf("%w (HTTP 401)", ErrUnauthorized)
}

// limitedBody is a response body that fails once more than limit bytes
// have come, and ends its request's context when closed.
type limitedBody struct {
	body        io.ReadCloser
	left, limit int64
	cancel      context.CancelFunc
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// At the limit: anything more is too much.
		var one [1]byte
		n, err := l.body.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("response larger than %d bytes", l.limit)
		}
		return 0, err
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.body.Read(p)
	if int64(n) > l.left {
		return 0, fmt.Errorf("response larger than %d bytes", l.limit)
	}
	l.left -= int64(n)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("read response: %w", err)
	}
	return n, err
}

func (l *limitedBody) Close() error {
	err := l.body.Close()
	l.cancel()
	return err
}

// envelope builds the request envelope.
func (c *Client) envelope(auth Auth, req Request, action string, payload []byte) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><s:Envelope`)
	for _, p := range nsOrder {
		fmt.Fprintf(&b, ` xmlns:%s="%s"`, p, Namespaces[p])
	}
	b.WriteString(`>`)
	if auth == AuthUsernameToken || req.Addressing {
		b.WriteString(`<s:Header>`)
		if req.Addressing {
			b.WriteString(`<wsa:Action s:mustUnderstand="1">`)
			xml.EscapeText(&b, []byte(action))
			b.WriteString(`</wsa:Action><wsa:MessageID>urn:uuid:` + uuid() + `</wsa:MessageID><wsa:To s:mustUnderstand="1">`)
			xml.EscapeText(&b, []byte(req.URL))
			b.WriteString(`</wsa:To>`)
		}
		if auth == AuthUsernameToken {
			c.mu.Lock()
			created := c.now().Add(c.offset)
			c.mu.Unlock()
			b.WriteString(usernameToken(c.user, c.pass, randomBytes(16), created))
		}
		b.WriteString(`</s:Header>`)
	}
	b.WriteString(`<s:Body>`)
	b.Write(payload)
	b.WriteString(`</s:Body></s:Envelope>`)
	return b.Bytes()
}

// actionOf derives the SOAP action from the first element of payload:
// "<tds:GetDeviceInformation>" gives the device namespace + "/GetDeviceInformation".
func actionOf(payload []byte) string {
	s := string(payload)
	if !strings.HasPrefix(s, "<") {
		return ""
	}
	end := strings.IndexAny(s, " >/")
	if end < 0 {
		return ""
	}
	name := s[1:end]
	prefix, local, ok := strings.Cut(name, ":")
	if !ok {
		return name
	}
	return Namespaces[prefix] + "/" + local
}
