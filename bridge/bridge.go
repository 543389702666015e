package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/model"
	"github.com/osapgw/osapgw/osap"
	"github.com/osapgw/osapgw/store"
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

// Outbox is the durable event queue (store.Store).
type Outbox interface {
	AppendBatch(ctx context.Context, evs []store.Event) ([]uint64, error)
	Pending(after uint64, max int) ([]store.Record, error)
	Ack(ids ...uint64) error
	TakeOverflow() uint64
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
	// Window is how many events may await their PUBACK at once (64).
	Window int
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
}

func (c *Config) defaults() {
	if c.Window <= 0 {
		c.Window = 64
	}
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

// Bridge connects adapters, the outbox and the upstream. Create it with
// New, give it its upstream with SetUpstream, then Run it.
type Bridge struct {
	cfg  Config
	log  *slog.Logger
	ob   Outbox
	vals ValueStore
	up   Upstream

	runCtx  context.Context // set by Run; device goroutines derive from it
	running chan struct{}   // closed when Run has set runCtx
	wg      sync.WaitGroup  // device and request goroutines

	msgSeq  atomic.Uint64 // numbers the messages that are not events
	applyMu sync.Mutex    // serializes Apply
	mu      sync.Mutex
	stopped bool // Run is stopping or returned: start no more goroutines
	devices map[string]*device
	order   []string // device ids in configuration order
	removed []string // ids to announce in topo.remove at the next chance

	// sender state, guarded by smu
	smu      sync.Mutex
	epoch    uint64 // counts connections; PUBACKs of older ones free no window
	sentUpTo uint64 // highest id published in this epoch
	inflight int
	wake     chan struct{}
	acks     chan uint64
	reqs     chan struct{} // semaphore of downlink requests

	// Attribute reports waiting for reportLoop, guarded by rmu: one per
	// device and resource, newer values merged into older ones.
	rmu        sync.Mutex
	reports    []report
	reportAt   map[devResource]int // index in reports
	reportWake chan struct{}
	// vmu orders writing queued values to the store while the session is
	// down against Connected draining the store: values written just
	// before a connection are drained by it, never left pending. Sending
	// the queue holds it too, so no report goes up while a drain runs.
	vmu sync.Mutex
	// drained is set by Connected, under vmu, once it has drained the
	// store, and cleared by Disconnected. reportLoop sends the queue only
	// while it is set: the session is up before Connected runs, and a
	// report sent then would go up before the older values the store kept.
	drained atomic.Bool
}

// devResource names one resource of one sub-device.
type devResource struct{ dev, resource string }

// report is a pending attribute report.
type report struct {
	devResource
	values map[string]model.Value
}

// New returns a bridge over the outbox and value store.
func New(cfg Config, ob Outbox, vals ValueStore) *Bridge {
	cfg.defaults()
	return &Bridge{
		cfg:     cfg,
		log:     cfg.Logger,
		ob:      ob,
		vals:    vals,
		devices: map[string]*device{},
		running: make(chan struct{}),
		wake:    make(chan struct{}, 1),
		acks:    make(chan uint64, 4096),

		reportAt:   map[devResource]int{},
		reportWake: make(chan struct{}, 1),
		reqs:       make(chan struct{}, cfg.MaxConcurrentRequests),
	}
}

// SetUpstream gives the bridge its session. Call it before Run.
func (b *Bridge) SetUpstream(up Upstream) { b.up = up }

// Run runs the devices given to Apply (before or after Run starts) and
// the event sender until ctx ends, then stops every device and waits for
// all its goroutines. It returns an error only when called before
// SetUpstream; it returns nil once ctx has ended.
func (b *Bridge) Run(ctx context.Context) error {
	if b.up == nil {
		return errors.New("bridge: Run before SetUpstream")
	}
	b.mu.Lock()
	b.runCtx = ctx
	close(b.running)
	for _, id := range b.order {
		b.startLocked(b.devices[id])
	}
	b.mu.Unlock()

	var loops sync.WaitGroup
	loops.Add(3)
	go func() { defer loops.Done(); b.sendLoop(ctx) }()
	go func() { defer loops.Done(); b.ackLoop(ctx) }()
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
		if b.runCtx != nil && !b.stopped {
			b.startLocked(d)
		}
	}
	b.order = order
	if len(b.removed) > 0 && b.up != nil && b.up.Connected() {
		b.sendRemovedLocked()
	}
	b.recordAnnouncedLocked()
}

