package bridge

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/delivery"
	"github.com/osapgw/osapgw/model"
	"github.com/osapgw/osapgw/osap"
)

// Upstream is the session to the platform (upstream.Session).
type Upstream interface {
	// Publish seals and sends a business message; it returns an error at
	// once when the session is not connected. done is called once, on
	// PUBACK for QoS 1, after the write for QoS 0, or with an error.
	Publish(kind string, h osap.Header, body any, qos byte, done func(error)) error
	// Connected reports whether the session is registered now.
	Connected() bool
}

// EventStream is the ordered event stream through the outbox
// (delivery.Stream): the bridge hands it the events adapters report, runs
// it, and tells it when the session comes and goes.
type EventStream interface {
	// Append stores the events durably before it returns (see
	// delivery.Stream.Append).
	Append(dev string, evs []model.EventOccurrence) (int, error)
	// Run sends stored events through up until ctx ends.
	Run(ctx context.Context, up delivery.Publisher) error
	// Connected and Disconnected start a new epoch of sending.
	Connected()
	Disconnected()
}

// ValueStore keeps the newest value of each attribute while the upstream is
// away (store.Store).
type ValueStore interface {
	PutValues(dev, resource string, values map[string]model.Value) error
	DrainValues(fn func(dev, resource string, values map[string]model.Value) error) error
}

// topologyStore remembers which sub-devices the platform was told about,
// so devices removed from the configuration while the daemon was stopped
// are removed from the platform at the next connection (store.Store).
// It is optional: a ValueStore without it only removes devices taken out
// by a reload.
type topologyStore interface {
	Announced() ([]string, error)
	SetAnnounced(ids []string) error
}

// Spec is one sub-device to run.
type Spec struct {
	// ID, Kind and Name are the device's [[device]] id, kind and name.
	ID, Kind, Name string
	// Hash identifies the configuration; Apply restarts a device only when
	// its hash changed.
	Hash string
	// Build returns a new adapter for the device.
	Build func() (adapters.Adapter, error)
}

// Config tunes the bridge. Zero values take the defaults.
type Config struct {
	// RequestTimeout bounds a downlink request on the device (10 s).
	RequestTimeout time.Duration
	// AttributeQoS is the QoS of attribute reports (0).
	AttributeQoS byte
	// TopoBatch is how many sub-devices one topo.add carries (30).
	TopoBatch int
	// MaxConcurrentRequests bounds downlink requests in progress (16).
	MaxConcurrentRequests int
	// DescribeRetry is the first delay before describing a device again
	// after a failure; it doubles up to a minute (2 s).
	DescribeRetry time.Duration
	// KeepValuesAfter is how long attribute reports wait in memory while
	// the session is down before their values go to the store: a short
	// outage, or the start before the first registration, then costs no
	// write to flash, and a long one costs one write per period, not one
	// per poll (10 s).
	KeepValuesAfter time.Duration
	// Logger receives the bridge's logs (discarded when nil).
	Logger *slog.Logger
	// Now is the clock of timestamps and status (time.Now when nil).
	Now func() time.Time
	// Metrics are updated as the bridge works (unregistered ones when nil).
	Metrics *Metrics
	// Pictures uploads the pictures adapters' operations take (a camera's
	// snapshot) to the picture service; nil when the platform offers
	// none. The event stream has its own (delivery.Config.Pictures).
	Pictures delivery.PictureUploader
}

func (c *Config) defaults() {
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.TopoBatch <= 0 {
		c.TopoBatch = 30
	}
	if c.MaxConcurrentRequests <= 0 {
		c.MaxConcurrentRequests = 16
	}
	if c.DescribeRetry <= 0 {
		c.DescribeRetry = 2 * time.Second
	}
	if c.KeepValuesAfter <= 0 {
		c.KeepValuesAfter = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(nil)
	}
}

