package bridge

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/internal/backoff"
	"github.com/osapgw/osapgw/model"
)

// device is one running sub-device: its adapter, its model once described,
// and what /status shows of it.
type device struct {
	b      *Bridge
	spec   Spec
	log    *slog.Logger
	cancel context.CancelFunc
	// stopping is closed by stop: requests in progress on the device are
	// cancelled with it, so none outlives the adapter it calls.
	stopping chan struct{}
	stopOnce sync.Once
	exited   chan struct{} // closed when the device's goroutine returns; nil if never started
	// build is spec.Build until run has called it; run then drops it, and
	// with it what the configuration kept only to build the adapter.
	build func() (adapters.Adapter, error)

	// mu guards what the device's goroutine learns and /status shows:
	// the adapter once built, the model once described, the online state,
	// the last error and the report and poll times.
	mu        sync.Mutex
	adapter   adapters.Adapter
	desc      model.Device
	described bool
	online    bool
	known     bool   // online has been reported at least once
	reason    string // why it is offline: one of offlineReasons ("" online)
	lastErr   string
	lastData  time.Time
	lastPoll  time.Time
	reports   uint64
	// bad holds the points whose last reported value is bad, by resource
	// NUL attribute (nil while there are none).
	bad map[string]BadPoint
}

func newDevice(b *Bridge, s Spec) *device {
	d := &device{b: b, spec: s, build: s.Build, log: b.log.With("device", s.ID, "kind", s.Kind), stopping: make(chan struct{})}
	d.spec.Build = nil
	return d
}

// wait returns once the device's goroutine has returned (at once if it
// never started).
func (d *device) wait() {
	if d.exited != nil {
		<-d.exited
	}
}

// stop cancels the device's goroutine; Run's WaitGroup waits for it.
func (d *device) stop() {
	d.stopOnce.Do(func() { close(d.stopping) })
	if d.cancel != nil {
		d.cancel()
	}
}

// run builds, describes and runs the adapter until ctx ends, retrying with
// backoff when the device cannot be described or its Run fails. Each step
// has a function of its own, so that while the adapter runs only small
// frames sit under it on this goroutine's stack (Go shrinks a parked
// stack only to four times what it uses).
func (d *device) run(ctx context.Context) {
	build := d.build
	d.build = nil
	if build == nil {
		return // started once already
	}
	a, err := build()
	if err != nil {
		d.setErr(err)
		d.log.Error("device not started: bad configuration", "err", err)
		return
	}
	d.mu.Lock()
	d.adapter = a
	d.mu.Unlock()
	if d.describe(ctx, a) {
		d.runAdapter(ctx, a)
	}
}

// describe gets the adapter's model, retrying with backoff, announces it,
// and reports whether the device can run (false: ctx ended, or the model
// is invalid).
func (d *device) describe(ctx context.Context, a adapters.Adapter) bool {
	bo := d.retryBackoff()
	for ctx.Err() == nil {
		m, err := a.Describe(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return false
			}
			d.setErr(err)
			d.b.Status(d.spec.ID, false, err)
			delay := bo.Next()
			d.log.Warn("describe device", "err", err, "retry_in_seconds", delay.Seconds())
			if !backoff.Sleep(ctx, delay) {
				return false
			}
			continue
		}
		if m.ID == "" {
			m.ID = d.spec.ID
		}
		if m.Kind == "" {
			m.Kind = d.spec.Kind
		}
		if m.Name == "" {
			m.Name = d.spec.Name
		}
		if err := m.Validate(); err != nil {
			d.setErr(err)
			d.log.Error("device model is invalid", "err", err)
			return false
		}
		d.mu.Lock()
		d.desc, d.described = m, true
		d.mu.Unlock()
		d.b.announce(m)
		return true
	}
	return false
}

// retryBackoff is the delay before describing or starting the adapter
// again: it doubles from DescribeRetry to a minute (or DescribeRetry, if
// longer).
func (d *device) retryBackoff() *backoff.Backoff {
	return &backoff.Backoff{Min: d.b.cfg.DescribeRetry, Max: max(time.Minute, d.b.cfg.DescribeRetry)}
}

