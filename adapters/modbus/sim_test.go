package modbus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/model"
	sim "github.com/osapgw/osapgw/sim/modbus"
)

// simTCP serves sensors for units on 127.0.0.1 until the test ends.
func simTCP(t testing.TB, change time.Duration, units ...byte) (string, *sim.Server, map[byte]*sim.Sensor) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sensors := map[byte]*sim.Sensor{}
	for _, u := range units {
		sensors[u] = sim.NewSensor(change, 0)
	}
	srv := sim.NewServer(sensors)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeTCP(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sim ServeTCP() = %v", err)
		}
	})
	return "tcp://" + ln.Addr().String(), srv, sensors
}

// sensorConf maps the simulator's registers (see sim/modbus).
func sensorConf(url string, unit int, extra string) string {
	return fmt.Sprintf(`url = %q
unit = %d
timeout = "300ms"
poll = "30ms"
skip_for = "200ms"
offline_after = 2
%s
[[attribute]]
name = "temperature"
area = "environment"
table = "input"
address = 0
type = "float32"
unit = "°C"
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
name = "alarm_bit"
table = "input"
address = 5
type = "bool"
bit = 1
[[attribute]]
name = "temperature_x100"
table = "input"
address = 8
type = "int32"
order = "CDAB"
scale = 0.01
[[attribute]]
name = "status_text"
table = "input"
address = 10
type = "string"
length = 8
[[attribute]]
name = "energy"
table = "input"
address = 20
type = "float64"
[[attribute]]
name = "ticks"
table = "input"
address = 24
type = "uint64"
order = "DCBA"
[[attribute]]
name = "setpoint"
area = "control"
table = "holding"
address = 0
type = "int16"
scale = 0.1
writable = true
read_back = true
min = 5.0
max = 35.0
[[attribute]]
name = "mode"
area = "control"
table = "holding"
address = 1
writable = true
[[attribute]]
name = "alarm_limit"
area = "control"
table = "holding"
address = 2
type = "float32"
writable = true
[[attribute]]
name = "flag"
area = "control"
table = "holding"
address = 50
type = "bool"
bit = 2
writable = true
read_back = true
[[attribute]]
name = "far_register"
resource = "service"
table = "holding"
address = 60
poll = "60ms"
[[attribute]]
name = "alarm"
table = "coil"
address = 0
[[attribute]]
name = "heater"
table = "coil"
address = 1
writable = true
[[attribute]]
name = "door"
table = "discrete"
address = 0
[[event]]
name = "warm"
attribute = "temperature"
above = 10.0
hysteresis = 1.0
[[event]]
name = "alarm_changed"
attribute = "alarm"
on_change = true
[[operation]]
name = "set_mode"
[[operation.param]]
name = "mode"
type = "int"
min = 0.0
max = 3.0
[[operation.write]]
table = "holding"
address = 1
value = "{mode}"
[[operation]]
name = "reset_alarm"
[[operation.write]]
table = "holding"
address = 10
value = 1
`, url, unit, extra)
}

// recorder is a Sink that keeps everything it is given.
type recorder struct {
	mu     sync.Mutex
	values map[string]map[string]model.Value // resource -> latest
	counts map[string]int                    // attribute -> reports
	events []model.EventOccurrence
	status []bool
	errs   []error
	polls  []error // what Polled was given
}

func newRecorder() *recorder {
	return &recorder{values: map[string]map[string]model.Value{}, counts: map[string]int{}}
}

func (r *recorder) Attributes(dev, res string, vs map[string]model.Value) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.values[res] == nil {
		r.values[res] = map[string]model.Value{}
	}
	for k, v := range vs {
		r.values[res][k] = v
		r.counts[k]++
	}
}

func (r *recorder) Event(dev string, ev model.EventOccurrence) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

func (r *recorder) Status(dev string, online bool, err error) {
	r.mu.Lock()
	r.status = append(r.status, online)
	r.errs = append(r.errs, err)
	r.mu.Unlock()
}

