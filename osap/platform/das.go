package platform

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/osapgw/osapgw/model"
	"github.com/osapgw/osapgw/osap"
)

// Sentinel errors of the device access service.
var (
	// ErrDeviceNotFound is returned when a DevID has never connected to the
	// DAS and has no stored events.
	ErrDeviceNotFound = errors.New("device not found")
	// ErrDeviceOffline is returned by Request when the device is not
	// connected, or disconnects before it replies.
	ErrDeviceOffline = errors.New("device offline")
	// ErrInvalidRequest is returned when a downlink request or an event to
	// store is not well formed.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrDASRunning is returned by Serve when the DAS is serving already.
	ErrDASRunning = errors.New("device access service is running already")
	// ErrStoreClosed is returned by EventStore.Add after Close.
	ErrStoreClosed = errors.New("event store closed")
)

// KeySource gives the session keys a device may use: the current one first,
// then the previous one while it is still valid, with the suite negotiated
// for the device. The registry implements it.
type KeySource interface {
	SessionKeys(devID string) (osap.Suite, [][]byte, error)
}

// DASConfig configures a device access service.
type DASConfig struct {
	// Listen is the TCP address to bind, such as 127.0.0.1:1883. Port 0
	// picks a free port, kept across restarts of Serve.
	Listen string
	// AdvertiseURL is the address the LBS hands to devices. Empty means
	// mqtt://host:port (mqtts with TLS) of the bound address, with an
	// unspecified host (0.0.0.0, ::) replaced by 127.0.0.1.
	AdvertiseURL string
	// TLS, when set, makes the listener MQTT over TLS.
	TLS *tls.Config
	// Keys gives the session keys that open login passwords and messages.
	Keys KeySource
	// StateDir holds the event file (events.jsonl) unless Events is set.
	// Empty with no Events keeps events in memory only.
	StateDir string
	// Events, when set, is the store events go to; several DAS instances
	// share one so that deduplication holds when a device moves between
	// them. The caller closes it. When nil, the DAS opens its own in StateDir
	// and closes it in Close.
	Events *EventStore
	// Logger receives the DAS's logs; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock used to check login freshness; nil means time.Now.
	Now func() time.Time
	// ConnectTimeout bounds how long a new connection may take to finish
	// TLS and send its CONNECT; 0 means DefaultConnectTimeout.
	ConnectTimeout time.Duration
}

// DefaultConnectTimeout is DASConfig.ConnectTimeout's default.
const DefaultConnectTimeout = 10 * time.Second

// DAS is the platform's device access service: an embedded MQTT 3.1.1
// broker that authenticates gateways with their login password, keeps each
// gateway to its own topics, opens every uplink message and keeps what they
// say: online state, topology, last attribute values and events.
//
// A DAS is created once; Serve runs it until its context ends and may be
// called again afterwards (an outage in the demo). Its methods are safe for
// concurrent use.
type DAS struct {
	cfg     DASConfig
	log     *slog.Logger
	now     func() time.Time
	addr    string // the bound address, rebound by a later Serve
	url     string
	events  *EventStore
	ownsEv  bool
	reqSeq  atomic.Uint64
	reqBase string
	replay  replayCache // nonces of accepted login passwords

	mu      sync.Mutex
	ln      net.Listener // bound and not yet served; nil while serving
	serving bool
	srv     *mqtt.Server
	devices map[string]*device
	logins  map[*mqtt.Client]*conn // accepted in OnConnect, not yet established
	pending map[pendingKey]chan osap.Message
	online  int
}

type pendingKey struct {
	devID, id string
}

// conn is one authenticated MQTT connection of a device.
type conn struct {
	cl      *mqtt.Client
	devID   string
	remote  string
	suite   osap.Suite
	ciphers []*osap.Cipher // the one that opened the login password first
	done    chan struct{}  // closed when the connection ends
}

// device is what the DAS knows of one gateway.
type device struct {
	id             string
	conn           *conn
	remote         string
	suite          osap.Suite
	connectedAt    time.Time
	disconnectedAt time.Time
	lastSeen       time.Time
	statusOnline   bool // the last {"online":…} it published
	attrs          attributes
	subs           map[string]*subDevice
}

type subDevice struct {
	model   *model.Device
	online  bool
	attrs   attributes
	updated time.Time
}

// attributes are last values: resource → name → value.
type attributes map[string]osap.Values

func (a attributes) set(resource string, values osap.Values) {
	m := a[resource]
	if m == nil {
		m = osap.Values{}
		a[resource] = m
	}
	for k, v := range values {
		m[k] = v
	}
}