// runAdapter runs the adapter until ctx ends, restarting it with backoff
// when it fails.
func (d *device) runAdapter(ctx context.Context, a adapters.Adapter) {
	bo := d.retryBackoff()
	for ctx.Err() == nil {
		started := time.Now()
		err := a.Run(ctx, d.b)
		if ctx.Err() != nil || !d.adapterStopped(ctx, err, started, bo) {
			return
		}
	}
}

// adapterStopped records that the adapter's Run returned err, and waits
// before the next start. It returns false if ctx ended meanwhile.
func (d *device) adapterStopped(ctx context.Context, err error, started time.Time, bo *backoff.Backoff) bool {
	if err == nil {
		err = fmt.Errorf("adapter stopped by itself")
	}
	d.setErr(err)
	d.b.Status(d.spec.ID, false, err)
	if time.Since(started) > time.Minute {
		bo.Reset() // it ran a good while: start again from the first delay
	}
	delay := bo.Next()
	d.log.Error("device adapter stopped", "err", err, "retry_in_seconds", delay.Seconds())
	return backoff.Sleep(ctx, delay)
}

func (d *device) setErr(err error) {
	d.mu.Lock()
	d.lastErr = err.Error()
	d.mu.Unlock()
	d.b.cfg.Metrics.DeviceErrors.WithLabelValues(d.spec.ID).Inc()
}

// Why a sub-device is offline: the bounded set of reasons /status and the
// osapgw_device_offline_reason metric show.
const (
	// ReasonUnreachable: the device cannot be reached (connection
	// refused, no route, link down).
	ReasonUnreachable = "unreachable"
	// ReasonTimeout: the device did not answer in time.
	ReasonTimeout = "timeout"
	// ReasonCredentials: the device refused the gateway's credentials.
	ReasonCredentials = "credentials"
	// ReasonProtocol: the device answered, but not as it should (faults,
	// garbage, an error the adapter could not place).
	ReasonProtocol = "protocol"
)

// offlineReasons are the reasons, in the order the metric lists them.
var offlineReasons = []string{ReasonUnreachable, ReasonTimeout, ReasonCredentials, ReasonProtocol}

// offlineReason places the error a device went offline with among
// offlineReasons, by the sentinels of package adapters (and net.Error for
// adapters that return network errors as they come).
func offlineReason(err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return ReasonUnreachable
	case errors.Is(err, adapters.ErrUnauthorized):
		return ReasonCredentials
	case errors.Is(err, adapters.ErrTimeout), errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return ReasonTimeout
	case errors.Is(err, adapters.ErrOffline), errors.As(err, &ne):
		return ReasonUnreachable
	}
	return ReasonProtocol
}

// setOnline records the state, and why the device is offline, and
// reports whether the state changed.
func (d *device) setOnline(online bool, err error) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.lastErr = err.Error()
	}
	changed := !d.known || d.online != online
	d.online, d.known = online, true
	v := 0.0
	d.reason = ""
	if online {
		v = 1
	} else {
		d.reason = offlineReason(err)
	}
	d.b.cfg.Metrics.DeviceOnline.WithLabelValues(d.spec.ID, d.spec.Kind).Set(v)
	for _, r := range offlineReasons {
		x := 0.0
		if r == d.reason {
			x = 1
		}
		d.b.cfg.Metrics.DeviceOfflineReason.WithLabelValues(d.spec.ID, r).Set(x)
	}
	return changed
}

// refusedLocked returns an error wrapping adapters.ErrUnauthorized when the
// device is offline because it refused the gateway's credentials, and
// nil otherwise: a request to it is answered 401, not 503, as trying
// again later will not help.
func (d *device) refusedLocked() error {
	if d.known && !d.online && d.reason == ReasonCredentials {
		return fmt.Errorf("%w: sub-device %q is offline: %s", adapters.ErrUnauthorized, d.spec.ID, d.lastErr)
	}
	return nil
}

func (d *device) isOnline() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.online
}

func (d *device) model() (model.Device, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.desc, d.described
}

