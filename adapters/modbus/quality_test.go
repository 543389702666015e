package modbus

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/goburrow/modbus"
	"github.com/google/go-cmp/cmp"

	"github.com/osapgw/osapgw/adapters"
)

// fakeUnit answers reads of holding registers as a unit with holes does:
// exception 2 for a read touching a bad address, 3 for a read longer than
// maxLen (when set), 6 for a read touching a busy address; after
// answering dieAfter reads (when set) it answers no more.
type fakeUnit struct {
	bad, busy map[uint16]bool
	maxLen    uint16
	dieAfter  int
	n         int // reads asked
	reads     []string
}

func (u *fakeUnit) read(r Read) ([]byte, error) {
	u.n++
	u.reads = append(u.reads, fmt.Sprintf("%d+%d", r.Address, r.Count))
	touches := func(set map[uint16]bool) bool {
		for a := range set {
			if a >= r.Address && int(a) < int(r.Address)+int(r.Count) {
				return true
			}
		}
		return false
	}
	switch {
	case u.dieAfter > 0 && u.n > u.dieAfter:
		return nil, fmt.Errorf("holding: %w: i/o timeout", adapters.ErrTimeout)
	case touches(u.bad):
		return nil, &modbus.ModbusError{FunctionCode: 3, ExceptionCode: 2}
	case touches(u.busy):
		return nil, &modbus.ModbusError{FunctionCode: 3, ExceptionCode: 6}
	case u.maxLen > 0 && r.Count > u.maxLen:
		return nil, &modbus.ModbusError{FunctionCode: 3, ExceptionCode: 3}
	}
	return make([]byte, 2*r.Count), nil
}

func set(addrs ...uint16) map[uint16]bool {
	m := map[uint16]bool{}
	for _, a := range addrs {
		m[a] = true
	}
	return m
}

// floats returns n float32 spans (two registers each) from address 0.
func floats(n int) []Span {
	var s []Span
	for i := range n {
		s = append(s, Span{ID: i, Table: Holding, Address: uint16(2 * i), Count: 2})
	}
	return s
}

