package bridge

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/osapgw/osapgw/model"
	"github.com/osapgw/osapgw/osap"
)

// devResource names one resource of one sub-device.
type devResource struct{ dev, resource string }

// report is a pending attribute report.
type report struct {
	devResource
	values map[string]model.Value
}

// reportQueue holds the attribute reports waiting for reportLoop: one per
// device and resource, newer values merged into older ones, in the order
// they came.
type reportQueue struct {
	wake chan struct{} // a report was queued

	// mu guards reports and at.
	mu      sync.Mutex
	reports []report
	at      map[devResource]int // index in reports
}

func newReportQueue() reportQueue {
	return reportQueue{wake: make(chan struct{}, 1), at: map[devResource]int{}}
}

// put queues values of k, merging them into a queued report of k (the
// newest values winning), and wakes reportLoop.
func (q *reportQueue) put(k devResource, values map[string]model.Value) {
	q.mu.Lock()
	if i, ok := q.at[k]; ok {
		maps.Copy(q.reports[i].values, values)
	} else {
		q.at[k] = len(q.reports)
		q.reports = append(q.reports, report{k, values})
	}
	q.mu.Unlock()
	q.kick()
}

// kick wakes reportLoop.
func (q *reportQueue) kick() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take returns the queued reports and empties the queue.
func (q *reportQueue) take() []report {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.reports
	q.reports = nil
	clear(q.at)
	return out
}

// requeue puts back a report that could not be sent. Values queued since
// for the same resource are newer and stay.
func (q *reportQueue) requeue(r report) {
	q.mu.Lock()
	defer q.mu.Unlock()
	i, ok := q.at[r.devResource]
	if !ok {
		q.at[r.devResource] = len(q.reports)
		q.reports = append(q.reports, r)
		return
	}
	for name, v := range r.values {
		if _, newer := q.reports[i].values[name]; !newer {
			q.reports[i].values[name] = v
		}
	}
}

// Attributes implements adapters.Sink. It takes values (the caller must
// not touch the map again), queues them for reportLoop and returns at
// once. Queued reports of one resource are merged, the newest values
// winning, so the queue holds at most one report per resource however
// long the upstream stalls or stays down.
func (b *Bridge) Attributes(dev, resource string, values map[string]model.Value) {
	if d := b.device(dev); d != nil {
		d.reported(resource, values)
	}
	b.reports.put(devResource{dev, resource}, values)
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
		case <-b.reports.wake:
		}
		b.vmu.Lock()
		if b.drained.Load() && b.up.Connected() {
			b.sendReports()
		} // else wait for Connected, which sends the queue, or the tick
		b.vmu.Unlock()
	}
}

// sendReports publishes the queued attribute reports in the order they
// came. Call it with vmu held, once the store was drained in this session.
// A report that cannot be sent because the session dropped goes back to
// the queue, to wait for the next connection or the tick.
func (b *Bridge) sendReports() {
	for _, r := range b.reports.take() {
		err := b.publish(osap.KindAttribute, osap.Header{Type: osap.TypeAttributeReport, Dev: r.dev},
			osap.AttributeReport{Resource: r.resource, Values: r.values}, b.cfg.AttributeQoS, nil)
		switch {
		case err == nil:
		case !b.up.Connected():
			b.reports.requeue(r)
		default:
			b.log.Warn("send attribute report", "device", r.dev, "resource", r.resource, "err", err)
			b.keepValues(r.dev, r.resource, r.values)
		}
	}
}

// keepReports moves the queued reports to the store.
func (b *Bridge) keepReports() {
	for _, r := range b.reports.take() {
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