func (r *recorder) value(res, name string) (any, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.values[res][name]
	return v.V, ok
}

// full returns the last value of res/name as reported, quality and
// reason included.
func (r *recorder) full(res, name string) model.Value {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.values[res][name]
}

func (r *recorder) lastStatus() (online, known bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.status) == 0 {
		return false, false
	}
	return r.status[len(r.status)-1], true
}

func (r *recorder) event(name string) (model.EventOccurrence, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e.Event == name {
			return e, true
		}
	}
	return model.EventOccurrence{}, false
}

// waitFor polls cond until it holds; it fails the test after a generous
// bound (a hang, not a speed check).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runAdapter runs a until the test ends.
func runAdapter(t testing.TB, a *Adapter, sink adapters.Sink) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, sink) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v", err)
		}
	})
}

func TestAdapterAgainstSim(t *testing.T) {
	url, srv, sensors := simTCP(t, time.Hour, 1)
	sn := sensors[1]
	pool := NewPool()
	a, err := New("sensor-1", adaptersTOML(sensorConf(url, 1, "")), envForTest(t), WithPool(pool))
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	runAdapter(t, a, rec)
	waitFor(t, "online", func() bool { on, _ := rec.lastStatus(); return on })
	waitFor(t, "all attributes", func() bool {
		_, ok1 := rec.value("main", "door")
		_, ok2 := rec.value("service", "far_register")
		return ok1 && ok2
	})

	temp := sn.Temperature()
	checks := []struct {
		res, name string
		want      any
	}{
		{"main", "temperature", float64(float32(temp))},
		{"main", "running", true},
		{"main", "alarm_bit", false},
		{"main", "status_text", "OK"},
		{"main", "setpoint", 21.5},
		{"main", "mode", int64(0)},
		{"main", "alarm_limit", 30.0},
		{"main", "alarm", false},
		{"main", "heater", true},
		{"main", "door", false},
		{"main", "ticks", int64(0)},
		{"service", "far_register", int64(0)},
	}
	for _, c := range checks {
		got, _ := rec.value(c.res, c.name)
		if got != c.want {
			t.Errorf("%s/%s = %v (%T), want %v (%T)", c.res, c.name, got, got, c.want, c.want)
		}
	}
	if got, _ := rec.value("main", "temperature_x100"); fmt.Sprint(got) != fmt.Sprint(temp) {
		t.Errorf("temperature_x100 (int32 CDAB, scale 0.01) = %v, want %v", got, temp)
	}
	if got, _ := rec.value("main", "pressure"); got.(float64) < 1000 || got.(float64) > 1030 {
		t.Errorf("pressure = %v, want about 1013 hPa", got)
	}
	if ev, ok := rec.event("warm"); !ok || ev.Params["active"] != true {
		t.Errorf("event warm = %+v, %v; want it active (temperature %v > 10)", ev, ok, temp)
	}

	ctx := context.Background()
	t.Run("get", func(t *testing.T) {
		got, err := a.Get(ctx, "main", []string{"setpoint", "temperature"})
		if err != nil || got["setpoint"].V != 21.5 || len(got) != 2 {
			t.Fatalf("Get() = %v, %v", got, err)
		}
		all, err := a.Get(ctx, "service", nil)
		if err != nil || len(all) != 1 {
			t.Fatalf("Get(service, all) = %v, %v, want 1 value", all, err)
		}
		if _, err := a.Get(ctx, "main", []string{"nope"}); !errors.Is(err, adapters.ErrNotFound) {
			t.Fatalf("Get(nope) error = %v, want ErrNotFound", err)
		}
	})
	t.Run("set", func(t *testing.T) {
		if err := a.Set(ctx, "main", map[string]model.Value{"setpoint": {V: 22.3}, "heater": {V: false}}); err != nil {
			t.Fatal(err)
		}
		if got := sn.Holding(0); got != 223 {
			t.Errorf("holding 0 = %d after setpoint 22.3, want 223", got)
		}
		if sn.Coil(1) {
			t.Error("heater coil still on")
		}
		sn.SetHolding(50, 0x8001)
		if err := a.Set(ctx, "main", map[string]model.Value{"flag": {V: true}}); err != nil {
			t.Fatal(err)
		}
		if got := sn.Holding(50); got != 0x8005 {
			t.Errorf("holding 50 = %04x after setting bit 2 of 8001, want 8005", got)
		}
		if err := a.Set(ctx, "main", map[string]model.Value{"alarm_limit": {V: int64(25)}}); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name    string
			res     string
			values  map[string]model.Value
			want    error
			wantMsg string
		}{
			{"above max", "main", map[string]model.Value{"setpoint": {V: int64(40)}}, adapters.ErrBadRequest, "above the maximum"},
			{"wrong type", "main", map[string]model.Value{"setpoint": {V: "hot"}}, adapters.ErrBadRequest, "want a number"},
			{"read only", "main", map[string]model.Value{"temperature": {V: 3.0}}, adapters.ErrNotWritable, "temperature"},
			{"unknown", "main", map[string]model.Value{"nope": {V: 3.0}}, adapters.ErrNotFound, "nope"},
			{"device refuses", "main", map[string]model.Value{"mode": {V: int64(9)}}, adapters.ErrBadRequest,
				`device "sensor-1": unit 1: holding 1..1: modbus: exception '3' (illegal data value)`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := a.Set(ctx, tt.res, tt.values)
				if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.wantMsg) {
					t.Fatalf("Set(%v) = %v, want %v containing %q", tt.values, err, tt.want, tt.wantMsg)
				}
			})
		}
	})
	t.Run("invoke", func(t *testing.T) {
		if _, err := a.Invoke(ctx, "main", "set_mode", map[string]any{"mode": 2.0}); err != nil {
			t.Fatal(err)
		}
		if got := sn.Holding(1); got != 2 {
			t.Errorf("mode = %d after set_mode(2)", got)
		}
		for _, in := range []map[string]any{{"mode": 4.0}, {}, {"mode": 1.0, "speed": 3.0}} {
			if _, err := a.Invoke(ctx, "main", "set_mode", in); !errors.Is(err, adapters.ErrBadRequest) {
				t.Errorf("Invoke(set_mode, %v) = %v, want ErrBadRequest", in, err)
			}
		}
		if _, err := a.Invoke(ctx, "main", "nope", nil); !errors.Is(err, adapters.ErrNotFound) {
			t.Errorf("Invoke(nope) = %v, want ErrNotFound", err)
		}
	})
	t.Run("alarm event and reset", func(t *testing.T) {
		// A limit below the temperature latches the alarm coil.
		if err := a.Set(ctx, "main", map[string]model.Value{"alarm_limit": {V: 0.0}}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "alarm_changed", func() bool { ev, ok := rec.event("alarm_changed"); return ok && ev.Params["value"] == true })
		waitFor(t, "status text ALARM", func() bool { v, _ := rec.value("main", "status_text"); return v == "ALARM" })
		if err := a.Set(ctx, "main", map[string]model.Value{"alarm_limit": {V: 30.0}}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Invoke(ctx, "main", "reset_alarm", nil); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "alarm cleared", func() bool { v, _ := rec.value("main", "alarm"); return v == false })
	})
	t.Run("exception keeps the rest polled", func(t *testing.T) {
		sn.SetFault(sim.Fault{Exception: sim.ServerDeviceBusy, From: 60, To: 60})
		// The rest of the map is still polled: a change shows up.
		sn.SetHolding(0, 199)
		waitFor(t, "setpoint 19.9", func() bool { v, _ := rec.value("main", "setpoint"); return v == 19.9 })
		if on, _ := rec.lastStatus(); !on {
			t.Error("unit went offline on an exception")
		}
		const busy = "exception 6 (server device busy)"
		waitFor(t, "far_register bad", func() bool { v := rec.full("service", "far_register"); return v.Err == busy })
		if v := rec.full("service", "far_register"); v.Quality != model.QualityBad || v.V != nil {
			t.Errorf("far_register = %+v, want bad with no reading", v)
		}
		got, err := a.Get(ctx, "service", []string{"far_register"})
		if v := got["far_register"]; err != nil || v.Quality != model.QualityBad || v.Err != busy {
			t.Errorf("Get(far_register) = %v, %v, want it bad: %s", got, err, busy)
		}
		sn.SetFault(sim.Fault{})
		waitFor(t, "far_register good again", func() bool { return rec.full("service", "far_register").Quality == model.QualityGood })
	})
	t.Run("offline, skipped, online again", func(t *testing.T) {
		sn.SetFault(sim.Fault{Drop: true})
		waitFor(t, "offline", func() bool { on, _ := rec.lastStatus(); return !on })
		rec.mu.Lock()
		err := rec.errs[len(rec.errs)-1]
		rec.mu.Unlock()
		if !errors.Is(err, adapters.ErrTimeout) {
			t.Errorf("offline error = %v, want ErrTimeout", err)
		}
		// While skipped, the unit is not asked at all.
		n := sn.Requests()
		time.Sleep(100 * time.Millisecond)
		if got := sn.Requests(); got > n+1 {
			t.Errorf("unit asked %d times while skipped", got-n)
		}
		sn.SetFault(sim.Fault{})
		waitFor(t, "online again", func() bool { on, _ := rec.lastStatus(); return on })
		if srv.Accepted() < 2 {
			t.Errorf("accepted %d connections, want a reconnect after the timeout", srv.Accepted())
		}
	})
}

