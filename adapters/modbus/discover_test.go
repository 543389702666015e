package modbus

import (
	"bytes"
	"context"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	sim "github.com/osapgw/osapgw/sim/modbus"
)

// testFingerprints: acme-m1 matches a unit whose holding 50 is 4242 and
// 20 reads "M1"; any-sensor matches the simulator's setpoint (215).
var testFingerprints = []Fingerprint{
	{Profile: "any-sensor", Address: 0, Values: []float64{215}},
	{Profile: "acme-m1", Table: "holding", Address: 50, Type: "uint16", Values: []float64{4241, 4242}},
	{Profile: "acme-m1", Address: 20, Type: "string", Length: 1, Texts: []string{"M1"}},
}

func TestDiscover(t *testing.T) {
	url, _, sensors := simTCP(t, time.Hour, 1, 3, 7, 200)
	sensors[3].SetIdentification(sim.Identification{Vendor: "ACME", Product: "M1 meter", Revision: "1.2", PerAnswer: 1})
	sensors[3].SetHolding(50, 4242)
	sensors[3].SetHolding(20, 'M'<<8|'1')
	sensors[7].SetFault(sim.Fault{Exception: sim.IllegalDataAddress}) // answers, with an exception
	sensors[200].SetHolding(0, 0x5375)                                // "SunS" at holding 0
	sensors[200].SetHolding(1, 0x6e53)
	var mu sync.Mutex
	var progress []Progress
	got, err := Discover(context.Background(), url, DiscoverOptions{
		Parallel:     4,
		Timeout:      2 * time.Second,
		Fingerprints: testFingerprints,
		Progress: func(p Progress) {
			mu.Lock()
			progress = append(progress, p)
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []Found{
		{Unit: 1, Answer: "registers", Profiles: []string{"any-sensor"}},
		{Unit: 3, Answer: "registers", Identity: &Identity{Vendor: "ACME", Product: "M1 meter", Revision: "1.2"}, Profiles: []string{"acme-m1", "any-sensor"}},
		{Unit: 7, Answer: "exception 2"},
		{Unit: 200, Answer: "registers", SunSpec: true, SunSpecBase: 0},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(Found{})); diff != "" {
		t.Fatalf("Discover() mismatch (-want +got):\n%s", diff)
	}
	if len(progress) != 248 || progress[247] != (Progress{Scanned: 248, Total: 248, Found: 4}) {
		t.Errorf("progress: %d reports, last %+v; want 248, the last {248 248 4}", len(progress), progress[len(progress)-1])
	}

	var out bytes.Buffer
	if err := WriteTOML(&out, url, got); err != nil {
		t.Fatal(err)
	}
	golden(t, "discover.golden", strings.ReplaceAll(out.String(), url, "tcp://127.0.0.1:5020"))
	// Each block loads once given what its comment asks for (the key
	// profile is another package's: a map stands in for it).
	for _, block := range strings.Split(out.String(), "[[device]]\n")[1:] {
		var body []string
		for _, line := range strings.Split(block, "\n") {
			if !strings.HasPrefix(line, "profile = ") {
				body = append(body, line)
			}
		}
		conf := strings.Join(body, "\n") + "[[attribute]]\nname = \"x\"\ntable = \"holding\"\naddress = 0\n"
		if _, err := New("found", adaptersTOML(conf), envForTest(t)); err != nil {
			t.Errorf("printed block does not load: %v\n%s", err, block)
		}
	}

	if _, err := Discover(context.Background(), "tcp://127.0.0.1:1", DiscoverOptions{Units: []byte{1, 2}, Timeout: time.Second}); err == nil {
		t.Fatal("Discover(closed port) = nil error")
	}
	if _, err := Discover(context.Background(), url, DiscoverOptions{Fingerprints: []Fingerprint{{Profile: "x", Table: "holdings"}}}); err == nil || !strings.Contains(err.Error(), `profile "x": fingerprint #1: table`) {
		t.Fatalf("Discover(bad fingerprint) = %v, want an error naming it", err)
	}
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s mismatch (-want +got), rerun with -update if intended:\n%s", name, diff)
	}
}

// TestDiscoverBehindGateway scans a gateway in front of a serial bus: it
// answers one request at a time, absent units late, so concurrent probes
// queue and some time out; Discover probes those again one at a time and
// finds every unit.
func TestDiscoverBehindGateway(t *testing.T) {
	url, srv, _ := simTCP(t, time.Hour, 3, 37)
	srv.SetGateway(sim.Gateway{Serialize: true, AbsentDelay: 20 * time.Millisecond})
	units, _ := ParseUnits("1-40")
	rechecked := false
	got, err := Discover(context.Background(), url, DiscoverOptions{Units: units, Parallel: 8, Timeout: 100 * time.Millisecond,
		Progress: func(p Progress) { rechecked = rechecked || p.Recheck }})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rechecked: %v", rechecked)
	if units := foundUnits(got); !slices.Equal(units, []byte{3, 37}) {
		t.Errorf("Discover() found units %v, want [3 37] (rechecked: %v)", units, rechecked)
	}
}

// TestDiscoverPlainDevice scans a TCP device that answers unit 1 and
// ignores the others: each silent unit costs a timeout, and none is
// probed twice (no gateway answered).
func TestDiscoverPlainDevice(t *testing.T) {
	url, srv, sensors := simTCP(t, time.Hour, 1)
	srv.SetGateway(sim.Gateway{Silent: true})
	units, _ := ParseUnits("0-20")
	got, err := Discover(context.Background(), url, DiscoverOptions{Units: units, Parallel: 8, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if units := foundUnits(got); !slices.Equal(units, []byte{1}) {
		t.Errorf("Discover() found units %v, want [1]", units)
	}
	// Unit 1: the probe, identification, three SunSpec bases.
	if n := sensors[1].Requests(); n != 5 {
		t.Errorf("unit 1 asked %d requests, want 5", n)
	}
}

// TestDiscoverConnectionLimit scans a device that takes two connections
// at most and closes the others: the scan goes on with those it has.
func TestDiscoverConnectionLimit(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sensors := map[byte]*sim.Sensor{2: sim.NewSensor(time.Hour, 0), 9: sim.NewSensor(time.Hour, 0), 30: sim.NewSensor(time.Hour, 0)}
	srv := sim.NewServer(sensors)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeTCP(ctx, &limitListener{Listener: ln, free: make(chan struct{}, 2)}) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	units, _ := ParseUnits("1-40")
	got, err := Discover(context.Background(), "tcp://"+ln.Addr().String(), DiscoverOptions{Units: units, Parallel: 8, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if units := foundUnits(got); !slices.Equal(units, []byte{2, 9, 30}) {
		t.Errorf("Discover() found units %v, want [2 9 30]", units)
	}
}

// limitListener accepts at most cap(free) connections at once, and
// closes the others as soon as it has accepted them.
type limitListener struct {
	net.Listener
	free chan struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.free <- struct{}{}:
			return &limitConn{Conn: c, free: l.free}, nil
		default:
			c.Close()
		}
	}
}

type limitConn struct {
	net.Conn
	free chan struct{}
	once sync.Once
}

func (c *limitConn) Close() error {
	c.once.Do(func() { <-c.free })
	return c.Conn.Close()
}

// TestDiscoverSerial scans an RTU bus: one unit at a time, and the
// identification's answers, whose length the request does not tell, end
// at their CRC.
func TestDiscoverSerial(t *testing.T) {
	if testing.Short() {
		t.Skip("serial peers: skipped with -short")
	}
	pa, pb := ptyPair(t)
	port, err := sim.OpenSerial(pa)
	if err != nil {
		t.Fatal(err)
	}
	sensors := map[byte]*sim.Sensor{1: sim.NewSensor(time.Hour, 0), 5: sim.NewSensor(time.Hour, 0)}
	sensors[5].SetIdentification(sim.Identification{Vendor: "Vendor \x00with NUL", Product: "TH-5", Revision: "2.0"})
	srv := sim.NewServer(sensors)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeRTU(ctx, port) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sim ServeRTU() = %v", err)
		}
	})
	units, _ := ParseUnits("0-8")
	url := "rtu://" + pb + "?baud=115200&parity=E"
	got, err := Discover(context.Background(), url, DiscoverOptions{Units: units, Timeout: 100 * time.Millisecond, Parallel: 8})
	if err != nil {
		t.Fatal(err)
	}
	want := []Found{
		{Unit: 1, Answer: "registers"},
		{Unit: 5, Answer: "registers", Identity: &Identity{Vendor: "Vendor with NUL", Product: "TH-5", Revision: "2.0"}},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(Found{})); diff != "" {
		t.Fatalf("Discover() mismatch (-want +got):\n%s", diff)
	}
	var out bytes.Buffer
	if err := WriteTOML(&out, url, got[1:]); err != nil {
		t.Fatal(err)
	}
	wantBlock := "[[device]]\nid = \"th-5-5\"\nkind = \"modbus\"\nurl = \"rtu://" + pb + "\"\nbaud = 115200\nparity = \"E\"\nunit = 5\n"
	if !strings.Contains(out.String(), wantBlock) {
		t.Errorf("WriteTOML() =\n%s\nwant it to hold\n%s", out.String(), wantBlock)
	}
}

func foundUnits(fs []Found) []byte {
	var out []byte
	for _, f := range fs {
		out = append(out, f.Unit)
	}
	return out
}

func TestLikelyOrder(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want []byte
	}{
		{name: "small range", in: []byte{0, 1, 2, 3, 11, 12, 247}, want: []byte{1, 247, 0, 2, 3, 11, 12}},
		{name: "duplicates", in: []byte{5, 1, 5, 1}, want: []byte{1, 5}},
		{name: "none likely", in: []byte{100, 20}, want: []byte{20, 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := LikelyOrder(tt.in); !slices.Equal(got, tt.want) {
				t.Errorf("LikelyOrder(%v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
	all := LikelyOrder(DefaultUnits(false))
	if len(all) != 248 || !slices.Equal(all[:13], []byte{1, 247, 0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}) || all[247] != 246 {
		t.Errorf("LikelyOrder(DefaultUnits(tcp)) = %v...%v (%d)", all[:13], all[len(all)-1], len(all))
	}
	if got := DefaultUnits(true); len(got) != 247 || got[0] != 1 {
		t.Errorf("DefaultUnits(serial) = %d units from %d, want 247 from 1", len(got), got[0])
	}
}

func TestParseDeviceID(t *testing.T) {
	tests := []struct {
		name     string
		data     string // hex, after the function code
		want     map[byte]string
		wantMore bool
		wantNext byte
		wantErr  bool
	}{
		{name: "basic", data: "0e01010000" + "02" + "0003414243" + "0102" + "4d31", want: map[byte]string{0: "ABC", 1: "M1"}},
		{name: "more follows", data: "0e0181ff0201" + "0102" + "4d31", want: map[byte]string{1: "M1"}, wantMore: true, wantNext: 2},
		{name: "padded", data: "0e0101000001" + "0005" + "2041420000", want: map[byte]string{0: "AB"}},
		{name: "no objects", data: "0e0101000000", want: map[byte]string{}},
		{name: "short", data: "0e010100", wantErr: true},
		{name: "other MEI", data: "0d0101000000", wantErr: true},
		{name: "object cut short", data: "0e0101000001" + "0009" + "4142", wantErr: true},
		{name: "count beyond objects", data: "0e0101000002" + "0001" + "41", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := hex.DecodeString(tt.data)
			got, err := parseDeviceID(b)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseDeviceID(%s) = %v, want error %v", tt.data, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.want, got.objects); diff != "" || got.more != tt.wantMore || got.next != tt.wantNext {
				t.Errorf("parseDeviceID(%s) = %v more %v next %d, want more %v next %d; objects (-want +got):\n%s", tt.data, got.objects, got.more, got.next, tt.wantMore, tt.wantNext, diff)
			}
		})
	}
}

func FuzzParseDeviceID(f *testing.F) {
	for _, s := range []string{"0e01010000020003414243", "0e0181ff02010102", "0e0101000001000900"} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := parseDeviceID(b)
		if err != nil {
			return
		}
		for _, v := range a.objects {
			if strings.ContainsAny(v, "\n\r\x00") {
				t.Fatalf("parseDeviceID(%x) object %q holds a control character", b, v)
			}
		}
	})
}

func TestCompileFingerprints(t *testing.T) {
	tests := []struct {
		name    string
		fp      Fingerprint
		wantErr string
	}{
		{name: "defaults", fp: Fingerprint{Profile: "p", Address: 1, Values: []float64{3}}},
		{name: "coil", fp: Fingerprint{Profile: "p", Table: "coil", Values: []float64{1}}},
		{name: "no profile", fp: Fingerprint{Values: []float64{1}}, wantErr: "fingerprint #1: no profile"},
		{name: "bad table", fp: Fingerprint{Profile: "p", Table: "holdings", Values: []float64{1}}, wantErr: `profile "p": fingerprint #1: table: unknown table "holdings"`},
		{name: "bad type", fp: Fingerprint{Profile: "p", Type: "uint8", Values: []float64{1}}, wantErr: `profile "p": fingerprint #1: type: unknown type "uint8"`},
		{name: "no values", fp: Fingerprint{Profile: "p"}, wantErr: `profile "p": fingerprint #1: no value to match`},
		{name: "string without texts", fp: Fingerprint{Profile: "p", Type: "string", Length: 2, Values: []float64{1}}, wantErr: "no value to match"},
		{name: "string without length", fp: Fingerprint{Profile: "p", Type: "string", Texts: []string{"x"}}, wantErr: "length: a string needs length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := compileFingerprints([]Fingerprint{tt.fp})
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("compileFingerprints(%+v) = %v, want error %q", tt.fp, err, tt.wantErr)
			}
		})
	}
}

