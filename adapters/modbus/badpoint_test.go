package modbus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/model"
	sim "github.com/osapgw/osapgw/sim/modbus"
)

// Polled records the poll errors the recorder is given.
func (r *recorder) Polled(dev string, took time.Duration, err error) {
	r.mu.Lock()
	r.polls = append(r.polls, err)
	r.mu.Unlock()
}

// lastPoll returns the error of the last poll observed.
func (r *recorder) lastPoll() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.polls) == 0 {
		return errors.New("no poll observed")
	}
	return r.polls[len(r.polls)-1]
}

// stepper polls an adapter one poll at a time, on a link of its own, so a
// test sees what each poll asked the simulator and reported.
type stepper struct {
	t   *testing.T
	p   *poller
	sn  *sim.Sensor
	rec *recorder
}

func newStepper(t *testing.T, conf string, unit byte) (*stepper, *Adapter) {
	t.Helper()
	url, _, sensors := simTCP(t, time.Hour, 1)
	a, err := New("meter-1", adaptersTOML(fmt.Sprintf("url = %q\nunit = %d\n", url, unit)+conf), envForTest(t), WithPool(NewPool()))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.groups) != 1 {
		t.Fatalf("%d poll groups, want 1", len(a.groups))
	}
	sl := a.pool.acquire(a.dev.link, 0)
	t.Cleanup(func() { a.pool.release(sl) })
	rec := newRecorder()
	return &stepper{t: t, p: newPoller(a, sl, rec), sn: sensors[1], rec: rec}, a
}

// poll polls once and returns how many requests the simulator got.
func (s *stepper) poll() int {
	s.t.Helper()
	var n uint64
	if s.sn != nil {
		n = s.sn.Requests()
	}
	if !s.p.poll(context.Background(), 0) {
		s.t.Fatal("poll() = false")
	}
	if s.sn == nil {
		return 0
	}
	return int(s.sn.Requests() - n)
}

// plan returns the group's reads as "table address+count".
func (s *stepper) plan() []string {
	var out []string
	for _, pr := range s.p.plans[0] {
		out = append(out, fmt.Sprintf("%s %d+%d", pr.Table, pr.Address, pr.Count))
	}
	return out
}

// retryNow makes the reads left alone due at the next poll.
func (s *stepper) retryNow() {
	for i := range s.p.plans[0] {
		s.p.plans[0][i].retryAt = time.Time{}
	}
}

// pointErrors returns the bad points of the last poll as "name: reason".
func (s *stepper) pointErrors() []string {
	err := s.rec.lastPoll()
	if err == nil {
		return nil
	}
	var pe adapters.PointErrors
	if !errors.As(err, &pe) {
		return []string{"not a PointErrors: " + err.Error()}
	}
	var out []string
	for _, p := range pe {
		out = append(out, p.Attribute+": "+p.Reason)
	}
	return out
}

const exc2 = "exception 2 (illegal data address)"

// meterConf maps the simulator's input registers, plus "ghost" at 31-32,
// past the end of its 32 input registers: a read of it answers exception
// 2. max_gap makes one read of them all.
const meterConf = `timeout = "300ms"
max_gap = 30
skip_for = "1h"
[[attribute]]
name = "temperature"
table = "input"
address = 0
type = "float32"
[[attribute]]
name = "humidity"
table = "input"
address = 2
type = "float32"
[[attribute]]
name = "pressure"
table = "input"
address = 4
scale = 0.1
[[attribute]]
name = "running"
table = "input"
address = 5
type = "bool"
bit = 0
[[attribute]]
name = "uptime"
table = "input"
address = 6
type = "uint32"
[[attribute]]
name = "ghost"
table = "input"
address = 31
type = "float32"
`