func (a attributes) clone() map[string]osap.Values {
	if len(a) == 0 {
		return nil
	}
	out := make(map[string]osap.Values, len(a))
	for r, m := range a {
		c := make(osap.Values, len(m))
		for k, v := range m {
			c[k] = v
		}
		out[r] = c
	}
	return out
}

// NewDAS binds cfg.Listen and returns a DAS ready to Serve. It opens the
// event store (see DASConfig.Events). Close releases the address and the
// store when the DAS is not going to serve again. It returns an error when
// cfg has no key source or listen address, the address cannot be bound or
// the event store cannot be opened.
func NewDAS(cfg DASConfig) (*DAS, error) {
	if cfg.Keys == nil {
		return nil, errors.New("new DAS: no key source")
	}
	if cfg.Listen == "" {
		return nil, errors.New("new DAS: no listen address")
	}
	d := &DAS{
		cfg:     cfg,
		log:     cfg.Logger,
		now:     cfg.Now,
		events:  cfg.Events,
		devices: map[string]*device{},
		logins:  map[*mqtt.Client]*conn{},
		pending: map[pendingKey]chan osap.Message{},
		reqBase: "p" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-",
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.cfg.ConnectTimeout <= 0 {
		d.cfg.ConnectTimeout = DefaultConnectTimeout
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("new DAS: %w", err)
	}
	d.ln = ln
	d.addr = ln.Addr().String()
	d.log = d.log.With("addr", d.addr)
	if d.url, err = advertiseURL(cfg.AdvertiseURL, d.addr, cfg.TLS != nil); err != nil {
		ln.Close()
		return nil, fmt.Errorf("new DAS: %w", err)
	}
	if d.events == nil {
		path := ""
		if cfg.StateDir != "" {
			if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
				ln.Close()
				return nil, fmt.Errorf("new DAS: state dir: %w", err)
			}
			path = filepath.Join(cfg.StateDir, "events.jsonl")
		}
		if d.events, err = OpenEventStore(path); err != nil {
			ln.Close()
			return nil, fmt.Errorf("new DAS: %w", err)
		}
		d.ownsEv = true
	}
	// Gateways known from their stored events appear, offline, at once.
	for _, id := range d.events.DevIDs() {
		d.devices[id] = &device{id: id, subs: map[string]*subDevice{}, attrs: attributes{}}
	}
	return d, nil
}

func advertiseURL(given, addr string, tlsOn bool) (string, error) {
	if given != "" {
		u, err := url.Parse(given)
		if err != nil || (u.Scheme != "mqtt" && u.Scheme != "mqtts") || u.Host == "" {
			return "", fmt.Errorf("advertise URL %q is not mqtt://host:port or mqtts://host:port", given)
		}
		return given, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("bound address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	scheme := "mqtt"
	if tlsOn {
		scheme = "mqtts"
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}

// URL returns the address devices are sent to (mqtt:// or mqtts://).
func (d *DAS) URL() string { return d.url }

// Addr returns the bound TCP address.
func (d *DAS) Addr() string { return d.addr }

// Registered returns how many devices are connected and authenticated now.
func (d *DAS) Registered() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.online
}

// Serving reports whether Serve is accepting connections now.
func (d *DAS) Serving() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.srv != nil
}

// Serve runs the broker on the bound address until ctx ends, then
// disconnects every device, closes the listener and returns nil once every
// goroutine it started has ended. It may be called again after it returns:
// the address is bound again. It returns an error when the address cannot
// be bound or the DAS is serving already.
func (d *DAS) Serve(ctx context.Context) error {
	d.mu.Lock()
	if d.serving {
		d.mu.Unlock()
		return ErrDASRunning
	}
	ln := d.ln
	d.ln = nil
	d.serving = true
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.serving = false
		d.mu.Unlock()
	}()

	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", d.addr); err != nil {
			return fmt.Errorf("serve DAS: %w", err)
		}
	}
	if d.cfg.TLS != nil {
		ln = tls.NewListener(ln, d.cfg.TLS)
	}

	srv := mqtt.New(&mqtt.Options{
		InlineClient:           true,
		SysTopicResendInterval: 3600,
		Logger:                 slog.New(minLevel{d.log.With("component", "mochi").Handler(), slog.LevelWarn}),
		Capabilities:           capabilities(),
	})
	if err := srv.AddHook(&hook{d: d, srv: srv}, nil); err != nil {
		ln.Close()
		return fmt.Errorf("serve DAS: add hook: %w", err)
	}
	l := &listener{id: "das", ln: ln, log: d.log, timeout: d.cfg.ConnectTimeout, conns: map[net.Conn]struct{}{}}
	if err := srv.AddListener(l); err != nil {
		ln.Close()
		return fmt.Errorf("serve DAS: add listener: %w", err)
	}
	if err := srv.Serve(); err != nil {
		srv.Close()
		l.wait()
		return fmt.Errorf("serve DAS: %w", err)
	}
	d.mu.Lock()
	d.srv = srv
	d.mu.Unlock()
	d.log.Info("DAS serving", "url", d.url)

	<-ctx.Done()

	d.mu.Lock()
	d.srv = nil
	d.mu.Unlock()
	srv.Close() // disconnects every client and waits for their OnDisconnect
	l.wait()
	d.log.Info("DAS stopped")
	return nil
}

