package modbus

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestEventRules(t *testing.T) {
	f := func(x float64) *float64 { return &x }
	tests := []struct {
		name   string
		rule   EventConfig
		values []any
		want   []string // "value/active" of each event fired
	}{
		{name: "above with hysteresis", rule: EventConfig{Above: f(80), Hysteresis: 2},
			values: []any{70.0, 81.0, 82.0, 79.0, 77.9, 78.5, 80.5},
			want:   []string{"81/true", "77.9/false", "80.5/true"}},
		{name: "below", rule: EventConfig{Below: f(10), Hysteresis: 1},
			values: []any{12.0, 9.0, 10.5, 11.5, 9.5},
			want:   []string{"9/true", "11.5/false", "9.5/true"}},
		{name: "already above at start", rule: EventConfig{Above: f(10)},
			values: []any{int64(20), int64(21)},
			want:   []string{"20/true"}},
		{name: "on change", rule: EventConfig{OnChange: true},
			values: []any{false, false, true, true, false},
			want:   []string{"true/<nil>", "false/<nil>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &event{EventConfig: tt.rule, resource: "main"}
			e.Name = "ev"
			var st eventState
			var got []string
			for _, v := range tt.values {
				if ev, ok := e.fire(&st, v); ok {
					got = append(got, fmtParam(ev.Params["value"])+"/"+fmtParam(ev.Params["active"]))
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("events mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func fmtParam(v any) string {
	switch x := v.(type) {
	case nil:
		return "<nil>"
	case float64:
		return trimFloat(x)
	}
	return fmtAny(v)
}

func TestDeadbandAndReportEvery(t *testing.T) {
	url, _, sensors := simTCP(t, time.Hour, 1, 2)
	pool := NewPool()
	// Unit 1: nothing changes, report_every forces reports.
	a1, err := New("u1", adaptersTOML(sensorConf(url, 1, `report_every = "100ms"`)), envForTest(t), WithPool(pool))
	if err != nil {
		t.Fatal(err)
	}
	// Unit 2: setpoint has a deadband of 1 °C.
	conf2 := sensorConf(url, 2, "")
	conf2 = replaceOnce(t, conf2, "read_back = true\n", "read_back = true\ndeadband = 1.0\n")
	a2, err := New("u2", adaptersTOML(conf2), envForTest(t), WithPool(pool))
	if err != nil {
		t.Fatal(err)
	}
	r1, r2 := newRecorder(), newRecorder()
	runAdapter(t, a1, r1)
	runAdapter(t, a2, r2)
	waitFor(t, "repeated reports of a steady value", func() bool { return r1.count("setpoint") >= 4 })

	waitFor(t, "first report", func() bool { return r2.count("setpoint") == 1 })
	sensors[2].SetHolding(0, 222) // 22.2: within the deadband of 21.5
	sensors[2].SetHolding(1, 3)   // mode: no deadband
	waitFor(t, "mode reported", func() bool { v, _ := r2.value("main", "mode"); return v == int64(3) })
	sensors[2].SetHolding(0, 230) // 23.0: beyond it
	waitFor(t, "setpoint 23", func() bool { v, _ := r2.value("main", "setpoint"); return v == 23.0 })
	if n := r2.count("setpoint"); n != 2 {
		t.Errorf("setpoint reported %d times, want 2 (21.5, then 23 but not 22.2)", n)
	}
}