// TestBadPointSplitsTheRead: a point the unit refuses is reported bad, its
// good neighbours in the same read are reported in the same poll, the plan
// keeps them apart, a point that goes bad later is split off too, and a
// point that recovers is reported good.
func TestBadPointSplitsTheRead(t *testing.T) {
	s, a := newStepper(t, meterConf, 1)
	if got := a.Requests(); len(got) != 1 || got[0].Count != 33 {
		t.Fatalf("planned reads %v, want one of input 0..32", got)
	}

	// Poll 1: the merged read answers exception 2; it is split, and the
	// good points are reported with the bad one.
	s.poll()
	if diff := cmp.Diff([]string{"input 0+8", "input 31+2"}, s.plan()); diff != "" {
		t.Errorf("plan after the split mismatch (-want +got):\n%s", diff)
	}
	for _, name := range []string{"temperature", "humidity", "pressure", "running", "uptime"} {
		if v := s.rec.full("main", name); v.Quality != model.QualityGood || v.V == nil {
			t.Errorf("%s = %+v after the first poll, want a good value", name, v)
		}
	}
	if v := s.rec.full("main", "ghost"); v.Quality != model.QualityBad || v.Err != exc2 || v.V != nil || v.At.IsZero() {
		t.Errorf("ghost = %+v, want bad: %s", v, exc2)
	}
	if diff := cmp.Diff([]string{"ghost: " + exc2}, s.pointErrors()); diff != "" {
		t.Errorf("poll errors mismatch (-want +got):\n%s", diff)
	}
	if on, _ := s.rec.lastStatus(); !on {
		t.Error("unit not online after a poll it answered with an exception")
	}

	// Poll 2: one read; the bad point is left alone, and not reported
	// again (nothing changed), but still counted bad.
	if n := s.poll(); n != 1 {
		t.Errorf("second poll made %d requests, want 1 (the good read; ghost left alone)", n)
	}
	if n := s.rec.count("ghost"); n != 1 {
		t.Errorf("ghost reported %d times, want once", n)
	}
	if diff := cmp.Diff([]string{"ghost: " + exc2}, s.pointErrors()); diff != "" {
		t.Errorf("second poll errors mismatch (-want +got):\n%s", diff)
	}

	// Pressure goes bad: its read is split again.
	s.sn.SetFault(sim.Fault{Exception: sim.IllegalDataAddress, From: 4, To: 4})
	s.poll()
	if diff := cmp.Diff([]string{"input 0+4", "input 4+1", "input 5+3", "input 31+2"}, s.plan()); diff != "" {
		t.Errorf("plan after pressure failed mismatch (-want +got):\n%s", diff)
	}
	if v := s.rec.full("main", "pressure"); v.Quality != model.QualityBad || v.Err != exc2 {
		t.Errorf("pressure = %+v, want bad", v)
	}
	if n := s.rec.count("temperature"); n != 1 {
		t.Errorf("temperature reported %d times, want once (it did not change)", n)
	}
	if n := s.poll(); n != 2 {
		t.Errorf("poll after the second split made %d requests, want 2", n)
	}

	// Pressure recovers; ghost does not.
	s.sn.SetFault(sim.Fault{})
	s.retryNow()
	if n := s.poll(); n != 4 {
		t.Errorf("poll retrying the bad reads made %d requests, want 4", n)
	}
	if v := s.rec.full("main", "pressure"); v.Quality != model.QualityGood || v.V != 1013.0 {
		t.Errorf("pressure = %+v after it recovered, want good, 1013", v)
	}
	if n := s.rec.count("ghost"); n != 1 {
		t.Errorf("ghost reported %d times, want once (same reason)", n)
	}
	// At report_every the bad state is reported again.
	a.dev.reportEvery = time.Nanosecond
	s.poll()
	if n := s.rec.count("ghost"); n != 2 {
		t.Errorf("ghost reported %d times after report_every, want twice", n)
	}
}