// Close releases the bound address when the DAS is not serving, and the
// event store it opened itself. Call it once Serve has returned for good.
// It returns the errors of closing the listener and the store, joined.
func (d *DAS) Close() error {
	d.mu.Lock()
	ln := d.ln
	d.ln = nil
	d.mu.Unlock()
	var errs []error
	if ln != nil {
		if err := ln.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close DAS listener: %w", err))
		}
	}
	if d.ownsEv {
		if err := d.events.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// DeviceInfo is what the DAS knows of one gateway.
type DeviceInfo struct {
	DevID          string    `json:"devid"`
	Online         bool      `json:"online"`
	DAS            string    `json:"das"`
	Remote         string    `json:"remote,omitempty"`
	Suite          string    `json:"suite,omitempty"`
	ConnectedAt    time.Time `json:"connected_at,omitzero"`
	DisconnectedAt time.Time `json:"disconnected_at,omitzero"`
	LastSeen       time.Time `json:"last_seen,omitzero"`
	// Events is how many events of the gateway are stored.
	Events int `json:"events"`
	// Attributes are the gateway's own last values: resource → name → value.
	Attributes map[string]osap.Values `json:"attributes,omitempty"`
	SubDevices []SubDevice            `json:"sub_devices"`
}

// SubDevice is one sub-device of a gateway, as its topo.add and later
// messages described it.
type SubDevice struct {
	ID     string `json:"id"`
	Online bool   `json:"online"`
	// Model is the sub-device's model from topo.add; nil when only other
	// messages named it. It must not be modified.
	Model *model.Device `json:"model,omitempty"`
	// Attributes are the last values reported: resource → name → value.
	Attributes map[string]osap.Values `json:"attributes,omitempty"`
	Updated    time.Time              `json:"updated,omitzero"`
}

func (d *DAS) info(dev *device, full bool) DeviceInfo {
	di := DeviceInfo{
		DevID:          dev.id,
		Online:         dev.conn != nil,
		DAS:            d.url,
		Remote:         dev.remote,
		ConnectedAt:    dev.connectedAt,
		DisconnectedAt: dev.disconnectedAt,
		LastSeen:       dev.lastSeen,
		SubDevices:     make([]SubDevice, 0, len(dev.subs)),
	}
	if dev.suite != 0 {
		di.Suite = dev.suite.String()
	}
	if full {
		di.Attributes = dev.attrs.clone()
	}
	for id, s := range dev.subs {
		sd := SubDevice{ID: id, Online: s.online, Updated: s.updated}
		if full {
			sd.Model = s.model
			sd.Attributes = s.attrs.clone()
		}
		di.SubDevices = append(di.SubDevices, sd)
	}
	sort.Slice(di.SubDevices, func(i, j int) bool { return di.SubDevices[i].ID < di.SubDevices[j].ID })
	return di
}

// Devices returns every gateway the DAS knows (connected since it was
// created, or with stored events), sorted by DevID, with their sub-devices'
// ids and online state but without models and attribute values.
func (d *DAS) Devices() []DeviceInfo {
	d.mu.Lock()
	out := make([]DeviceInfo, 0, len(d.devices))
	for _, dev := range d.devices {
		out = append(out, d.info(dev, false))
	}
	d.mu.Unlock()
	for i := range out {
		out[i].Events = d.events.Len(out[i].DevID)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DevID < out[j].DevID })
	return out
}

