package modbus

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	sim "github.com/osapgw/osapgw/sim/modbus"
)

// Serial recovery (issue 15, item 5): a unit whose RS-485 cable is pulled
// for 10 s, and a serial port whose device node vanishes for 10 s, are
// online again within skip_for of their return (4 s by default), and a
// dead unit does not stall the other units of its bus. The figures these
// tests log are in docs/performance.md ("Serial recovery (issue 15)").
// Together they take about 28 s (they skip with -short): a run of the
// package with -count=20 needs -timeout above go test's default 10m.

// outage is how long a cable stays pulled in these tests, as in the issue.
const outage = 10 * time.Second

// recoveryConf is a unit polled every 250 ms with default skip_for: the
// probe backoff under test is the one an operator gets.
func recoveryConf(url string, unit int) string {
	return fmt.Sprintf(`url = %q
unit = %d
timeout = "300ms"
poll = "250ms"
offline_after = 2
[[attribute]]
name = "temperature"
table = "input"
address = 0
type = "float32"
`, url, unit)
}

// timedSink is a recorder that also keeps when the unit's polls got an
// answer and when its online state was reported.
type timedSink struct {
	*recorder
	mu       sync.Mutex
	answered []time.Time // polls that got an answer
	statusAt []time.Time // parallel to recorder.status
}

func newTimedSink() *timedSink { return &timedSink{recorder: newRecorder()} }

func (s *timedSink) Polled(dev string, took time.Duration, err error) {
	s.recorder.Polled(dev, took, err)
	if err == nil {
		s.mu.Lock()
		s.answered = append(s.answered, time.Now())
		s.mu.Unlock()
	}
}

func (s *timedSink) Status(dev string, online bool, err error) {
	s.mu.Lock()
	s.statusAt = append(s.statusAt, time.Now())
	s.recorder.Status(dev, online, err)
	s.mu.Unlock()
}

// onlineAfter returns when the unit was first reported online at or after
// t0, and whether it was.
func (s *timedSink) onlineAfter(t0 time.Time) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recorder.mu.Lock()
	defer s.recorder.mu.Unlock()
	for i, on := range s.recorder.status {
		if on && !s.statusAt[i].Before(t0) {
			return s.statusAt[i], true
		}
	}
	return time.Time{}, false
}

// polls returns the answered polls between from and to, and the longest
// time in that span without one.
func (s *timedSink) polls(from, to time.Time) (n int, maxGap time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	last := from
	for _, at := range s.answered {
		if at.Before(from) || at.After(to) {
			continue
		}
		n++
		maxGap = max(maxGap, at.Sub(last))
		last = at
	}
	return n, max(maxGap, to.Sub(last))
}

// TestRTUCablePulled: two units on one RTU bus (a socat pty pair); unit
// 2's cable is pulled for 10 s and put back just after a probe went out.
// Unit 2 is reported offline, then online again within skip_for of its
// return; unit 1 is polled at its cadence all along, and unit 2 costs the
// bus one request per probe.
func TestRTUCablePulled(t *testing.T) {
	if testing.Short() {
		t.Skip("serial peer, 10 s outage: skipped with -short")
	}
	pa, pb := ptyPair(t)
	port, err := sim.OpenSerial(pa)
	if err != nil {
		t.Fatal(err)
	}
	sensors := map[byte]*sim.Sensor{1: sim.NewSensor(time.Hour, 0), 2: sim.NewSensor(time.Hour, 0)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sim.NewServer(sensors).ServeRTU(ctx, port) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sim ServeRTU() = %v", err)
		}
	})

	pool := NewPool()
	sinks := map[int]*timedSink{}
	for _, u := range []int{1, 2} {
		a, err := New(fmt.Sprintf("rtu-%d", u), adaptersTOML(recoveryConf("rtu://"+pb, u)), envForTest(t), WithPool(pool))
		if err != nil {
			t.Fatal(err)
		}
		if a.dev.skipFor != DefaultSkipFor {
			t.Fatalf("skip_for = %v, want the default %v", a.dev.skipFor, DefaultSkipFor)
		}
		sinks[u] = newTimedSink()
		runAdapter(t, a, sinks[u])
	}
	for _, u := range []int{1, 2} {
		waitFor(t, fmt.Sprintf("unit %d online", u), func() bool { on, _ := sinks[u].lastStatus(); return on })
	}

	pulled := time.Now()
	before := sensors[2].Requests()
	sensors[2].SetFault(sim.Fault{Drop: true})
	waitFor(t, "unit 2 offline", func() bool { on, _ := sinks[2].lastStatus(); return !on })
	// The outage itself: the cable stays out for its 10 s, whatever the
	// adapter does meanwhile; then it comes back just after a probe went
	// out unanswered, the worst moment: the next probe is the one to find
	// it, up to skip_for later.
	time.Sleep(time.Until(pulled.Add(outage)))
	seen := sensors[2].Requests()
	waitFor(t, "a probe of unit 2", func() bool { return sensors[2].Requests() > seen })
	sensors[2].SetFault(sim.Fault{})
	back := time.Now()
	during := sensors[2].Requests() - before
	out := back.Sub(pulled)

	var online time.Time
	waitFor(t, "unit 2 online again", func() bool {
		var ok bool
		online, ok = sinks[2].onlineAfter(back)
		return ok
	})
	took := online.Sub(back)
	t.Logf("unit 2 online %.2f s after its cable returned (skip_for %v, outage %.1f s, returned just after an unanswered probe)", took.Seconds(), DefaultSkipFor, out.Seconds())

	// Unit 1 went on: polled all along, never waiting long for the bus.
	n, gap := sinks[1].polls(pulled, online)
	t.Logf("unit 1: %d answered polls in the %.1f s from the pull to unit 2's return online, longest gap %.2f s (poll 250 ms)", n, online.Sub(pulled).Seconds(), gap.Seconds())
	if want := int(out / time.Second); n < want {
		t.Errorf("unit 1 answered %d polls while unit 2 was out, want at least %d (one a second of the %.1f s)", n, want, out.Seconds())
	}
	if gap > 3*time.Second {
		t.Errorf("unit 1 went %v without an answered poll while unit 2 was out, want at most 3s", gap)
	}
	// Unit 2 cost its bus the polls that found it silent (offline_after
	// 2, up to 2 reads each) and one probe at most per FirstProbe.
	if limit := uint64(2*2 + out/FirstProbe + 1); during > limit {
		t.Errorf("unit 2 got %d requests during its %.1f s outage, want at most %d", during, out.Seconds(), limit)
	}
	on1, _ := sinks[1].lastStatus()
	if !on1 {
		t.Error("unit 1 reported offline during unit 2's outage")
	}
}