// recordAnnouncedLocked stores the configured device ids once no removal
// is waiting to be sent.
func (b *Bridge) recordAnnouncedLocked() {
	tp, ok := b.vals.(topologyStore)
	if !ok || len(b.removed) > 0 {
		return
	}
	if err := tp.SetAnnounced(append([]string(nil), b.order...)); err != nil {
		b.log.Warn("record the announced sub-devices", "err", err)
	}
}

// forgottenLocked adds to b.removed the devices the platform was told
// about before and that are no longer configured.
func (b *Bridge) forgottenLocked() {
	tp, ok := b.vals.(topologyStore)
	if !ok {
		return
	}
	prev, err := tp.Announced()
	if err != nil {
		b.log.Warn("read the announced sub-devices", "err", err)
		return
	}
	for _, id := range prev {
		if _, configured := b.devices[id]; configured || slices.Contains(b.removed, id) {
			continue
		}
		b.removed = append(b.removed, id)
	}
}

func (b *Bridge) startLocked(d *device) {
	ctx, cancel := context.WithCancel(b.runCtx)
	d.cancel = cancel
	d.exited = make(chan struct{})
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer close(d.exited)
		d.run(ctx)
	}()
}

func (b *Bridge) sendRemovedLocked() {
	ids := b.removed
	b.removed = nil
	err := b.publish(osap.KindTopo, osap.Header{Type: osap.TypeTopoRemove}, osap.DeviceList{Devices: ids}, 1, func(err error) {
		if err != nil {
			b.mu.Lock()
			b.removed = append(b.removed, ids...)
			b.mu.Unlock()
		}
	})
	if err != nil {
		b.removed = append(b.removed, ids...)
	}
}

// publish sends a message with a fresh id and timestamp unless h has them.
func (b *Bridge) publish(kind string, h osap.Header, body any, qos byte, done func(error)) error {
	if h.ID == "" {
		h.ID = b.nextMsgID()
	}
	if h.TS == 0 {
		h.TS = b.cfg.Now().UnixMilli()
	}
	if done == nil {
		done = func(error) {}
	}
	err := b.up.Publish(kind, h, body, qos, done)
	if err == nil {
		b.cfg.Metrics.MessagesOut.WithLabelValues(h.Type).Inc()
	}
	return err
}

// nextMsgID returns an id for messages that are not events. Event ids are
// the outbox's decimal sequence numbers; these carry a prefix so the two
// never meet.
func (b *Bridge) nextMsgID() string {
	n := b.msgSeq.Add(1)
	return "g" + strconv.FormatUint(uint64(b.cfg.Now().UnixMilli()), 36) + "-" + strconv.FormatUint(n, 10)
}

// Attributes implements adapters.Sink. It takes values (the caller must
// not touch the map again), queues them for reportLoop and returns at
// once. Queued reports of one resource are merged, the newest values
// winning, so the queue holds at most one report per resource however
// long the upstream stalls or stays down.
func (b *Bridge) Attributes(dev, resource string, values map[string]model.Value) {
	if d := b.device(dev); d != nil {
		d.reported(values)
	}
	k := devResource{dev, resource}
	b.rmu.Lock()
	if i, ok := b.reportAt[k]; ok {
		maps.Copy(b.reports[i].values, values)
	} else {
		b.reportAt[k] = len(b.reports)
		b.reports = append(b.reports, report{k, values})
	}
	b.rmu.Unlock()
	select {
	case b.reportWake <- struct{}{}:
	default:
	}
}

// takeReports returns the queued attribute reports and empties the queue.
func (b *Bridge) takeReports() []report {
	b.rmu.Lock()
	defer b.rmu.Unlock()
	out := b.reports
	b.reports = nil
	clear(b.reportAt)
	return out
}

// reportLoop sends queued attribute reports while the session is up, in
// the order they came. Polling goroutines never wait for the upstream, and
// keep shallow stacks: encoding, sealing and publishing happen here. While
// the session is down, reports wait in the queue and every
// KeepValuesAfter their values go to the store. Connected drains the
// store, then sends the queue; until it has, reportLoop leaves the queue
// alone. Reports still queued when ctx ends go to the store.
func (b *Bridge) reportLoop(ctx context.Context) {
	tick := time.NewTicker(b.cfg.KeepValuesAfter)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			b.keepReports()
			return
		case <-tick.C:
			b.vmu.Lock()
			if !b.up.Connected() {
				b.keepReports()
			}
			b.vmu.Unlock()
			continue
		case <-b.reportWake:
		}
		b.vmu.Lock()
		if b.drained.Load() && b.up.Connected() {
			b.sendReports()
		} // else wait for Connected, which sends the queue, or the tick
		b.vmu.Unlock()
	}
}

