package modbus

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"testing"
	"time"
)

// readHolding asks u for qty holding registers from addr.
func readHolding(u Unit, addr, qty uint16) ([]uint16, error) {
	pdu := []byte{3, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(pdu[1:], addr)
	binary.BigEndian.PutUint16(pdu[3:], qty)
	resp, _, drop := u.Handle(pdu)
	switch {
	case drop:
		return nil, fmt.Errorf("no answer")
	case resp[0]&0x80 != 0:
		return nil, fmt.Errorf("exception %d", resp[1])
	}
	regs := make([]uint16, qty)
	for i := range regs {
		regs[i] = binary.BigEndian.Uint16(resp[2+2*i:])
	}
	return regs, nil
}

func TestSunSpecChain(t *testing.T) {
	for _, base := range []uint16{40000, 50000, 0} {
		t.Run(fmt.Sprint(base), func(t *testing.T) {
			s := NewSunSpec(base, time.Hour)
			marker, err := readHolding(s, base, 2)
			if err != nil || marker[0] != 0x5375 || marker[1] != 0x6E53 {
				t.Fatalf("marker at %d = %04x, %v, want 5375 6e53", base, marker, err)
			}
			// Walk the chain as a client does.
			var got []string
			addr := base + 2
			for i := 0; i < 10; i++ {
				hdr, err := readHolding(s, addr, 2)
				if err != nil {
					t.Fatalf("header at %d: %v", addr, err)
				}
				got = append(got, fmt.Sprintf("%d@%d+%d", hdr[0], addr-base, hdr[1]))
				if hdr[0] == 0xFFFF {
					break
				}
				addr += 2 + hdr[1]
			}
			want := "[1@2+66 103@70+50 160@122+48 203@172+105 65535@279+0]"
			if fmt.Sprint(got) != want {
				t.Errorf("chain = %v, want %s", got, want)
			}
		})
	}
}

func TestSunSpecHandle(t *testing.T) {
	s := NewSunSpec(40000, time.Hour)
	tests := []struct {
		name string
		pdu  string
		want string
	}{
		{name: "marker", pdu: "039c400002", want: "030453756e53"},
		{name: "before the chain", pdu: "039c3f0002", want: "8302"},
		{name: "past the end", pdu: "039d580002", want: "8302"}, // 40280..40281
		{name: "input registers", pdu: "049c400002", want: "8402"},
		{name: "write", pdu: "069c400001", want: "8601"},
		{name: "too many", pdu: "039c40007e", want: "8302"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pdu, _ := hex.DecodeString(tt.pdu)
			got, _, drop := s.Handle(pdu)
			if drop || hex.EncodeToString(got) != tt.want {
				t.Fatalf("Handle(%s) = %x (drop %v), want %s", tt.pdu, got, drop, tt.want)
			}
		})
	}
	// Points the simulator leaves not implemented, and a scale factor.
	inv := uint16(40000 + SunSpecInverter)
	for _, p := range []struct {
		name string
		addr uint16
		want uint16
	}{
		{"inverter PF", inv + 22, 0x8000},
		{"inverter DCA", inv + 27, 0xFFFF},
		{"inverter A_SF", inv + 6, 0xFFFE},
		{"meter VA_SF", 40000 + SunSpecMeter + 27, 0x8000},
		{"meter TotWhExp", 40000 + SunSpecMeter + 38, 0},
		{"meter TotWhExp low word", 40000 + SunSpecMeter + 39, 0},
	} {
		if got, ok := s.Register(p.addr); !ok || got != p.want {
			t.Errorf("%s (%d) = %04x, want %04x", p.name, p.addr, got, p.want)
		}
	}
	s.SetRegister(40000+SunSpecEnd, 42)
	if got, _ := s.Register(40000 + SunSpecEnd); got != 42 {
		t.Errorf("end marker after SetRegister = %d, want 42", got)
	}
	s.SetFault(Fault{Exception: ServerDeviceBusy, From: inv, To: inv + 1})
	if _, err := readHolding(s, inv, 4); err == nil || err.Error() != "exception 6" {
		t.Errorf("read through a fault: %v, want exception 6", err)
	}
}

// TestSunSpecChanges checks that values move with time and stay
// consistent: the inverter's W register is its power.
func TestSunSpecChanges(t *testing.T) {
	s := NewSunSpec(40000, time.Second)
	at := s.start
	s.now = func() time.Time { return at }
	w0 := s.InverterPower()
	at = at.Add(15 * time.Second)
	w1 := s.InverterPower()
	if w0 == w1 {
		t.Errorf("power did not change in 15 intervals: %v", w0)
	}
	r, _ := s.Register(40000 + SunSpecInverter + 14)
	if got := float64(int16(r)); got != w1 {
		t.Errorf("W register = %v, InverterPower() = %v", got, w1)
	}
}