func TestSharedLink(t *testing.T) {
	url, srv, sensors := simTCP(t, time.Hour, 1, 2, 3)
	pool := NewPool()
	recs := map[int]*recorder{}
	for _, unit := range []int{1, 2, 3} {
		a, err := New(fmt.Sprintf("s%d", unit), adaptersTOML(sensorConf(url, unit, `request_delay = "1ms"`)), envForTest(t), WithPool(pool))
		if err != nil {
			t.Fatal(err)
		}
		recs[unit] = newRecorder()
		runAdapter(t, a, recs[unit])
	}
	for unit, rec := range recs {
		waitFor(t, fmt.Sprintf("unit %d online", unit), func() bool { on, _ := rec.lastStatus(); return on })
	}
	if pool.Len() != 1 || srv.Accepted() != 1 {
		t.Fatalf("3 units on one gateway: %d links, %d connections, want 1 and 1", pool.Len(), srv.Accepted())
	}
	// A unit that stops answering goes offline; the others go on.
	sensors[3].SetFault(sim.Fault{Drop: true})
	waitFor(t, "unit 3 offline", func() bool { on, _ := recs[3].lastStatus(); return !on })
	sensors[1].SetHolding(0, 100)
	sensors[2].SetHolding(0, 101)
	waitFor(t, "units 1 and 2 polled", func() bool {
		v1, _ := recs[1].value("main", "setpoint")
		v2, _ := recs[2].value("main", "setpoint")
		return v1 == 10.0 && v2 == 10.1
	})
	for _, u := range []int{1, 2} {
		if on, _ := recs[u].lastStatus(); !on {
			t.Errorf("unit %d went offline with unit 3", u)
		}
	}
}