func TestIsolate(t *testing.T) {
	const exc2 = "exception 2 (illegal data address)"
	tests := []struct {
		name  string
		spans []Span
		unit  fakeUnit
		want  []string // the pieces: "address+count IDs result"
		reads int      // reads isolate made (the first, failed one not counted)
		err   bool
	}{
		{name: "one bad among eight", spans: floats(8), unit: fakeUnit{bad: set(8)},
			want:  []string{"0+8 [0 1 2 3] ok", "8+2 [4] bad alone: " + exc2, "10+6 [5 6 7] ok"},
			reads: 6},
		{name: "bad first", spans: floats(8), unit: fakeUnit{bad: set(1)},
			want:  []string{"0+2 [0] bad alone: " + exc2, "2+14 [1 2 3 4 5 6 7] ok"},
			reads: 5},
		{name: "bad last", spans: floats(8), unit: fakeUnit{bad: set(15)},
			want:  []string{"0+14 [0 1 2 3 4 5 6] ok", "14+2 [7] bad alone: " + exc2},
			reads: 4},
		{name: "two side by side", spans: floats(8), unit: fakeUnit{bad: set(6, 8)},
			want:  []string{"0+6 [0 1 2] ok", "6+2 [3] bad alone: " + exc2, "8+2 [4] bad alone: " + exc2, "10+6 [5 6 7] ok"},
			reads: 7},
		{name: "all bad", spans: floats(4), unit: fakeUnit{bad: set(0, 2, 4, 6)},
			want:  []string{"0+2 [0] bad alone: " + exc2, "2+2 [1] bad alone: " + exc2, "4+2 [2] bad alone: " + exc2, "6+2 [3] bad alone: " + exc2},
			reads: 5},
		{name: "a hole in the gap: both spans are good, apart", spans: []Span{{0, Holding, 0, 1}, {1, Holding, 4, 1}}, unit: fakeUnit{bad: set(2)},
			want:  []string{"0+1 [0] ok", "4+1 [1] ok"},
			reads: 2},
		{name: "the unit reads at most 4 registers", spans: []Span{{0, Holding, 0, 1}, {1, Holding, 1, 1}, {2, Holding, 2, 1}, {3, Holding, 3, 1}, {4, Holding, 4, 1}, {5, Holding, 5, 1}, {6, Holding, 6, 1}, {7, Holding, 7, 1}},
			unit:  fakeUnit{maxLen: 4},
			want:  []string{"0+4 [0 1 2 3] ok", "4+4 [4 5 6 7] ok"},
			reads: 5},
		{name: "bits of one register stay together", spans: []Span{{0, Holding, 4, 1}, {1, Holding, 5, 1}, {2, Holding, 5, 1}}, unit: fakeUnit{bad: set(5)},
			want:  []string{"4+1 [0] ok", "5+1 [1 2] bad alone: " + exc2},
			reads: 2},
		{name: "one span: bad alone at once", spans: floats(1), unit: fakeUnit{bad: set(0)},
			want: []string{"0+2 [0] bad alone: " + exc2}},
		{name: "busy: all bad, no split", spans: floats(4), unit: fakeUnit{busy: set(4)},
			want: []string{"0+8 [0 1 2 3] bad: exception 6 (server device busy)"}},
		{name: "busy met while splitting", spans: floats(8), unit: fakeUnit{bad: set(12), busy: set(2)},
			want:  []string{"0+16 [0 1 2 3 4 5 6 7] bad: exception 6 (server device busy)"},
			reads: 1},
		{name: "no answer while splitting", spans: floats(8), unit: fakeUnit{bad: set(12), dieAfter: 1},
			want: nil, reads: 1, err: true},
		{name: "no answer after a good prefix", spans: floats(8), unit: fakeUnit{bad: set(12), dieAfter: 2},
			want: []string{"0+8 [0 1 2 3] ok"}, reads: 2, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Plan(tt.spans, Limits{MaxGap: 8, MaxRegisters: 125, MaxBits: 2000})
			if len(r) != 1 {
				t.Fatalf("Plan(%v) = %v, want one read", tt.spans, r)
			}
			u := tt.unit
			_, first := u.read(r[0])
			if first == nil {
				t.Fatalf("read of %v answered; the table wants it to fail", r[0])
			}
			u.reads = nil
			span := func(id int) Span { return tt.spans[id] }
			pieces, err := isolate(r[0], first, time.Second, span, u.read)
			if (err != nil) != tt.err {
				t.Fatalf("isolate(%v) error = %v, want error %v", r[0], err, tt.err)
			}
			var got []string
			for _, p := range pieces {
				s := fmt.Sprintf("%d+%d %v ", p.Address, p.Count, p.IDs)
				switch {
				case p.b != nil:
					s += "ok"
				case p.isolated:
					s += "bad alone: " + p.reason
				default:
					s += "bad: " + p.reason
				}
				got = append(got, s)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("isolate(%v) pieces mismatch (-want +got):\n%s", r[0], diff)
			}
			if len(u.reads) != tt.reads {
				t.Errorf("isolate(%v) made %d reads %v, want %d", r[0], len(u.reads), u.reads, tt.reads)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		err    error
		kind   failure
		reason string
	}{
		{&modbus.ModbusError{FunctionCode: 3, ExceptionCode: 2}, failAddress, "exception 2 (illegal data address)"},
		{fmt.Errorf("device: %w", &modbus.ModbusError{ExceptionCode: 3}), failAddress, "exception 3 (illegal data value)"},
		{&modbus.ModbusError{ExceptionCode: 4}, failAddress, "exception 4 (server device failure)"},
		{&modbus.ModbusError{ExceptionCode: 1}, failException, "exception 1 (illegal function)"},
		{&modbus.ModbusError{ExceptionCode: 6}, failException, "exception 6 (server device busy)"},
		{&modbus.ModbusError{ExceptionCode: 0x42}, failException, "exception 66 (unknown)"},
		{&modbus.ModbusError{ExceptionCode: 11}, failNoAnswer, "exception 11 (gateway target device failed to respond)"},
		{&modbus.ModbusError{ExceptionCode: 10}, failNoAnswer, "exception 10 (gateway path unavailable)"},
		{fmt.Errorf("x: %w of 2 bytes", errShortAnswer), failException, "short answer"},
		{fmt.Errorf("x: %w: i/o timeout", adapters.ErrTimeout), failNoAnswer, "no answer within 1.5s"},
		{errLinkDown, failLink, errLinkDown.Error()},
		{errors.New("context canceled"), failLink, "context canceled"},
	}
	for _, tt := range tests {
		kind, reason := classify(tt.err, 1500*time.Millisecond)
		if kind != tt.kind || reason != tt.reason {
			t.Errorf("classify(%v) = %d, %q, want %d, %q", tt.err, kind, reason, tt.kind, tt.reason)
		}
	}
}