// Bridge connects adapters, the event stream and the upstream. Create it
// with New, give it its upstream with SetUpstream, then Run it.
type Bridge struct {
	cfg    Config
	log    *slog.Logger
	events EventStream
	vals   ValueStore
	up     Upstream
	msgSeq atomic.Uint64 // numbers the messages that are not events

	applyMu sync.Mutex // serializes Apply

	// mu guards the set of devices and what goes with it: which devices
	// run (devices, order), whether Run has started them and is stopping
	// (running, stopped), the removals still to announce (removed), and
	// joining wg (so that Run, once stopped is set, waits for every
	// goroutine and none starts after it).
	mu      sync.Mutex
	running bool // Run has started the devices
	stopped bool // Run is stopping or returned: start no more goroutines
	devices map[string]*device
	order   []string       // device ids in configuration order
	removed []string       // ids to announce in topo.remove at the next chance
	wg      sync.WaitGroup // device and request goroutines

	reqs chan struct{} // semaphore of downlink requests

	reports reportQueue // attribute reports waiting for reportLoop
	// vmu orders writing queued values to the store while the session is
	// down against Connected draining the store: values written just
	// before a connection are drained by it, never left pending. Sending
	// the queue holds it too, so no report goes up while a drain runs.
	vmu sync.Mutex
	// drained is set by Connected, under vmu, once it has drained the
	// store, and cleared by Disconnected. reportLoop sends the queue only
	// while it is set: the session is up before Connected runs, and a
	// report sent then would go up before the older values the store kept.
	// It is atomic so that Disconnected never waits behind a publish that
	// stalls under vmu.
	drained atomic.Bool
}

// New returns a bridge that hands events to events and keeps attribute
// values in vals while the session is down.
func New(cfg Config, events EventStream, vals ValueStore) *Bridge {
	cfg.defaults()
	return &Bridge{
		cfg:     cfg,
		log:     cfg.Logger,
		events:  events,
		vals:    vals,
		devices: map[string]*device{},
		reqs:    make(chan struct{}, cfg.MaxConcurrentRequests),
		reports: newReportQueue(),
	}
}

// SetUpstream gives the bridge its session. Call it before Run.
func (b *Bridge) SetUpstream(up Upstream) { b.up = up }

// Run runs the devices given to Apply (before or after Run starts), the
// event stream and the attribute reports until ctx ends, then stops every
// device and waits for all its goroutines. It returns an error only when
// called before SetUpstream; it returns nil once ctx has ended.
func (b *Bridge) Run(ctx context.Context) error {
	if b.up == nil {
		return errors.New("bridge: Run before SetUpstream")
	}
	b.mu.Lock()
	b.running = true
	for _, id := range b.order {
		b.startLocked(b.devices[id])
	}
	b.mu.Unlock()

	var loops sync.WaitGroup
	loops.Add(2)
	go func() { defer loops.Done(); _ = b.events.Run(ctx, metered{b}) }()
	go func() { defer loops.Done(); b.reportLoop(ctx) }()
	<-ctx.Done()
	b.mu.Lock()
	b.stopped = true
	for _, d := range b.devices {
		d.stop()
	}
	b.mu.Unlock()
	b.wg.Wait()
	loops.Wait()
	b.keepReports() // what came in after reportLoop's last round
	return nil
}

// Apply makes the set of running devices match specs: new devices start,
// removed ones stop (and are announced in topo.remove), devices whose Hash
// changed restart; the others keep running untouched.
func (b *Bridge) Apply(specs []Spec) {
	b.applyMu.Lock() // one reload at a time
	defer b.applyMu.Unlock()
	want := map[string]Spec{}
	order := make([]string, 0, len(specs))
	for _, s := range specs {
		want[s.ID] = s
		order = append(order, s.ID)
	}

	// Stop the devices removed or changed, and wait for them outside the
	// lock (their goroutines report to the bridge while they stop): the
	// new adapter of a changed device must not meet the old one on its
	// link, as a serial port would be busy.
	b.mu.Lock()
	var stopping []*device
	for id, d := range b.devices {
		s, keep := want[id]
		if keep && s.Hash == d.spec.Hash {
			continue
		}
		d.stop()
		stopping = append(stopping, d)
		delete(b.devices, id)
		if !keep {
			b.removed = append(b.removed, id)
			b.log.Info("device removed", "device", id)
		} else {
			b.log.Info("device configuration changed, restarting", "device", id)
		}
	}
	b.mu.Unlock()
	for _, d := range stopping {
		d.wait()
		b.cfg.Metrics.forget(d.spec.ID)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	for _, id := range order {
		if _, ok := b.devices[id]; ok {
			continue
		}
		d := newDevice(b, want[id])
		b.devices[id] = d
		if b.running && !b.stopped {
			b.startLocked(d)
		}
	}
	b.order = order
	if len(b.removed) > 0 && b.up != nil && b.up.Connected() {
		b.sendRemovedLocked()
	}
	b.recordAnnouncedLocked()
}

// startLocked starts d's goroutine. The device's lifetime is the
// bridge's, not a caller's: Apply (for a removal or a change) and Run (at
// the end) cancel it, so its context does not derive from the reload or
// the Run call that started it. b.mu must be held.
func (b *Bridge) startLocked(d *device) {
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	d.exited = make(chan struct{})
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer close(d.exited)
		d.run(ctx)
	}()
}

func (b *Bridge) device(id string) *device {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.devices[id]
}