// TestSilentPoint: a read the unit does not answer while it answers the
// others makes its points bad, and does not stall the poll; a unit that
// stops answering altogether is offline, its points not bad.
func TestSilentPoint(t *testing.T) {
	s, a := newStepper(t, `timeout = "300ms"
max_gap = 0
skip_for = "1h"
offline_after = 1
[[attribute]]
name = "temperature"
table = "input"
address = 0
type = "float32"
[[attribute]]
name = "pressure"
table = "input"
address = 4
[[attribute]]
name = "uptime"
table = "input"
address = 6
type = "uint32"
[[attribute]]
name = "energy"
table = "input"
address = 20
type = "float64"
`, 1)
	if got := a.Requests(); len(got) != 4 {
		t.Fatalf("planned reads %v, want one per attribute", got)
	}
	s.sn.SetFault(sim.Fault{Drop: true, From: 4, To: 4}) // pressure
	s.poll()
	want := "no answer within 300ms"
	if v := s.rec.full("main", "pressure"); v.Quality != model.QualityBad || v.Err != want {
		t.Errorf("pressure = %+v, want bad: %s", v, want)
	}
	for _, name := range []string{"temperature", "uptime", "energy"} {
		if v := s.rec.full("main", name); v.Quality != model.QualityGood {
			t.Errorf("%s = %+v, want good", name, v)
		}
	}
	if diff := cmp.Diff([]string{"pressure: " + want}, s.pointErrors()); diff != "" {
		t.Errorf("poll errors mismatch (-want +got):\n%s", diff)
	}
	if on, _ := s.rec.lastStatus(); !on {
		t.Error("unit offline, want online: it answers its other reads")
	}
	if n := s.poll(); n != 3 {
		t.Errorf("second poll made %d requests, want 3 (pressure left alone)", n)
	}

	// The unit dies: the poll stops at the second read without an answer.
	s.sn.SetFault(sim.Fault{Drop: true})
	if n := s.poll(); n != 2 {
		t.Errorf("poll of a dead unit made %d requests, want 2", n)
	}
	if on, _ := s.rec.lastStatus(); on {
		t.Error("unit online after a poll it did not answer")
	}
	if err := s.rec.lastPoll(); !errors.Is(err, adapters.ErrTimeout) {
		t.Errorf("poll error = %v, want a timeout", err)
	}
	for _, name := range []string{"temperature", "uptime"} {
		if v := s.rec.full("main", name); v.Quality != model.QualityGood {
			t.Errorf("%s = %+v after the unit died, want its last good value (the unit is offline, not the point bad)", name, v)
		}
	}
}

// TestGatewayExceptionIsNoAnswer: a unit missing behind a TCP gateway
// (exception 11) is a unit that does not answer, not a map of bad points.
func TestGatewayExceptionIsNoAnswer(t *testing.T) {
	s, _ := newStepper(t, "offline_after = 1\n"+meterConf, 9)
	s.sn = nil
	s.poll()
	if on, known := s.rec.lastStatus(); on || !known {
		t.Errorf("unit 9 status = online %v (known %v), want offline", on, known)
	}
	if err := s.rec.lastPoll(); err == nil || !strings.Contains(err.Error(), "gateway target device failed to respond") {
		t.Errorf("poll error = %v, want the gateway's exception", err)
	}
	if len(s.rec.values) != 0 {
		t.Errorf("values reported for a missing unit: %v", s.rec.values)
	}
}

// TestGetBadPoint: Get answers the good points and the bad ones with
// their reasons.
func TestGetBadPoint(t *testing.T) {
	_, a := newStepper(t, meterConf, 1)
	got, err := a.Get(context.Background(), "main", []string{"temperature", "ghost", "pressure"})
	if err != nil {
		t.Fatal(err)
	}
	if v := got["ghost"]; v.Quality != model.QualityBad || v.Err != exc2 {
		t.Errorf("Get ghost = %+v, want bad: %s", v, exc2)
	}
	if v := got["pressure"]; v.Quality != model.QualityGood || v.V != 1013.0 {
		t.Errorf("Get pressure = %+v, want good, 1013", v)
	}
	if len(got) != 3 {
		t.Errorf("Get = %v, want 3 values", got)
	}
}