// sendReports publishes the queued attribute reports in the order they
// came. Call it with vmu held, once the store was drained in this
// session. A report that cannot be sent because the session dropped
// goes back to the queue, to wait for the next connection or the tick.
func (b *Bridge) sendReports() {
	for _, r := range b.takeReports() {
		err := b.publish(osap.KindAttribute, osap.Header{Type: osap.TypeAttributeReport, Dev: r.dev},
			osap.AttributeReport{Resource: r.resource, Values: r.values}, b.cfg.AttributeQoS, nil)
		switch {
		case err == nil:
		case !b.up.Connected():
			b.requeue(r)
		default:
			b.log.Warn("send attribute report", "device", r.dev, "resource", r.resource, "err", err)
			b.keepValues(r.dev, r.resource, r.values)
		}
	}
}

// requeue puts back a report that could not be sent. Values queued since
// for the same resource are newer and stay.
func (b *Bridge) requeue(r report) {
	b.rmu.Lock()
	defer b.rmu.Unlock()
	i, ok := b.reportAt[r.devResource]
	if !ok {
		b.reportAt[r.devResource] = len(b.reports)
		b.reports = append(b.reports, r)
		return
	}
	for name, v := range r.values {
		if _, newer := b.reports[i].values[name]; !newer {
			b.reports[i].values[name] = v
		}
	}
}

// keepReports moves the queued reports to the store.
func (b *Bridge) keepReports() {
	for _, r := range b.takeReports() {
		b.keepValues(r.dev, r.resource, r.values)
	}
}

// keepValues keeps the newest of each value in the store, to send at the
// next connection.
func (b *Bridge) keepValues(dev, resource string, values map[string]model.Value) {
	if err := b.vals.PutValues(dev, resource, values); err != nil {
		b.log.Error("keep attribute values for later", "device", dev, "resource", resource, "err", err)
	}
}

// Event implements adapters.Sink: the event is stored durably in the
// outbox before Event returns, then sent when the session allows.
func (b *Bridge) Event(dev string, ev model.EventOccurrence) {
	b.Events(dev, []model.EventOccurrence{ev})
}

// Events implements adapters.EventBatcher: the events are stored durably,
// in order, with one write, before Events returns.
func (b *Bridge) Events(dev string, evs []model.EventOccurrence) {
	recs := make([]store.Event, 0, len(evs))
	for _, ev := range evs {
		if ev.At.IsZero() {
			ev.At = b.cfg.Now()
		}
		body, err := json.Marshal(ev)
		if err != nil {
			b.cfg.Metrics.EventsLost.Inc()
			b.log.Error("event lost: cannot encode it", "device", dev, "event", ev.Event, "err", err)
			continue
		}
		recs = append(recs, store.Event{Dev: dev, Body: body, At: ev.At})
	}
	if len(recs) == 0 {
		return
	}
	// The outbox must get the events even while the bridge is stopping.
	ctx := context.WithoutCancel(b.ctx())
	ids, err := b.ob.AppendBatch(ctx, recs)
	b.cfg.Metrics.EventsCaptured.Add(float64(len(ids)))
	if err != nil {
		lost := len(recs) - len(ids)
		b.cfg.Metrics.EventsLost.Add(float64(lost))
		b.log.Error("events lost: outbox append failed", "device", dev, "lost", lost, "err", err)
	}
	b.kick()
}

// Status implements adapters.Sink.
func (b *Bridge) Status(dev string, online bool, err error) {
	d := b.device(dev)
	if d == nil {
		return
	}
	if !d.setOnline(online, err) {
		return
	}
	if online {
		b.log.Info("device online", "device", dev)
	} else {
		b.log.Warn("device offline", "device", dev, "err", err)
	}
	if b.up.Connected() {
		typ := osap.TypeSubOffline
		if online {
			typ = osap.TypeSubOnline
		}
		_ = b.publish(osap.KindTopo, osap.Header{Type: typ}, osap.DeviceList{Devices: []string{dev}}, 1, nil)
	}
}

func (b *Bridge) ctx() context.Context {
	select {
	case <-b.running:
		return b.runCtx
	default:
		return context.Background()
	}
}

func (b *Bridge) device(id string) *device {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.devices[id]
}

