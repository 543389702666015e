// Package onvif simulates ONVIF cameras for the demo, tests and benchmarks:
// the device, media, PTZ and event services over HTTP, HTTP Digest or
// WS-UsernameToken authentication, a PTZ head that moves over time,
// presets, PullPoint events (a motion alarm, once or twice as Hikvision
// reports it, a digital input, line crossing and intrusion rules), a JPEG
// snapshot, a WS-Discovery responder, and switches that inject faults.
// Its media service is Media1 (ver10), Media2 (ver20) or both (Config.Media).
//
// A Camera is an http.Handler; Serve runs it on a listener until its
// context ends. Listeners are the caller's: tests and devsim bind them to
// 127.0.0.1.
package onvif

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/osapgw/osapgw/adapters/onvif/soap"
)

// Auth is the authentication a simulated camera demands.
type Auth string

// The authentications a camera can demand.
const (
	AuthNone          Auth = "none"
	AuthDigest        Auth = "digest"
	AuthDigestSHA256  Auth = "digest-sha256"
	AuthUsernameToken Auth = "usernametoken"
)

// Config describes one simulated camera.
type Config struct {
	// Name is reported as the model name and discovery scope.
	Name string
	// Serial is the serial number (default "SIM-0001").
	Serial   string
	User     string
	Password string
	// Auth is what the camera demands (default digest).
	Auth Auth
	// Profiles is the number of media profiles (default 2).
	Profiles int
	// NoPTZ leaves the PTZ service out.
	NoPTZ bool
	// ClockSkew is how far the camera's clock is ahead of the host's.
	ClockSkew time.Duration
	// SubscriptionTTL is how long a subscription lives unless renewed
	// (default 60s).
	SubscriptionTTL time.Duration
	// MotionEvery toggles the motion alarm at this period (0: only on
	// SetMotion).
	MotionEvery time.Duration
	// AdvertiseHost replaces the host:port in the service addresses the
	// camera reports (to test host rewriting); empty reports its own.
	AdvertiseHost string
	// Media is the media services the camera offers (default both).
	Media Media
	// DoubleMotion reports motion the way Hikvision cameras do: under
	// tns1:VideoSource/MotionAlarm (Source "Source" = the video source)
	// and under tns1:RuleEngine/CellMotionDetector/Motion (Source
	// VideoSourceConfigurationToken and Rule "MyMotionDetectorRule",
	// Data IsMotion), each change twice.
	DoubleMotion bool
	// SnapshotSize pads each snapshot with JPEG comment segments to at
	// least this many bytes (0: the plain image, a few kilobytes).
	SnapshotSize int
	// UniqueSnapshots makes every snapshot served differ from the ones
	// before (a counter in a comment segment), as a live camera's do.
	// Off, every snapshot is Snapshot().
	UniqueSnapshots bool
	// OnSnapshot, if set, is called with the SHA-256 of every snapshot
	// served, before it is written.
	OnSnapshot func(sum [32]byte)
}

// Media selects the media services a camera offers: Media1 (ver10, the
// Profile S service) and Media2 (ver20, Profile T's, where profile 1's
// encoder is H.265).
type Media string

// The media service choices.
const (
	MediaBoth Media = "both"
	Media1    Media = "1"
	Media2    Media = "2"
)

// Faults are the failures a camera can be switched to.
type Faults struct {
	// SOAPFault answers every authenticated call with a receiver fault.
	SOAPFault bool
	// Unauthorized answers every request with 401.
	Unauthorized bool
	// Slow delays every answer by this much.
	Slow time.Duration
	// Malformed answers every call with a body that is not XML.
	Malformed bool
	// DropSubscriptions forgets every subscription, so PullMessages and
	// Renew fail with a fault until the client subscribes again.
	DropSubscriptions bool
}

// Camera is one simulated camera.
type Camera struct {
	cfg     Config
	jpeg    []byte
	padding []byte // comment segments padding snapshots to SnapshotSize (guarded by mu)
	snapSeq int    // snapshots served, with UniqueSnapshots (guarded by mu)

	mu       sync.Mutex
	faults   Faults
	base     string // http://host:port, set by Serve or SetBase
	ptz      ptzState
	presets  []preset
	motion   bool
	input    bool
	subs     map[string]*subscription
	nextSub  int
	nonces   map[string]bool
	frame    [8]int // frame rate per profile
	bitrate  [8]int
	rebooted int
	counts   map[string]int
	pending  chan struct{}
}