func TestUnknownUnitBehindGateway(t *testing.T) {
	url, _, _ := simTCP(t, time.Hour, 1)
	a, err := New("s9", adaptersTOML(sensorConf(url, 9, "")), envForTest(t), WithPool(NewPool()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Get(context.Background(), "main", []string{"setpoint"})
	if err == nil || !strings.Contains(err.Error(), "unit 9") || !strings.Contains(err.Error(), "gateway target device failed to respond") {
		t.Fatalf("Get(unit 9) = %v, want gateway exception naming unit 9", err)
	}
}

// serveOn serves sensors on addr until stop is called.
func serveOn(t *testing.T, addr string, sensors map[byte]*sim.Sensor) (stop func()) {
	t.Helper()
	var ln net.Listener
	var err error
	waitFor(t, "listen on "+addr, func() bool { ln, err = net.Listen("tcp", addr); return err == nil })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sim.NewServer(sensors).ServeTCP(ctx, ln) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("ServeTCP() = %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestCablePulled stops the device (connections reset, connects refused)
// and starts it again on the same port: the adapter goes offline, backs
// off, and comes back by itself.
func TestCablePulled(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	sensors := map[byte]*sim.Sensor{1: sim.NewSensor(time.Hour, 0)}
	stop := serveOn(t, addr, sensors)
	a, err := New("s1", adaptersTOML(sensorConf("tcp://"+addr, 1, "")), envForTest(t), WithPool(NewPool()))
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	runAdapter(t, a, rec)
	waitFor(t, "online", func() bool { on, _ := rec.lastStatus(); return on })
	stop()
	waitFor(t, "offline", func() bool { on, _ := rec.lastStatus(); return !on })
	rec.mu.Lock()
	err = rec.errs[len(rec.errs)-1]
	rec.mu.Unlock()
	if !errors.Is(err, adapters.ErrOffline) {
		t.Errorf("offline error = %v, want ErrOffline (link down)", err)
	}
	serveOn(t, addr, sensors)
	waitFor(t, "online again", func() bool { on, _ := rec.lastStatus(); return on })
}

// TestLateAnswerNotPaired checks the reason a timeout closes the
// connection: an answer that comes after the timeout must not be taken as
// the answer to the next request.
func TestLateAnswerNotPaired(t *testing.T) {
	url, _, sensors := simTCP(t, time.Hour, 1)
	sn := sensors[1]
	a, err := New("late", adaptersTOML(sensorConf(url, 1, "")), envForTest(t), WithPool(NewPool()))
	if err != nil {
		t.Fatal(err)
	}
	a.dev.timeout = 200 * time.Millisecond
	sn.SetHolding(1, 2)
	ctx := context.Background()
	sl := a.pool.acquire(a.dev.link, 0) // one link for both requests
	defer a.pool.release(sl)
	sn.SetFault(sim.Fault{Delay: 400 * time.Millisecond, From: 0, To: 0})
	if _, err := a.doRead(ctx, sl, Read{Table: Holding, Address: 0, Count: 1}); !errors.Is(err, adapters.ErrTimeout) {
		t.Fatalf("read of holding 0 with a 400 ms delay = %v, want ErrTimeout", err)
	}
	// Next request at once, while the late answer is on its way.
	sn.SetFault(sim.Fault{})
	a.dev.timeout = 2 * time.Second
	mode, err := a.find("main", []string{"mode"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.readAttrs(ctx, sl, mode)
	if err != nil || got["mode"].V != int64(2) {
		t.Fatalf("mode after a late answer = %v, %v, want 2", got, err)
	}
}

// TestRareGroupReadAfterLateStart: the device is not there when the
// adapter starts. A point polled once an hour must not wait that hour for
// its first value once the device appears: a group that got no answer at
// all is tried again at the device's fastest interval.
func TestRareGroupReadAfterLateStart(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	conf := fmt.Sprintf(`url = %q
unit = 1
timeout = "300ms"
offline_after = 1
[[attribute]]
name = "temperature"
table = "input"
address = 0
type = "float32"
poll = "50ms"
[[attribute]]
name = "pressure"
table = "input"
address = 4
poll = "1h"
`, "tcp://"+addr)
	a, err := New("s1", adaptersTOML(conf), envForTest(t), WithPool(NewPool()))
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	runAdapter(t, a, rec)
	waitFor(t, "offline (nothing listens yet)", func() bool { on, known := rec.lastStatus(); return known && !on })
	serveOn(t, addr, map[byte]*sim.Sensor{1: sim.NewSensor(time.Hour, 0)})
	waitFor(t, "the hourly point's first value", func() bool { _, ok := rec.value("main", "pressure"); return ok })
	waitFor(t, "the fast point's first value", func() bool { _, ok := rec.value("main", "temperature"); return ok })
}