func TestParseUnits(t *testing.T) {
	tests := []struct {
		in      string
		want    []byte
		wantErr bool
	}{
		{in: "1-3,7", want: []byte{1, 2, 3, 7}},
		{in: "247", want: []byte{247}},
		{in: "5-2", wantErr: true},
		{in: "1-256", wantErr: true},
		{in: "x", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseUnits(tt.in)
		if (err != nil) != tt.wantErr || !cmp.Equal(got, tt.want) {
			t.Errorf("ParseUnits(%q) = %v, %v, want %v (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// BenchmarkDiscoverTCP scans every unit (0-247) of a TCP peer with the
// defaults (DefaultParallel connections, DefaultProbeTimeout): a plain
// device that answers unit 1 and ignores the others (each silent unit
// costs a timeout: the worst case), and a gateway answering exception 11
// at once for absent units. docs/performance.md records the figures.
func BenchmarkDiscoverTCP(b *testing.B) {
	for _, bc := range []struct {
		name string
		gw   sim.Gateway
	}{
		{name: "silent-device", gw: sim.Gateway{Silent: true}},
		{name: "gateway", gw: sim.Gateway{}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			url, srv, _ := simTCP(b, time.Hour, 1)
			srv.SetGateway(bc.gw)
			for b.Loop() {
				got, err := Discover(context.Background(), url, DiscoverOptions{})
				if err != nil || len(got) != 1 {
					b.Fatalf("Discover() = %v, %v, want unit 1", got, err)
				}
			}
		})
	}
}