type ptzState struct {
	pan, tilt, zoom    float64
	vpan, vtilt, vzoom float64
	since              time.Time
	until              time.Time // a continuous move stops here (zero: never)
}

type preset struct {
	token, name     string
	pan, tilt, zoom float64
}

type subscription struct {
	id          string
	queue       []notification
	termination time.Time
	wake        chan struct{}
}

type notification struct {
	topic  string
	source [][2]string
	data   [][2]string
	op     string // Initialized, Changed
	at     time.Time
}

// New returns a camera; it serves nothing until Serve.
func New(cfg Config) *Camera {
	if cfg.Name == "" {
		cfg.Name = "SimCam"
	}
	if cfg.Serial == "" {
		cfg.Serial = "SIM-0001"
	}
	if cfg.Auth == "" {
		cfg.Auth = AuthDigest
	}
	if cfg.SubscriptionTTL <= 0 {
		cfg.SubscriptionTTL = 60 * time.Second
	}
	if cfg.Media == "" {
		cfg.Media = MediaBoth
	}
	if cfg.Profiles <= 0 {
		cfg.Profiles = 2
	}
	if cfg.Profiles > 8 {
		cfg.Profiles = 8
	}
	c := &Camera{cfg: cfg, subs: map[string]*subscription{}, nonces: map[string]bool{}, counts: map[string]int{}}
	c.ptz.since = time.Now()
	for i := range c.frame {
		c.frame[i] = 25
		c.bitrate[i] = 4096 / (i + 1)
	}
	c.presets = []preset{{token: "1", name: "Home"}}
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for y := 0; y < 48; y++ {
		for x := 0; x < 64; x++ {
			img.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 5), 128, 255})
		}
	}
	var b bytes.Buffer
	_ = jpeg.Encode(&b, img, &jpeg.Options{Quality: 80}) // encoding to memory cannot fail
	c.jpeg = b.Bytes()
	return c
}

// Snapshot returns the JPEG the camera serves.
func (c *Camera) Snapshot() []byte { return c.jpeg }

// serveSnapshot writes a snapshot: the image, with a counter comment when
// the camera's snapshots are unique and comment padding up to
// SnapshotSize. The padding is one shared buffer, so a camera serving
// large snapshots costs the simulator little memory.
func (c *Camera) serveSnapshot(w http.ResponseWriter) {
	var count []byte
	if c.cfg.UniqueSnapshots {
		c.mu.Lock()
		c.snapSeq++
		n := c.snapSeq
		c.mu.Unlock()
		count = jpegComment([]byte(fmt.Sprintf("%s snapshot %d", c.cfg.Serial, n)))
	}
	pad := c.snapshotPadding(len(c.jpeg) + len(count))
	soi, rest := c.jpeg[:2], c.jpeg[2:]
	if c.cfg.OnSnapshot != nil {
		h := sha256.New()
		h.Write(soi)
		h.Write(count)
		h.Write(pad)
		h.Write(rest)
		var sum [32]byte
		h.Sum(sum[:0])
		c.cfg.OnSnapshot(sum)
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Content-Length", strconv.Itoa(len(c.jpeg)+len(count)+len(pad)))
	for _, b := range [][]byte{soi, count, pad, rest} {
		if _, err := w.Write(b); err != nil {
			return
		}
	}
}

// snapshotPadding returns comment segments that bring an image of have
// bytes to at least SnapshotSize, built once per camera.
func (c *Camera) snapshotPadding(have int) []byte {
	need := c.cfg.SnapshotSize - have
	if need <= 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.padding) < need {
		var b []byte
		for len(b) < need {
			n := min(need-len(b)-4, 65533)
			n = max(n, 1)
			b = append(b, jpegComment(make([]byte, n))...)
		}
		c.padding = b
	}
	return c.padding
}

// jpegComment returns a JPEG COM segment (FF FE, length, text) holding
// text, at most 65533 bytes of it.
func jpegComment(text []byte) []byte {
	b := []byte{0xFF, 0xFE, byte((len(text) + 2) >> 8), byte(len(text) + 2)}
	return append(b, text...)
}

// SetFaults switches the camera's faults.
func (c *Camera) SetFaults(f Faults) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults = f
	if f.DropSubscriptions {
		for _, s := range c.subs {
			close(s.wake)
		}
		c.subs = map[string]*subscription{}
	}
}