// serialDevice is a serial port whose device node comes and goes: a socat
// pty pair at fixed paths, the simulator serving one end.
type serialDevice struct {
	t       *testing.T
	socat   string
	pa, pb  string
	sensors map[byte]*sim.Sensor
	stop    func() // nil while unplugged
}

func newSerialDevice(t *testing.T, sensors map[byte]*sim.Sensor) *serialDevice {
	socat := needSocat(t)
	dir := t.TempDir()
	d := &serialDevice{t: t, socat: socat, pa: filepath.Join(dir, "A"), pb: filepath.Join(dir, "B"), sensors: sensors}
	t.Cleanup(d.unplug)
	d.plug()
	return d
}

// plug creates the pty pair at the device's paths and serves it.
func (d *serialDevice) plug() {
	t := d.t
	t.Helper()
	cmd := exec.Command(d.socat, "pty,raw,echo=0,link="+d.pa, "pty,raw,echo=0,link="+d.pb)
	cmd.Stderr = testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "socat ptys", func() bool {
		_, err1 := os.Stat(d.pa)
		_, err2 := os.Stat(d.pb)
		return err1 == nil && err2 == nil
	})
	port, err := sim.OpenSerial(d.pa)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sim.NewServer(d.sensors).ServeRTU(ctx, port) }()
	d.stop = func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		cancel()
		<-done // the port failed or was closed: either way it is over
	}
}

// unplug stops socat and removes the device nodes' paths: a USB adapter
// pulled out.
func (d *serialDevice) unplug() {
	if d.stop == nil {
		return
	}
	d.stop()
	d.stop = nil
	for _, p := range []string{d.pa, d.pb} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			d.t.Errorf("remove %s: %v", p, err)
		}
	}
}

// TestSerialPortVanishes: the serial port's device node disappears for
// 10 s (a USB adapter pulled out) and comes back at the same path. The
// unit is reported offline, and online again within skip_for of the port's
// return: the port is reopened with a short backoff.
func TestSerialPortVanishes(t *testing.T) {
	if testing.Short() {
		t.Skip("serial peer, 10 s outage: skipped with -short")
	}
	dev := newSerialDevice(t, map[byte]*sim.Sensor{1: sim.NewSensor(time.Hour, 0)})
	a, err := New("rtu-1", adaptersTOML(recoveryConf("rtu://"+dev.pb, 1)), envForTest(t), WithPool(NewPool()))
	if err != nil {
		t.Fatal(err)
	}
	sink := newTimedSink()
	runAdapter(t, a, sink)
	waitFor(t, "online", func() bool { on, _ := sink.lastStatus(); return on })

	pulled := time.Now()
	dev.unplug()
	if _, err := os.Stat(dev.pb); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat %s after unplug = %v, want it gone", dev.pb, err)
	}
	waitFor(t, "offline", func() bool { on, _ := sink.lastStatus(); return !on })
	time.Sleep(time.Until(pulled.Add(outage))) // the outage itself
	dev.plug()
	back := time.Now()

	var online time.Time
	waitFor(t, "online again", func() bool {
		var ok bool
		online, ok = sink.onlineAfter(back)
		return ok
	})
	t.Logf("online %.2f s after the serial port returned (skip_for %v, outage %v)", online.Sub(back).Seconds(), DefaultSkipFor, outage)
}
