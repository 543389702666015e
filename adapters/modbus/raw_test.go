package modbus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/osapgw/osapgw/adapters"
	sim "github.com/osapgw/osapgw/sim/modbus"
)

func TestParseRawInput(t *testing.T) {
	tests := []struct {
		name     string
		in       map[string]any
		wantFC   byte
		wantData string
		wantErr  string
	}{
		{name: "read", in: map[string]any{"function": int64(3), "data": "00000002"}, wantFC: 3, wantData: "\x00\x00\x00\x02"},
		{name: "float from JSON, spaced upper-case hex", in: map[string]any{"function": 6.0, "data": "00 01 00 C8"}, wantFC: 6, wantData: "\x00\x01\x00\xc8"},
		{name: "no data", in: map[string]any{"function": 17}, wantFC: 17},
		{name: "largest data", in: map[string]any{"function": 16, "data": strings.Repeat("ab", 252)}, wantFC: 16, wantData: strings.Repeat("\xab", 252)},
		{name: "function missing", in: map[string]any{"data": "00"}, wantErr: `param "function": missing`},
		{name: "function 0", in: map[string]any{"function": 0}, wantErr: `param "function": 0 is below the minimum 1`},
		{name: "function 128", in: map[string]any{"function": 128}, wantErr: `param "function": 128 is above the maximum 127`},
		{name: "function not integer", in: map[string]any{"function": 3.5}, wantErr: `param "function": want an integer`},
		{name: "data not hex", in: map[string]any{"function": 3, "data": "zz"}, wantErr: `param "data": not hex`},
		{name: "data odd length", in: map[string]any{"function": 3, "data": "000"}, wantErr: `param "data": not hex`},
		{name: "data too long", in: map[string]any{"function": 16, "data": strings.Repeat("00", 253)}, wantErr: `param "data": 253 bytes, at most 252`},
		{name: "data not a string", in: map[string]any{"function": 3, "data": 12}, wantErr: `param "data": want a hex string, got int`},
		{name: "unknown param", in: map[string]any{"function": 3, "unit": 2}, wantErr: `param "unit": not declared`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc, data, err := parseRawInput(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, adapters.ErrBadRequest) {
					t.Fatalf("parseRawInput(%v) = %v, want an ErrBadRequest containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || fc != tt.wantFC || string(data) != tt.wantData {
				t.Fatalf("parseRawInput(%v) = %d, %x, %v, want %d, %x", tt.in, fc, data, err, tt.wantFC, tt.wantData)
			}
		})
	}
}

func TestRawOperationOff(t *testing.T) {
	url, _, _ := simTCP(t, time.Hour, 1)
	a, err := New("s1", adaptersTOML(sensorConf(url, 1, "")), envForTest(t), WithPool(NewPool()))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := a.Describe(context.Background())
	if res, ok := m.Resource(DefaultResource); ok {
		if _, ok := res.Operation(RawOperation); ok {
			t.Fatalf("model has %q without allow_raw", RawOperation)
		}
	}
	_, err = a.Invoke(context.Background(), DefaultResource, RawOperation, map[string]any{"function": 3, "data": "00000001"})
	if !errors.Is(err, adapters.ErrNotFound) {
		t.Fatalf("Invoke(%s) without allow_raw = %v, want ErrNotFound", RawOperation, err)
	}
}

