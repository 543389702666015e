package modbus

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestPlan(t *testing.T) {
	tests := []struct {
		name  string
		spans []Span
		lim   Limits
		want  []Read
	}{
		{
			name:  "adjacent merge",
			spans: []Span{{0, Input, 0, 2}, {1, Input, 2, 2}, {2, Input, 4, 1}},
			lim:   Limits{MaxGap: 0, MaxRegisters: 125, MaxBits: 2000},
			want:  []Read{{Input, 0, 5, []int{0, 1, 2}}},
		},
		{
			name:  "gap within max_gap is read",
			spans: []Span{{0, Holding, 0, 1}, {1, Holding, 9, 1}},
			lim:   Limits{MaxGap: 8, MaxRegisters: 125, MaxBits: 2000},
			want:  []Read{{Holding, 0, 10, []int{0, 1}}},
		},
		{
			name:  "gap beyond max_gap splits",
			spans: []Span{{0, Holding, 0, 1}, {1, Holding, 10, 1}},
			lim:   Limits{MaxGap: 8, MaxRegisters: 125, MaxBits: 2000},
			want:  []Read{{Holding, 0, 1, []int{0}}, {Holding, 10, 1, []int{1}}},
		},
		{
			name:  "max_registers splits",
			spans: []Span{{0, Holding, 0, 4}, {1, Holding, 4, 4}, {2, Holding, 8, 4}},
			lim:   Limits{MaxGap: 8, MaxRegisters: 8, MaxBits: 2000},
			want:  []Read{{Holding, 0, 8, []int{0, 1}}, {Holding, 8, 4, []int{2}}},
		},
		{
			name:  "tables never merge, order coil discrete input holding",
			spans: []Span{{0, Holding, 0, 1}, {1, Input, 1, 1}, {2, Coil, 2, 1}, {3, Discrete, 3, 1}},
			lim:   Limits{MaxGap: 8, MaxRegisters: 125, MaxBits: 2000},
			want:  []Read{{Coil, 2, 1, []int{2}}, {Discrete, 3, 1, []int{3}}, {Input, 1, 1, []int{1}}, {Holding, 0, 1, []int{0}}},
		},
		{
			name:  "bits of one register share a read",
			spans: []Span{{0, Input, 5, 1}, {1, Input, 5, 1}, {2, Input, 4, 1}},
			lim:   Limits{MaxGap: 0, MaxRegisters: 125, MaxBits: 2000},
			want:  []Read{{Input, 4, 2, []int{2, 0, 1}}},
		},
		{
			name:  "max_bits",
			spans: []Span{{0, Coil, 0, 1}, {1, Coil, 1999, 1}, {2, Coil, 2000, 1}},
			lim:   Limits{MaxGap: 2000, MaxRegisters: 125, MaxBits: 2000},
			want:  []Read{{Coil, 0, 2000, []int{0, 1}}, {Coil, 2000, 1, []int{2}}},
		},
		{
			name:  "merging off",
			spans: []Span{{0, Input, 0, 2}, {1, Input, 2, 2}},
			lim:   Limits{MaxGap: -1, MaxRegisters: 125, MaxBits: 2000},
			want:  []Read{{Input, 0, 2, []int{0}}, {Input, 2, 2, []int{1}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Plan(tt.spans, tt.lim)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("Plan() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// realisticMap is a three-phase power meter as vendors document them
// (addresses of a common meter family), plus status coils.
var realisticMap = `url = "tcp://127.0.0.1:502"
unit = 1
` + meterAttrs

var meterAttrs = func() string {
	var b strings.Builder
	add := func(name, table string, addr int, typ string) {
		fmt.Fprintf(&b, "[[attribute]]\nname = %q\ntable = %q\naddress = %d\ntype = %q\n", name, table, addr, typ)
	}
	for i, ph := range []string{"l1", "l2", "l3"} {
		add("voltage_"+ph, "input", 0+2*i, "float32")
		add("current_"+ph, "input", 6+2*i, "float32")
		add("power_"+ph, "input", 12+2*i, "float32")
		add("apparent_power_"+ph, "input", 18+2*i, "float32")
		add("reactive_power_"+ph, "input", 24+2*i, "float32")
		add("power_factor_"+ph, "input", 30+2*i, "float32")
	}
	add("total_power", "input", 52, "float32")
	add("total_apparent_power", "input", 56, "float32")
	add("total_reactive_power", "input", 60, "float32")
	add("frequency", "input", 70, "float32")
	add("import_energy", "input", 72, "float32")
	add("export_energy", "input", 74, "float32")
	add("neutral_current", "input", 224, "float32")
	add("thd_voltage_l1", "input", 234, "float32")
	add("thd_voltage_l2", "input", 236, "float32")
	add("thd_voltage_l3", "input", 238, "float32")
	add("total_energy", "input", 342, "float64")
	add("serial_number", "holding", 0xFC00, "uint32")
	add("meter_code", "holding", 0xFC02, "uint16")
	add("demand_period", "holding", 2, "uint16")
	add("system_type", "holding", 10, "uint16")
	add("pulse_width", "holding", 12, "uint16")
	add("relay_1", "coil", 0, "bool")
	add("relay_2", "coil", 1, "bool")
	add("tamper", "discrete", 4, "bool")
	add("door", "discrete", 7, "bool")
	return b.String()
}()

func TestPlanRealisticMap(t *testing.T) {
	a, err := New("meter", adaptersTOML(realisticMap), envForTest(t))
	if err != nil {
		t.Fatal(err)
	}
	merged := a.Requests()
	var spans []Span
	for i, at := range a.dev.attrs {
		spans = append(spans, at.spanOf(i))
	}
	unmerged := Plan(spans, Limits{MaxGap: -1, MaxRegisters: 125, MaxBits: 2000})
	var b strings.Builder
	fmt.Fprintf(&b, "# %d attributes of a three-phase power meter\n", len(a.dev.attrs))
	fmt.Fprintf(&b, "# merged (max_gap 8, max_registers 125): %d requests\n", len(merged))
	for _, r := range merged {
		names := make([]string, len(r.IDs))
		for i, id := range r.IDs {
			names[i] = a.dev.attrs[id].m.Name
		}
		fmt.Fprintf(&b, "%-8s %5d +%3d  %s\n", r.Table, r.Address, r.Count, strings.Join(names, " "))
	}
	fmt.Fprintf(&b, "# without merging: %d requests\n", len(unmerged))
	got := b.String()
	if len(merged) >= len(unmerged) || len(merged) != 8 || len(unmerged) != len(a.dev.attrs) {
		t.Errorf("requests: %d merged, %d unmerged for %d attributes, want 8 and %d", len(merged), len(unmerged), len(a.dev.attrs), len(a.dev.attrs))
	}
	golden := filepath.Join("testdata", "plan.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("plan mismatch (-want +got):\n%s", diff)
	}
	t.Logf("\n%s", got)
}