// Connected implements upstream.Handler: it announces the topology,
// reports what happened while away and restarts the event sender.
func (b *Bridge) Connected(ctx context.Context) {
	b.log.Info("upstream connected")
	b.smu.Lock()
	b.epoch++
	b.sentUpTo = 0
	b.inflight = 0
	b.smu.Unlock()

	if n := b.ob.TakeOverflow(); n > 0 {
		b.Event("", model.EventOccurrence{Resource: "outbox", Event: "outbox.overflow", Params: map[string]any{"dropped": n}, At: b.cfg.Now()})
	}
	b.sendTopology()
	b.vmu.Lock()
	err := b.vals.DrainValues(func(dev, resource string, values map[string]model.Value) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return b.publish(osap.KindAttribute, osap.Header{Type: osap.TypeAttributeReport, Dev: dev},
			osap.AttributeReport{Resource: resource, Values: values}, b.cfg.AttributeQoS, nil)
	})
	if err != nil && ctx.Err() == nil {
		b.log.Warn("send kept attribute values", "err", err)
	}
	// Then the reports queued while the session was down, newer than
	// what the store kept; from now on reportLoop sends them as they come.
	b.drained.Store(true)
	b.sendReports()
	b.vmu.Unlock()
	b.kick()
}

// sendTopology announces every described device (topo.add in batches),
// then their online state, then devices removed while away.
func (b *Bridge) sendTopology() {
	b.mu.Lock()
	var models []model.Device
	var online, offline []string
	for _, id := range b.order {
		d := b.devices[id]
		m, ok := d.model()
		if !ok {
			continue // announced when its Describe succeeds
		}
		models = append(models, m)
		if d.isOnline() {
			online = append(online, id)
		} else {
			offline = append(offline, id)
		}
	}
	b.forgottenLocked()
	if len(b.removed) > 0 {
		b.sendRemovedLocked()
	}
	b.recordAnnouncedLocked()
	b.mu.Unlock()
	for i := 0; i < len(models); i += b.cfg.TopoBatch {
		batch := models[i:min(i+b.cfg.TopoBatch, len(models))]
		if err := b.publish(osap.KindTopo, osap.Header{Type: osap.TypeTopoAdd}, osap.TopoAdd{Devices: batch}, 1, nil); err != nil {
			return
		}
	}
	if len(online) > 0 {
		_ = b.publish(osap.KindTopo, osap.Header{Type: osap.TypeSubOnline}, osap.DeviceList{Devices: online}, 1, nil)
	}
	if len(offline) > 0 {
		_ = b.publish(osap.KindTopo, osap.Header{Type: osap.TypeSubOffline}, osap.DeviceList{Devices: offline}, 1, nil)
	}
}

// announce sends one device's model after it was described while the
// session was up.
func (b *Bridge) announce(m model.Device) {
	if !b.up.Connected() {
		return
	}
	_ = b.publish(osap.KindTopo, osap.Header{Type: osap.TypeTopoAdd}, osap.TopoAdd{Devices: []model.Device{m}}, 1, nil)
}

// Disconnected implements upstream.Handler.
func (b *Bridge) Disconnected(err error) {
	b.log.Warn("upstream disconnected", "err", err)
	b.drained.Store(false)
	b.smu.Lock()
	b.epoch++
	b.sentUpTo = 0
	b.inflight = 0
	b.smu.Unlock()
}

func (b *Bridge) kick() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// sendLoop publishes outbox events in id order, keeping at most Window of
// them awaiting PUBACK.
func (b *Bridge) sendLoop(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.wake:
		case <-tick.C:
		}
		b.sendSome(ctx)
	}
}

func (b *Bridge) sendSome(ctx context.Context) {
	for ctx.Err() == nil && b.up.Connected() {
		b.smu.Lock()
		room := b.cfg.Window - b.inflight
		after, epoch := b.sentUpTo, b.epoch
		b.smu.Unlock()
		if room <= 0 {
			return
		}
		recs, err := b.ob.Pending(after, room)
		if err != nil {
			b.log.Error("read outbox", "err", err)
			return
		}
		if len(recs) == 0 {
			return
		}
		for _, r := range recs {
			b.smu.Lock()
			if b.epoch != epoch {
				b.smu.Unlock()
				return
			}
			b.inflight++
			b.sentUpTo = r.ID
			b.smu.Unlock()
			id := r.ID
			h := osap.Header{ID: strconv.FormatUint(id, 10), TS: r.At.UnixMilli(), Type: osap.TypeEventReport, Dev: r.Dev}
			err := b.publish(osap.KindEvent, h, json.RawMessage(r.Body), 1, func(err error) { b.published(epoch, id, err) })
			if err != nil {
				b.smu.Lock()
				if b.epoch == epoch {
					b.inflight--
					b.sentUpTo = id - 1
				}
				b.smu.Unlock()
				return
			}
		}
	}
}