// reported records a report of values of resource: when, and which
// points are bad now.
func (d *device) reported(resource string, values map[string]model.Value) {
	d.mu.Lock()
	d.lastData = d.b.cfg.Now()
	d.reports++
	nbad, changed := len(d.bad), false
	for name, v := range values {
		if v.Quality != model.QualityBad {
			if d.bad != nil {
				delete(d.bad, resource+"\x00"+name)
			}
			continue
		}
		k := resource + "\x00" + name
		if old, ok := d.bad[k]; ok && old.Err == v.Err {
			continue
		}
		if d.bad == nil {
			d.bad = map[string]BadPoint{}
		}
		d.bad[k] = BadPoint{Resource: resource, Attribute: name, Err: v.Err, Since: v.At}
		changed = true
	}
	if changed || len(d.bad) != nbad {
		d.b.cfg.Metrics.PointsBad.WithLabelValues(d.spec.ID).Set(float64(len(d.bad)))
	}
	d.mu.Unlock()
	d.b.cfg.Metrics.DeviceReports.WithLabelValues(d.spec.ID).Inc()
}

// BadPoint is an attribute whose last reported value is bad.
type BadPoint struct {
	Resource  string `json:"resource"`
	Attribute string `json:"attribute"`
	// Err is the reason it is bad.
	Err string `json:"err"`
	// Since is when it went bad, or its reason changed.
	Since time.Time `json:"since"`
}

// DeviceStatus is what /status shows of one sub-device.
type DeviceStatus struct {
	ID    string `json:"id"`
	Kind  string `json:"kind"`
	Name  string `json:"name,omitempty"`
	State string `json:"state"`
	// OfflineReason says why the device is offline: unreachable,
	// timeout, credentials (it refused the gateway's credentials) or
	// protocol; empty while it is online or starting.
	OfflineReason string    `json:"offline_reason,omitempty"`
	LastData      time.Time `json:"last_data,omitzero"`
	LastPoll      time.Time `json:"last_poll,omitzero"`
	Reports       uint64    `json:"reports"`
	LastError     string    `json:"last_error,omitempty"`
	// BadPoints are the attributes whose last reported value is bad,
	// sorted by resource and attribute.
	BadPoints []BadPoint `json:"bad_points,omitempty"`
}

func (d *device) status() DeviceStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	state := "starting"
	switch {
	case d.known && d.online:
		state = "online"
	case d.known:
		state = "offline"
	}
	st := DeviceStatus{ID: d.spec.ID, Kind: d.spec.Kind, Name: d.spec.Name, State: state, OfflineReason: d.reason, LastData: d.lastData, LastPoll: d.lastPoll, Reports: d.reports, LastError: d.lastErr}
	for _, p := range d.bad {
		st.BadPoints = append(st.BadPoints, p)
	}
	slices.SortFunc(st.BadPoints, func(a, b BadPoint) int {
		return cmp.Or(strings.Compare(a.Resource, b.Resource), strings.Compare(a.Attribute, b.Attribute))
	})
	return st
}

// Devices returns the state of every sub-device, in configuration order.
func (b *Bridge) Devices() []DeviceStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]DeviceStatus, 0, len(b.order))
	for _, id := range b.order {
		if d, ok := b.devices[id]; ok {
			out = append(out, d.status())
		}
	}
	return out
}

// Polled implements adapters.PollObserver. A poll is counted ok, partial
// (err is an adapters.PointErrors: each of its points is counted too) or
// error.
func (b *Bridge) Polled(dev string, took time.Duration, err error) {
	d := b.device(dev)
	if d == nil {
		return
	}
	d.mu.Lock()
	d.lastPoll = b.cfg.Now()
	d.mu.Unlock()
	result := "ok"
	var bad adapters.PointErrors
	switch {
	case errors.As(err, &bad):
		result = "partial"
		for _, p := range bad {
			b.cfg.Metrics.PointErrors.WithLabelValues(dev, p.Resource, p.Attribute).Inc()
		}
	case err != nil:
		result = "error"
	}
	b.cfg.Metrics.Polls.WithLabelValues(dev, result).Inc()
	b.cfg.Metrics.PollDuration.WithLabelValues(dev).Observe(took.Seconds())
}
