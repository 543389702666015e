package modbus

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/osapgw/osapgw/internal/testenv"
	"github.com/osapgw/osapgw/model"
	sim "github.com/osapgw/osapgw/sim/modbus"
)

// Debian's python, where python3-pymodbus is installed (not a pyenv one).
const debianPython = "/usr/bin/python3"

func needPymodbus(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("real peer: skipped with -short")
	}
	if err := exec.Command(debianPython, "-c", "import pymodbus.server, serial").Run(); err != nil {
		testenv.Missing(t, "pymodbus peer: %s cannot import pymodbus.server and serial (%v); install python3-pymodbus python3-serial (scripts/test-deps.sh)", debianPython, err)
	}
}

func needSocat(t *testing.T) string {
	t.Helper()
	return testenv.LookPath(t, "socat", "it makes the pty pairs for RTU; scripts/test-deps.sh installs it")
}

// start runs a peer program until the test ends.
func start(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stderr = testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// ptyPair starts socat with two linked pseudo-terminals and returns their
// paths.
func ptyPair(t *testing.T) (string, string) {
	socat := needSocat(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "A"), filepath.Join(dir, "B")
	start(t, socat, "-d", "-d", "pty,raw,echo=0,link="+a, "pty,raw,echo=0,link="+b)
	waitFor(t, "socat ptys", func() bool {
		_, err1 := os.Stat(a)
		_, err2 := os.Stat(b)
		return err1 == nil && err2 == nil
	})
	return a, b
}

const pymodbusMap = `
timeout = "500ms"
poll = "50ms"
[[attribute]]
name = "setpoint"
table = "holding"
address = 0
type = "int16"
scale = 0.1
writable = true
read_back = true
[[attribute]]
name = "ratio"
table = "holding"
address = 1
type = "float32"
[[attribute]]
name = "counter"
table = "holding"
address = 3
type = "int32"
order = "CDAB"
[[attribute]]
name = "label"
table = "holding"
address = 10
type = "string"
length = 4
[[attribute]]
name = "temperature"
table = "input"
address = 0
type = "float32"
[[attribute]]
name = "pump"
table = "coil"
address = 0
writable = true
[[attribute]]
name = "valve"
table = "coil"
address = 1
[[attribute]]
name = "door"
table = "discrete"
address = 0
`

// checkPeer reads the map of testdata/pymodbus_server.py (or of the
// simulator, when sensor is true) through an adapter, then writes.
func checkPymodbus(t *testing.T, url string) {
	a, err := New("py", adaptersTOML(fmt.Sprintf("url = %q\nunit = 1\n", url)+pymodbusMap), envForTest(t), WithPool(NewPool()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var got map[string]model.Value
	waitFor(t, "the peer to answer", func() bool {
		got, err = a.Get(ctx, "main", nil)
		return err == nil
	})
	want := map[string]any{
		"setpoint": 21.5, "ratio": 1.5, "counter": int64(0x11223344), "label": "pymodbus",
		"temperature": 21.5, "pump": true, "valve": false, "door": true,
	}
	for k, w := range want {
		if got[k].V != w {
			t.Errorf("%s = %v (%T), want %v (%T)", k, got[k].V, got[k].V, w, w)
		}
	}
	if err := a.Set(ctx, "main", map[string]model.Value{"setpoint": {V: 19.5}, "pump": {V: false}}); err != nil {
		t.Fatalf("Set() = %v", err)
	}
	got, err = a.Get(ctx, "main", []string{"setpoint", "pump"})
	if err != nil || got["setpoint"].V != 19.5 || got["pump"].V != false {
		t.Fatalf("Get() after Set = %v, %v, want setpoint 19.5, pump false", got, err)
	}
	rec := newRecorder()
	runAdapter(t, a, rec)
	waitFor(t, "Run online", func() bool { on, _ := rec.lastStatus(); return on })
	waitFor(t, "Run reports", func() bool { v, _ := rec.value("main", "label"); return v == "pymodbus" })
}

func TestPymodbusTCP(t *testing.T) {
	needPymodbus(t)
	port := freePort(t)
	start(t, debianPython, filepath.Join("testdata", "pymodbus_server.py"), "--tcp", strconv.Itoa(port))
	checkPymodbus(t, fmt.Sprintf("tcp://127.0.0.1:%d", port))
}

// TestPymodbusBadPoint: pymodbus holds 64 registers per table; a point
// past them, merged (max_gap) into one read with the good ones, makes
// pymodbus answer exception 2. The good points are read and the bad one
// is reported bad, by Get and by Run.
func TestPymodbusBadPoint(t *testing.T) {
	needPymodbus(t)
	port := freePort(t)
	start(t, debianPython, filepath.Join("testdata", "pymodbus_server.py"), "--tcp", strconv.Itoa(port))
	conf := fmt.Sprintf("url = \"tcp://127.0.0.1:%d\"\nunit = 1\nmax_gap = 60\n", port) + pymodbusMap + `[[attribute]]
name = "beyond"
table = "holding"
address = 63
type = "uint32"
`
	a, err := New("py", adaptersTOML(conf), envForTest(t), WithPool(NewPool()))
	if err != nil {
		t.Fatal(err)
	}
	if r := a.Requests(); r[len(r)-1].Count != 65 {
		t.Fatalf("reads %v, want the holding registers 0..64 in one", r)
	}
	var got map[string]model.Value
	waitFor(t, "the peer to answer", func() bool {
		got, err = a.Get(context.Background(), "main", []string{"label", "beyond", "setpoint"})
		return err == nil
	})
	if v := got["beyond"]; v.Quality != model.QualityBad || v.Err != "exception 2 (illegal data address)" {
		t.Errorf("Get beyond = %+v, want bad: exception 2 (illegal data address)", v)
	}
	if got["label"].V != "pymodbus" || got["setpoint"].V != 21.5 {
		t.Errorf("Get = %v, want label pymodbus and setpoint 21.5 beside the bad point", got)
	}
	rec := newRecorder()
	runAdapter(t, a, rec)
	waitFor(t, "beyond reported bad", func() bool { return rec.full("main", "beyond").Quality == model.QualityBad })
	if v, _ := rec.value("main", "label"); v != "pymodbus" {
		t.Errorf("label = %v when beyond was reported bad, want pymodbus", v)
	}
}

func TestPymodbusRTU(t *testing.T) {
	needPymodbus(t)
	a, b := ptyPair(t)
	start(t, debianPython, filepath.Join("testdata", "pymodbus_server.py"), "--rtu", a)
	checkPymodbus(t, "rtu://"+b)
}

// TestSimSerial runs the adapter against sim/modbus over RTU and ASCII
// through a socat pty pair, with two units on the bus, one of them going
// silent.
func TestSimSerial(t *testing.T) {
	if testing.Short() {
		t.Skip("serial peers: skipped with -short")
	}
	for _, mode := range []string{"rtu", "ascii"} {
		t.Run(mode, func(t *testing.T) {
			pa, pb := ptyPair(t)
			port, err := sim.OpenSerial(pa)
			if err != nil {
				t.Fatal(err)
			}
			sensors := map[byte]*sim.Sensor{1: sim.NewSensor(time.Hour, 0), 2: sim.NewSensor(time.Hour, 0)}
			srv := sim.NewServer(sensors)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				if mode == "rtu" {
					done <- srv.ServeRTU(ctx, port)
				} else {
					done <- srv.ServeASCII(ctx, port)
				}
			}()
			t.Cleanup(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("serve %s: %v", mode, err)
				}
			})
			pool := NewPool()
			recs := map[int]*recorder{}
			for _, unit := range []int{1, 2} {
				a, err := New(fmt.Sprintf("s%d", unit), adaptersTOML(sensorConf(mode+"://"+pb, unit, `baud = 19200`)), envForTest(t), WithPool(pool))
				if err != nil {
					t.Fatal(err)
				}
				recs[unit] = newRecorder()
				runAdapter(t, a, recs[unit])
			}
			for unit, rec := range recs {
				waitFor(t, fmt.Sprintf("unit %d reports", unit), func() bool { v, _ := rec.value("main", "status_text"); return v == "OK" })
			}
			if pool.Len() != 1 {
				t.Fatalf("two units on one bus use %d links, want 1", pool.Len())
			}
			sensors[2].SetFault(sim.Fault{Drop: true})
			waitFor(t, "unit 2 offline", func() bool { on, _ := recs[2].lastStatus(); return !on })
			sensors[1].SetHolding(0, 250)
			waitFor(t, "unit 1 still polled", func() bool { v, _ := recs[1].value("main", "setpoint"); return v == 25.0 })
			sensors[2].SetFault(sim.Fault{})
			waitFor(t, "unit 2 back", func() bool { on, _ := recs[2].lastStatus(); return on })
		})
	}
}