// published is called once per event publish: on PUBACK, or with an error.
func (b *Bridge) published(epoch, id uint64, err error) {
	if err == nil {
		b.acks <- id
		b.cfg.Metrics.EventsDelivered.Inc()
	}
	b.smu.Lock()
	if b.epoch == epoch {
		b.inflight--
		if err != nil {
			// Resend from the oldest unacknowledged event.
			b.epoch++
			b.sentUpTo = 0
			b.inflight = 0
		}
	}
	b.smu.Unlock()
	b.kick()
}

// ackLoop removes acknowledged events from the outbox, many per write.
func (b *Bridge) ackLoop(ctx context.Context) {
	ids := make([]uint64, 0, 256)
	flush := func() {
		if len(ids) == 0 {
			return
		}
		if err := b.ob.Ack(ids...); err != nil {
			b.log.Error("acknowledge events in the outbox", "n", len(ids), "err", err)
		}
		ids = ids[:0]
	}
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case id := <-b.acks:
					ids = append(ids, id)
				default:
					flush()
					return
				}
			}
		case id := <-b.acks:
			ids = append(ids, id)
		drain:
			for len(ids) < cap(ids) {
				select {
				case id := <-b.acks:
					ids = append(ids, id)
				default:
					break drain
				}
			}
			flush()
		}
	}
}

// errorCode maps an adapter error to a reply code of the binding.
func errorCode(err error) int {
	switch {
	case err == nil:
		return osap.CodeOK
	case errors.Is(err, adapters.ErrBadRequest):
		return osap.CodeBadRequest
	case errors.Is(err, adapters.ErrNotFound):
		return osap.CodeNotFound
	case errors.Is(err, adapters.ErrNotWritable):
		return osap.CodeNotWritable
	case errors.Is(err, adapters.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return osap.CodeTimeout
	case errors.Is(err, adapters.ErrOffline):
		return osap.CodeOffline
	}
	return osap.CodeDeviceError
}

// Downlink implements upstream.Handler: requests run on their own
// goroutines (at most MaxConcurrentRequests at once) and are answered on
// the reply topic.
func (b *Bridge) Downlink(m osap.Message) {
	b.cfg.Metrics.MessagesIn.WithLabelValues(m.Type).Inc()
	switch m.Type {
	case osap.TypeAttributeSet, osap.TypeAttributeGet, osap.TypeOperationInvoke:
	case osap.TypeTopoReply:
		if m.Code != osap.CodeOK {
			b.log.Warn("platform refused a topology message", "id", m.ID, "code", m.Code, "msg", m.Msg)
		}
		return
	default:
		b.reply(m, osap.CodeBadRequest, fmt.Sprintf("unknown message type %q", m.Type), nil)
		return
	}
	ctx := b.ctx()
	select {
	case b.reqs <- struct{}{}:
	default:
		b.reply(m, osap.CodeOffline, "gateway busy: too many requests in progress", nil)
		return
	}
	// Join b.wg under b.mu, so that Run, once it has set stopped, waits
	// for every request goroutine and none starts after it.
	b.mu.Lock()
	if b.stopped {
		b.mu.Unlock()
		<-b.reqs
		b.reply(m, osap.CodeOffline, "gateway stopping", nil)
		return
	}
	b.wg.Add(1)
	b.mu.Unlock()
	go func() {
		defer b.wg.Done()
		defer func() { <-b.reqs }()
		rctx, cancel := context.WithTimeout(ctx, b.cfg.RequestTimeout)
		defer cancel()
		body, err := b.handle(rctx, m)
		msg := ""
		if err != nil {
			msg = err.Error()
			b.log.Info("downlink request failed", "type", m.Type, "id", m.ID, "device", m.Dev, "err", err)
		}
		b.reply(m, errorCode(err), msg, body)
	}()
}

func (b *Bridge) reply(m osap.Message, code int, msg string, body any) {
	h := osap.Header{ID: m.ID, Type: osap.TypeReply, Dev: m.Dev, Code: code, Msg: msg}
	if err := b.publish(osap.KindReply, h, body, 1, nil); err != nil {
		b.log.Warn("reply not sent", "id", m.ID, "err", err)
	}
}

func (b *Bridge) handle(ctx context.Context, m osap.Message) (any, error) {
	d := b.device(m.Dev)
	if d == nil {
		return nil, fmt.Errorf("%w: no sub-device %q", adapters.ErrNotFound, m.Dev)
	}
	return d.handle(ctx, m)
}