// Device returns everything the DAS knows of devID, or ErrDeviceNotFound.
func (d *DAS) Device(devID string) (DeviceInfo, error) {
	d.mu.Lock()
	dev := d.devices[devID]
	if dev == nil {
		d.mu.Unlock()
		return DeviceInfo{}, fmt.Errorf("device %q: %w", devID, ErrDeviceNotFound)
	}
	di := d.info(dev, true)
	d.mu.Unlock()
	di.Events = d.events.Len(devID)
	return di, nil
}

// Events returns up to limit stored events of devID with a platform
// sequence number above afterSeq, in arrival order (limit <= 0: all).
func (d *DAS) Events(devID string, afterSeq uint64, limit int) []Event {
	return d.events.Events(devID, afterSeq, limit)
}

// EventStore returns the store the DAS keeps events in.
func (d *DAS) EventStore() *EventStore { return d.events }

// kindOperation is the topic kind operation.invoke travels on.
const kindOperation = "operation"

// Request sends a downlink request of type typ (attribute.set,
// attribute.get or operation.invoke) to sub-device subDev of devID
// (empty for the gateway itself), sealed with the key the device logged in
// with on osap/v1/{devID}/down/{attribute|operation} at QoS 1, and waits for
// the reply with the same id on up/reply. It returns the reply, whatever its
// code; ErrDeviceOffline when the device is not connected or goes away
// before replying; ctx's error when ctx ends first.
func (d *DAS) Request(ctx context.Context, devID, subDev, typ string, body any) (osap.Message, error) {
	return d.request(ctx, devID, subDev, typ, func(c *osap.Cipher, topic string, h osap.Header) ([]byte, error) {
		return c.SealMessage(rand.Reader, topic, h, body)
	})
}

// RequestRaw is Request with an application payload sent as it is, JSON
// or not: it shows how a gateway answers a body it cannot read (binding
// 2.4: 400 with the request's id). Its errors are Request's.
func (d *DAS) RequestRaw(ctx context.Context, devID, subDev, typ string, body []byte) (osap.Message, error) {
	return d.request(ctx, devID, subDev, typ, func(c *osap.Cipher, topic string, h osap.Header) ([]byte, error) {
		pt, err := osap.EncodeMessage(h, nil)
		if err != nil {
			return nil, err
		}
		pt = append(pt, body...)
		return c.Seal(nil, rand.Reader, []byte(topic), pt)
	})
}

// request sends a request sealed by seal and waits for its reply (see
// Request).
func (d *DAS) request(ctx context.Context, devID, subDev, typ string, seal func(c *osap.Cipher, topic string, h osap.Header) ([]byte, error)) (osap.Message, error) {
	var kind string
	switch typ {
	case osap.TypeAttributeSet, osap.TypeAttributeGet:
		kind = osap.KindAttribute
	case osap.TypeOperationInvoke:
		kind = kindOperation
	default:
		return osap.Message{}, fmt.Errorf("request %q to %q: %w: unknown type", typ, devID, ErrInvalidRequest)
	}
	id := d.reqBase + strconv.FormatUint(d.reqSeq.Add(1), 10)
	key := pendingKey{devID, id}
	ch := make(chan osap.Message, 1)

	d.mu.Lock()
	dev, srv := d.devices[devID], d.srv
	if dev == nil || dev.conn == nil || srv == nil {
		d.mu.Unlock()
		return osap.Message{}, fmt.Errorf("request %s to %q: %w", typ, devID, ErrDeviceOffline)
	}
	c := dev.conn
	d.pending[key] = ch
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.pending, key)
		d.mu.Unlock()
	}()

	topic := osap.Topic(devID, osap.DirDown, kind)
	h := osap.Header{ID: id, TS: d.now().UnixMilli(), Type: typ, Dev: subDev}
	payload, err := seal(c.ciphers[0], topic, h)
	if err != nil {
		return osap.Message{}, fmt.Errorf("request %s to %q: %w", typ, devID, err)
	}
	if err := srv.Publish(topic, payload, false, 1); err != nil {
		return osap.Message{}, fmt.Errorf("request %s to %q: publish: %w", typ, devID, err)
	}
	d.log.Debug("request sent", "devid", devID, "dev", subDev, "type", typ, "id", id)
	select {
	case m := <-ch:
		return m, nil
	case <-c.done:
		return osap.Message{}, fmt.Errorf("request %s %s to %q: %w before replying", typ, id, devID, ErrDeviceOffline)
	case <-ctx.Done():
		return osap.Message{}, fmt.Errorf("request %s %s to %q: %w", typ, id, devID, ctx.Err())
	}
}

// minLevel drops records below a level: mochi logs every connection at info.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}