// TestSerialCablePulled takes the pty pair away under a running RTU link
// (socat stops: the port fails) and brings it back at the same path: the
// adapter goes offline and recovers by itself.
func TestSerialCablePulled(t *testing.T) {
	if testing.Short() {
		t.Skip("serial peer: skipped with -short")
	}
	socat := needSocat(t)
	dir := t.TempDir()
	pa, pb := filepath.Join(dir, "A"), filepath.Join(dir, "B")
	sensors := map[byte]*sim.Sensor{1: sim.NewSensor(time.Hour, 0)}
	plug := func() (unplug func()) {
		os.Remove(pa)
		os.Remove(pb)
		cmd := exec.Command(socat, "pty,raw,echo=0,link="+pa, "pty,raw,echo=0,link="+pb)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "socat ptys", func() bool {
			_, err1 := os.Stat(pa)
			_, err2 := os.Stat(pb)
			return err1 == nil && err2 == nil
		})
		port, err := sim.OpenSerial(pa)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- sim.NewServer(sensors).ServeRTU(ctx, port) }()
		var once bool
		unplug = func() {
			if once {
				return
			}
			once = true
			_ = cmd.Process.Signal(os.Interrupt)
			_ = cmd.Wait()
			cancel()
			<-done // the port failed or was closed: either way it is over
		}
		t.Cleanup(unplug)
		return unplug
	}
	unplug := plug()
	a, err := New("rtu-1", adaptersTOML(sensorConf("rtu://"+pb, 1, "")), envForTest(t), WithPool(NewPool()))
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	runAdapter(t, a, rec)
	waitFor(t, "online", func() bool { on, _ := rec.lastStatus(); return on })
	unplug()
	waitFor(t, "offline", func() bool { on, _ := rec.lastStatus(); return !on })
	plug()
	waitFor(t, "online again", func() bool { on, _ := rec.lastStatus(); return on })
}