// TestRawOperation sends raw requests through the adapter to the
// simulator: a read answers the bytes a planned read gets, a write
// changes the register, an exception comes back as such.
func TestRawOperation(t *testing.T) {
	url, _, sensors := simTCP(t, time.Hour, 1)
	sn := sensors[1]
	pool := NewPool()
	a, err := New("s1", adaptersTOML(sensorConf(url, 1, "allow_raw = true")), envForTest(t), WithPool(pool))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := a.Describe(context.Background())
	res, _ := m.Resource(DefaultResource)
	if op, ok := res.Operation(RawOperation); !ok || len(op.Inputs) != 2 {
		t.Fatalf("model operation %q = %+v, %v, want it with two inputs", RawOperation, op, ok)
	}
	ctx := context.Background()
	raw := func(in map[string]any) map[string]any {
		t.Helper()
		out, err := a.Invoke(ctx, DefaultResource, RawOperation, in)
		if err != nil {
			t.Fatalf("Invoke(%s, %v) = %v", RawOperation, in, err)
		}
		return out
	}

	sl := pool.acquire(a.dev.link, 0)
	defer pool.release(sl)
	normal, err := a.doRead(ctx, sl, Read{Table: Holding, Address: 0, Count: 4})
	if err != nil {
		t.Fatal(err)
	}
	got := raw(map[string]any{"function": int64(3), "data": "0000 0004"})
	want := map[string]any{"response": fmt.Sprintf("08%x", normal)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("raw read holding 0+4 (-want +got):\n%s", diff)
	}

	got = raw(map[string]any{"function": int64(6), "data": "000000c8"})
	if diff := cmp.Diff(map[string]any{"response": "000000c8"}, got); diff != "" {
		t.Errorf("raw write holding 0 (-want +got):\n%s", diff)
	}
	if v := sn.Holding(0); v != 200 {
		t.Errorf("holding 0 = %d after raw write of 200", v)
	}

	got = raw(map[string]any{"function": int64(3), "data": "10000001"})
	want = map[string]any{"exception": int64(2), "exception_name": "illegal data address"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("raw read past the map (-want +got):\n%s", diff)
	}
	got = raw(map[string]any{"function": int64(0x41), "data": "00000001"})
	want = map[string]any{"exception": int64(1), "exception_name": "illegal function"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("raw unknown function (-want +got):\n%s", diff)
	}

	_, err = a.Invoke(ctx, DefaultResource, RawOperation, map[string]any{"function": 3, "data": "xyz"})
	if !errors.Is(err, adapters.ErrBadRequest) {
		t.Errorf("Invoke(bad hex) = %v, want ErrBadRequest", err)
	}
	sn.SetFault(sim.Fault{Drop: true})
	_, err = a.Invoke(ctx, DefaultResource, RawOperation, map[string]any{"function": 3, "data": "00000001"})
	if !errors.Is(err, adapters.ErrTimeout) {
		t.Errorf("Invoke(unit silent) = %v, want ErrTimeout", err)
	}
}

// TestRawOperationSerial runs raw requests, one of them of a function
// whose answer length the request does not tell (43/14), while two units
// on the same RTU bus are polled: every request and poll gets its own
// answer, so none interleaved on the bus.
func TestRawOperationSerial(t *testing.T) {
	if testing.Short() {
		t.Skip("serial peers: skipped with -short")
	}
	pa, pb := ptyPair(t)
	port, err := sim.OpenSerial(pa)
	if err != nil {
		t.Fatal(err)
	}
	sensors := map[byte]*sim.Sensor{1: sim.NewSensor(time.Hour, 0), 2: sim.NewSensor(time.Hour, 0)}
	sensors[2].SetIdentification(sim.Identification{Vendor: "ACME", Product: "TH-2", Revision: "1.0"})
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
	pool := NewPool()
	var raws []*Adapter
	var recs []*recorder
	for _, unit := range []int{1, 2} {
		a, err := New(fmt.Sprintf("s%d", unit), adaptersTOML(sensorConf("rtu://"+pb, unit, "baud = 115200\nallow_raw = true")), envForTest(t), WithPool(pool))
		if err != nil {
			t.Fatal(err)
		}
		rec := newRecorder()
		runAdapter(t, a, rec)
		raws, recs = append(raws, a), append(recs, rec)
	}
	for i, rec := range recs {
		waitFor(t, fmt.Sprintf("unit %d online", i+1), func() bool { on, _ := rec.lastStatus(); return on })
	}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	ident := "0e0181000003" + "0004" + fmt.Sprintf("%x", "ACME") + "0104" + fmt.Sprintf("%x", "TH-2") + "0203" + fmt.Sprintf("%x", "1.0")
	for i := 0; i < 20; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			data := fmt.Sprintf("0000%04x", 100+i)
			out, err := raws[0].Invoke(ctx, DefaultResource, RawOperation, map[string]any{"function": 6, "data": data})
			if err == nil && out["response"] != data {
				err = fmt.Errorf("raw write %d answered %v, want %s", i, out, data)
			}
			errs <- err
		}()
		go func() {
			defer wg.Done()
			out, err := raws[1].Invoke(ctx, DefaultResource, RawOperation, map[string]any{"function": 0x2B, "data": "0e0100"})
			if err == nil && out["response"] != ident {
				err = fmt.Errorf("raw identification answered %v, want %s", out, ident)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for i, rec := range recs {
		if on, _ := rec.lastStatus(); !on {
			t.Errorf("unit %d offline after raw requests", i+1)
		}
	}
	if pool.Len() != 1 {
		t.Errorf("two units on one bus use %d links, want 1", pool.Len())
	}
}