// SetBase sets the base URL the camera reports its services under, when
// it is served by a handler the caller runs.
func (c *Camera) SetBase(base string) {
	c.mu.Lock()
	c.base = strings.TrimSuffix(base, "/")
	c.mu.Unlock()
}

// URL returns the device service address.
func (c *Camera) URL() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base + "/onvif/device_service"
}

// Calls returns how many times the named operation was called. Media2's
// operations are counted under their name ("GetProfiles") and also under
// "tr2:" and their name ("tr2:GetProfiles").
func (c *Camera) Calls(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[op]
}

// Subscriptions returns the number of live subscriptions.
func (c *Camera) Subscriptions() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.subs)
}

// PTZPosition returns the head's position now.
func (c *Camera) PTZPosition() (pan, tilt, zoom float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.positionLocked(time.Now())
}

// Serve serves the camera on ln until ctx ends; it closes ln. The motion
// toggler (MotionEvery) runs as long as Serve does. It returns nil when
// ctx ends, and the HTTP server's error if it stops serving first.
func (c *Camera) Serve(ctx context.Context, ln net.Listener) error {
	c.SetBase("http://" + ln.Addr().String())
	srv := &http.Server{Handler: c, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var tick <-chan time.Time
	if c.cfg.MotionEvery > 0 {
		t := time.NewTicker(c.cfg.MotionEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-tick:
			c.mu.Lock()
			on := !c.motion
			c.mu.Unlock()
			c.SetMotion(on)
		case err := <-errc:
			return err
		case <-ctx.Done():
			c.mu.Lock()
			for _, s := range c.subs {
				close(s.wake)
			}
			c.subs = map[string]*subscription{}
			c.mu.Unlock()
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
			srv.Close()
			<-errc
			return nil
		}
	}
}

// SetMotion sets the motion alarm and notifies subscribers when it
// changes.
func (c *Camera) SetMotion(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.motion == on {
		return
	}
	c.motion = on
	for _, n := range c.motionNotes("Changed", time.Now()) {
		c.broadcastLocked(n)
	}
}

// CrossLine reports an object crossing the line rule called rule, as
// cameras that follow the ONVIF analytics topics send it (Hikvision,
// Dahua, Uniview): tns1:RuleEngine/LineDetector/Crossed, a pulse whose
// Data is the object's id.
func (c *Camera) CrossLine(rule string, object int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.broadcastLocked(notification{topic: "tns1:RuleEngine/LineDetector/Crossed", source: ruleSource(rule),
		data: [][2]string{{"ObjectId", strconv.Itoa(object)}}, at: time.Now()})
}

// SetIntrusion reports whether objects are inside the field rule called
// rule: tns1:RuleEngine/FieldDetector/ObjectsInside, Data IsInside.
func (c *Camera) SetIntrusion(rule string, inside bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.broadcastLocked(notification{topic: "tns1:RuleEngine/FieldDetector/ObjectsInside", source: ruleSource(rule),
		data: [][2]string{{"IsInside", strconv.FormatBool(inside)}}, op: "Changed", at: time.Now()})
}

// ruleSource is the Source of an analytics rule's notification on the
// camera's video source configuration.
func ruleSource(rule string) [][2]string {
	return [][2]string{{"VideoSourceConfigurationToken", "vsc_1"}, {"VideoAnalyticsConfigurationToken", "va_1"}, {"Rule", rule}}
}

// SetInput sets the digital input and notifies subscribers when it
// changes.
func (c *Camera) SetInput(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.input == on {
		return
	}
	c.input = on
	c.broadcastLocked(c.inputNote("Changed", time.Now()))
}

// Notify sends an arbitrary notification (a topic such as
// "tns1:VideoSource/SignalLoss") with the given Source and Data items.
func (c *Camera) Notify(topic string, source, data [][2]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.broadcastLocked(notification{topic: topic, source: source, data: data, op: "Changed", at: time.Now()})
}

// motionNotes are the notifications of the motion alarm's state: one,
// or two with DoubleMotion.
func (c *Camera) motionNotes(op string, at time.Time) []notification {
	ns := []notification{{topic: "tns1:VideoSource/MotionAlarm", source: [][2]string{{"Source", "vs1"}},
		data: [][2]string{{"State", strconv.FormatBool(c.motion)}}, op: op, at: at}}
	if c.cfg.DoubleMotion {
		ns = append(ns, notification{topic: "tns1:RuleEngine/CellMotionDetector/Motion", source: ruleSource("MyMotionDetectorRule"),
			data: [][2]string{{"IsMotion", strconv.FormatBool(c.motion)}}, op: op, at: at})
	}
	return ns
}

func (c *Camera) inputNote(op string, at time.Time) notification {
	return notification{topic: "tns1:Device/Trigger/DigitalInput", source: [][2]string{{"InputToken", "DI1"}},
		data: [][2]string{{"LogicalState", strconv.FormatBool(c.input)}}, op: op, at: at}
}

func (c *Camera) broadcastLocked(n notification) {
	for _, s := range c.subs {
		if len(s.queue) < 1000 {
			s.queue = append(s.queue, n)
		}
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

func (c *Camera) now() time.Time { return time.Now().Add(c.cfg.ClockSkew) }

// ServeHTTP answers SOAP posts on /onvif/... and the snapshot on
// /snapshot.jpg.
func (c *Camera) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	f := c.faults
	c.mu.Unlock()
	// Read the request first: the server notices a client that gives up
	// only once the body is consumed.
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	if f.Slow > 0 {
		t := time.NewTimer(f.Slow)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
	}
	if f.Unauthorized {
		c.challenge(w)
		return
	}
	if r.Method == http.MethodGet && r.URL.Path == "/snapshot.jpg" {
		if !c.httpAuthorized(r) {
			c.challenge(w)
			return
		}
		c.serveSnapshot(w)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var env reqEnvelope
	if err := xml.Unmarshal(body, &env); err != nil || env.Body.Op.XMLName.Local == "" {
		writeFault(w, http.StatusBadRequest, "env:Sender", "ter:WellFormed", "request is not a SOAP envelope")
		return
	}
	op := env.Body.Op.XMLName.Local
	c.mu.Lock()
	c.counts[op]++
	c.mu.Unlock()
	if f.Malformed {
		w.Header().Set("Content-Type", "application/soap+xml")
		_, _ = w.Write([]byte("<<this is not xml>>"))
		return
	}
	if op != "GetSystemDateAndTime" {
		switch c.cfg.Auth {
		case AuthDigest, AuthDigestSHA256:
			if !c.httpAuthorized(r) {
				c.challenge(w)
				return
			}
		case AuthUsernameToken:
			if !c.tokenAuthorized(env.Header.Security) {
				writeFault(w, http.StatusBadRequest, "env:Sender", "ter:NotAuthorized", "Sender not Authorized")
				return
			}
		}
		if f.SOAPFault {
			writeFault(w, http.StatusInternalServerError, "env:Receiver", "ter:Action", "simulated failure")
			return
		}
	}
	c.dispatch(w, r, op, &env.Body.Op)
}

type reqEnvelope struct {
	Header struct {
		Security *security `xml:"Security"`
	} `xml:"Header"`
	Body struct {
		Op reqOp `xml:",any"`
	} `xml:"Body"`
}

type security struct {
	Username string `xml:"UsernameToken>Username"`
	Password string `xml:"UsernameToken>Password"`
	Nonce    string `xml:"UsernameToken>Nonce"`
	Created  string `xml:"UsernameToken>Created"`
}

type vec struct {
	PanTilt *struct {
		X float64 `xml:"x,attr"`
		Y float64 `xml:"y,attr"`
	} `xml:"PanTilt"`
	Zoom *struct {
		X float64 `xml:"x,attr"`
	} `xml:"Zoom"`
}

type reqOp struct {
	XMLName       xml.Name
	ProfileToken  string `xml:"ProfileToken"`
	PresetToken   string `xml:"PresetToken"`
	PresetName    string `xml:"PresetName"`
	Velocity      vec    `xml:"Velocity"`
	Position      vec    `xml:"Position"`
	Translation   vec    `xml:"Translation"`
	Timeout       string `xml:"Timeout"`
	MessageLimit  int    `xml:"MessageLimit"`
	Configuration struct {
		Token       string `xml:"token,attr"`
		RateControl struct {
			FrameRateLimit int `xml:"FrameRateLimit"`
			BitrateLimit   int `xml:"BitrateLimit"`
		} `xml:"RateControl"`
	} `xml:"Configuration"`
	// Media2's
	Protocol           string   `xml:"Protocol"`
	ConfigurationToken string   `xml:"ConfigurationToken"`
	Type               []string `xml:"Type"`
}

const realm = "simcam"

func (c *Camera) challenge(w http.ResponseWriter) {
	if c.cfg.Auth == AuthUsernameToken {
		// Such cameras protect their snapshots with Basic.
		w.Header().Add("WWW-Authenticate", `Basic realm="`+realm+`"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	nonce := base64.RawURLEncoding.EncodeToString([]byte(soap.UUID()))
	c.mu.Lock()
	if len(c.nonces) > 10000 {
		c.nonces = map[string]bool{}
	}
	c.nonces[nonce] = true
	c.mu.Unlock()
	alg := "MD5"
	if c.cfg.Auth == AuthDigestSHA256 {
		alg = "SHA-256"
	}
	w.Header().Add("WWW-Authenticate", fmt.Sprintf(`Digest realm=%q, qop="auth", algorithm=%s, nonce=%q, opaque="sim"`, realm, alg, nonce))
	w.WriteHeader(http.StatusUnauthorized)
}

// httpAuthorized checks an HTTP Digest Authorization (or, with Auth none or
// usernametoken, lets a snapshot through with Basic or nothing).
func (c *Camera) httpAuthorized(r *http.Request) bool {
	switch c.cfg.Auth {
	case AuthNone:
		return true
	case AuthUsernameToken:
		u, p, ok := r.BasicAuth()
		return ok && u == c.cfg.User && p == c.cfg.Password
	}
	p := soap.ParseAuthorization(r.Header.Get("Authorization"))
	if p == nil || p["username"] != c.cfg.User || p["realm"] != realm {
		return false
	}
	c.mu.Lock()
	known := c.nonces[p["nonce"]]
	c.mu.Unlock()
	if !known || p["uri"] != r.URL.RequestURI() {
		return false
	}
	alg := p["algorithm"]
	if alg == "" {
		alg = "MD5"
	}
	want := soap.DigestResponse(alg, c.cfg.User, realm, c.cfg.Password, r.Method, p["uri"], p["nonce"], p["nc"], p["cnonce"], p["qop"])
	return want != "" && want == p["response"]
}

func (c *Camera) tokenAuthorized(s *security) bool {
	if s == nil || s.Username != c.cfg.User {
		return false
	}
	created, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s.Created))
	if err != nil || math.Abs(float64(c.now().Sub(created))) > float64(10*time.Second) {
		return false
	}
	nonce, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s.Nonce))
	if err != nil {
		return false
	}
	return soap.PasswordDigest(nonce, strings.TrimSpace(s.Created), c.cfg.Password) == strings.TrimSpace(s.Password)
}

func writeFault(w http.ResponseWriter, status int, code, sub, reason string) {
	w.Header().Set("Content-Type", "application/soap+xml; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:ter="http://www.onvif.org/ver10/error"><env:Body><env:Fault><env:Code><env:Value>%s</env:Value><env:Subcode><env:Value>%s</env:Value></env:Subcode></env:Code><env:Reason><env:Text xml:lang="en">%s</env:Text></env:Reason></env:Fault></env:Body></env:Envelope>`, code, sub, reason)
}

const envOpen = `<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:trt="http://www.onvif.org/ver10/media/wsdl" xmlns:tr2="http://www.onvif.org/ver20/media/wsdl" xmlns:tptz="http://www.onvif.org/ver20/ptz/wsdl" xmlns:tev="http://www.onvif.org/ver10/events/wsdl" xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2" xmlns:wsa="http://www.w3.org/2005/08/addressing" xmlns:tns1="http://www.onvif.org/ver10/topics"><env:Body>`
const envClose = `</env:Body></env:Envelope>`

func writeOK(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "application/soap+xml; charset=utf-8")
	_, _ = io.WriteString(w, envOpen+body+envClose)
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// advertised returns the base URL the camera reports services under.
func (c *Camera) advertised() string {
	c.mu.Lock()
	base := c.base
	c.mu.Unlock()
	if c.cfg.AdvertiseHost != "" {
		return "http://" + c.cfg.AdvertiseHost
	}
	return base
}

func (c *Camera) profileIndex(token string) (int, bool) {
	var i int
	if _, err := fmt.Sscanf(token, "profile_%d", &i); err != nil || i < 1 || i > c.cfg.Profiles {
		return 0, false
	}
	return i - 1, true
}
