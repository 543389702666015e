package modbus

import (
	"encoding/binary"
	"math"
	"sync"
	"time"
)

// This file simulates a SunSpec device: a PV inverter with a meter, as a
// SunSpec logger or an inverter with its grid meter presents them. The
// layout of each model (point offsets, types, scale factor points) follows
// the SunSpec Alliance's model definitions, github.com/sunspec/models
// json/model_1.json, model_103.json, model_160.json and model_203.json at
// commit 7abdf8982d5364f8ae916deee18aac86c11be36d.

// SunSpec register map, in holding registers from the base address (40000
// by default; 50000 and 0 are the other places a SunSpec client looks):
//
//	base+0    "SunS" marker (0x5375 0x6E53)
//	base+2    model 1, common, L = 66: manufacturer "osapgw", model
//	          "devsim-sunspec", version "1.2.3", serial "SIM-0001"
//	base+70   model 103, three-phase inverter (int + scale factors), L = 50
//	base+122  model 160, MPPT with 2 modules, L = 48
//	base+172  model 203, three-phase wye meter, L = 105
//	base+279  end marker 0xFFFF, L = 0
//
// Values change every change interval: AC power follows a slow sine
// around 3000 W, energies grow, the meter sees the inverter's power less
// a 500 W load (negative: exported). Scale factors are fixed (inverter
// A_SF -2, V_SF -1, W_SF 0, Hz_SF -2, WH_SF 1, DCV_SF -1, DCW_SF 0, Tmp_SF
// -1; MPPT DCA_SF -2, DCV_SF -1, DCW_SF 0, DCWH_SF 0; meter A_SF -2, V_SF
// -1, Hz_SF -2, W_SF 0, VAR_SF 0, PF_SF -2, TotWh_SF 0).
//
// Points that are not implemented, as SunSpec marks them: the inverter's
// PF (int16 0x8000) and DCA (uint16 0xFFFF), the meter's VA_SF (sunssf
// 0x8000, so VA and its phases cannot be scaled) and TotWhExp (acc32 0).
//
// Other addresses answer exception 2 (illegal data address), writes
// exception 1 (illegal function): the device is read-only.

// SunSpec addresses the simulator uses, relative to its base address.
const (
	SunSpecCommon   = 2   // model 1
	SunSpecInverter = 70  // model 103
	SunSpecMPPT     = 122 // model 160
	SunSpecMeter    = 172 // model 203
	SunSpecEnd      = 279 // end marker
	sunSpecSize     = 281
)

var _ Unit = (*SunSpec)(nil)

// SunSpec is one simulated SunSpec unit. Its methods are safe for
// concurrent use.
type SunSpec struct {
	mu       sync.Mutex
	base     uint16
	start    time.Time
	change   time.Duration
	now      func() time.Time
	regs     []uint16          // from base, values of the last update
	set      map[uint16]uint16 // registers set by SetRegister, by offset
	fault    Fault
	requests uint64
}

// NewSunSpec returns a SunSpec inverter with a meter whose chain starts at
// holding register base (40000, 50000 or 0 are where clients look) and
// whose values change every change interval (1 s when zero). devsim serves
// it with --profile sunspec.
func NewSunSpec(base uint16, change time.Duration) *SunSpec {
	if change <= 0 {
		change = time.Second
	}
	s := &SunSpec{base: base, start: time.Now(), change: change, now: time.Now,
		regs: make([]uint16, sunSpecSize), set: map[uint16]uint16{}}
	s.update()
	return s
}

// Base returns the address of the "SunS" marker.
func (s *SunSpec) Base() uint16 { return s.base }

// SetRegister fixes holding register addr (an absolute address within the
// chain) to v, whatever the simulation would put there: tests use it to
// break the chain or to mark a point not implemented. It does nothing for
// an address outside the chain.
func (s *SunSpec) SetRegister(addr, v uint16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if off := int(addr) - int(s.base); off >= 0 && off < len(s.regs) {
		s.set[uint16(off)] = v
		s.regs[off] = v
	}
}

// Register returns holding register addr as a read would now give it,
// and false outside the chain.
func (s *SunSpec) Register(addr uint16) (uint16, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.update()
	off := int(addr) - int(s.base)
	if off < 0 || off >= len(s.regs) {
		return 0, false
	}
	return s.regs[off], true
}

// SetFault makes the unit misbehave; Fault{} restores it. From and To are
// absolute register addresses.
func (s *SunSpec) SetFault(f Fault) {
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
}

// Requests returns the number of requests the unit has been asked.
func (s *SunSpec) Requests() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// InverterPower returns the AC power (W) the inverter reports now.
func (s *SunSpec) InverterPower() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.power()
}

func (s *SunSpec) tick() int64 { return int64(s.now().Sub(s.start) / s.change) }

func (s *SunSpec) power() float64 {
	return math.Round(3000 + 1500*math.Sin(2*math.Pi*float64(s.tick())/60))
}

// update computes the registers for now. Caller holds mu (or owns s).
func (s *SunSpec) update() {
	r := s.regs
	t := s.tick()
	i16 := func(v int) uint16 { return uint16(int16(v)) }
	put32 := func(off int, v uint32) { r[off], r[off+1] = uint16(v>>16), uint16(v) }
	str := func(off, n int, v string) {
		b := make([]byte, 2*n)
		copy(b, v)
		for i := 0; i < n; i++ {
			r[off+i] = binary.BigEndian.Uint16(b[2*i:])
		}
	}
	r[0], r[1] = 0x5375, 0x6E53 // "SunS"

	// Model 1, common.
	c := SunSpecCommon
	r[c], r[c+1] = 1, 66
	str(c+2, 16, "osapgw")          // Mn
	str(c+18, 16, "devsim-sunspec") // Md
	str(c+34, 8, "")                // Opt
	str(c+42, 8, "1.2.3")           // Vr
	str(c+50, 16, "SIM-0001")       // SN
	r[c+66] = 1                     // DA
	r[c+67] = 0x8000                // Pad

	// Model 103, three-phase inverter.
	w := s.power()
	v := SunSpecInverter
	r[v], r[v+1] = 103, 50
	phase := int(math.Round(w / 3 / 230 * 100)) // A, A_SF -2
	r[v+2], r[v+3], r[v+4], r[v+5] = uint16(3*phase), uint16(phase), uint16(phase), uint16(phase)
	r[v+6] = i16(-2)                                                 // A_SF
	r[v+7], r[v+8], r[v+9] = 4001, 3998, 4003                        // PPVphAB.. (V_SF -1)
	r[v+10], r[v+11], r[v+12] = 2301, 2305, 2298                     // PhVphA..C
	r[v+13] = i16(-1)                                                // V_SF
	r[v+14], r[v+15] = i16(int(w)), 0                                // W, W_SF
	r[v+16], r[v+17] = 5000+uint16(t%3), i16(-2)                     // Hz, Hz_SF
	r[v+18], r[v+19] = i16(int(w)), 0                                // VA, VA_SF
	r[v+20], r[v+21] = 0, 0                                          // VAr, VAr_SF
	r[v+22], r[v+23] = 0x8000, i16(-2)                               // PF: not implemented
	put32(v+24, uint32(1234567+t))                                   // WH (WH_SF 1: 12345670 Wh)
	r[v+26] = 1                                                      // WH_SF
	r[v+27], r[v+28] = 0xFFFF, i16(-2)                               // DCA: not implemented
	r[v+29], r[v+30] = 6123, i16(-1)                                 // DCV, DCV_SF
	r[v+31], r[v+32] = i16(int(w*1.03)), 0                           // DCW, DCW_SF
	r[v+33], r[v+34], r[v+35], r[v+36] = 452, 0x8000, 0x8000, 0x8000 // TmpCab, TmpSnk, TmpTrns, TmpOt
	r[v+37] = i16(-1)                                                // Tmp_SF
	r[v+38], r[v+39] = 4, 0xFFFF                                     // St (MPPT), StVnd
	for i := v + 40; i < v+52; i++ {
		r[i] = 0 // Evt1, Evt2, EvtVnd1-4
	}

	// Model 160, MPPT, two modules.
	m := SunSpecMPPT
	r[m], r[m+1] = 160, 48
	r[m+2], r[m+3], r[m+4], r[m+5] = i16(-2), i16(-1), 0, 0 // DCA_SF, DCV_SF, DCW_SF, DCWH_SF
	put32(m+6, 0)                                           // Evt
	r[m+8], r[m+9] = 2, 0xFFFF                              // N, TmsPer
	for k := 0; k < 2; k++ {
		g := m + 10 + 20*k
		r[g] = uint16(k + 1)
		str(g+1, 8, []string{"string A", "string B"}[k])
		dcw := w * 1.03 / 2
		r[g+9] = uint16(math.Round(dcw / 306.1 * 100)) // DCA
		r[g+10] = uint16(3061 - 20*k)                  // DCV
		r[g+11] = uint16(math.Round(dcw))              // DCW
		put32(g+12, uint32(6000000+1000*k+int(t)))     // DCWH
		put32(g+14, uint32(t))                         // Tms
		r[g+16] = i16(41 + k)                          // Tmp
		r[g+17] = 4                                    // DCSt
		put32(g+18, 0)                                 // DCEvt
	}

	// Model 203, three-phase wye meter: the inverter's power less a load.
	e := SunSpecMeter
	r[e], r[e+1] = 203, 105
	mw := 500 - w
	ma := int(math.Round(math.Abs(mw) / 3 / 230 * 100))
	r[e+2], r[e+3], r[e+4], r[e+5], r[e+6] = uint16(3*ma), uint16(ma), uint16(ma), uint16(ma), i16(-2)
	r[e+7], r[e+8], r[e+9], r[e+10] = 2302, 2302, 2306, 2299 // PhV, PhVphA..C
	r[e+11], r[e+12], r[e+13], r[e+14] = 3987, 3990, 3985, 3986
	r[e+15] = i16(-1)                // V_SF
	r[e+16], r[e+17] = 4999, i16(-2) // Hz, Hz_SF
	r[e+18] = i16(int(mw))           // W
	r[e+19], r[e+20], r[e+21] = i16(int(mw)/3), i16(int(mw)/3), i16(int(mw)-2*(int(mw)/3))
	r[e+22] = 0                                                                                           // W_SF
	r[e+23], r[e+24], r[e+25], r[e+26] = i16(int(math.Abs(mw))), 0, 0, 0                                  // VA, VAphA..C
	r[e+27] = 0x8000                                                                                      // VA_SF: not implemented
	r[e+28], r[e+29], r[e+30], r[e+31], r[e+32] = i16(-150), i16(-50), i16(-50), i16(-50), 0              // VAR.., VAR_SF
	r[e+33], r[e+34], r[e+35], r[e+36], r[e+37] = i16(-9800), i16(-9800), i16(-9700), i16(-9900), i16(-2) // PF.. (%), PF_SF
	put32(e+38, 0)                                                                                        // TotWhExp: not implemented
	for i := 40; i < 46; i += 2 {
		put32(e+i, 0)
	}
	put32(e+46, uint32(4500000+t)) // TotWhImp
	for i := 48; i < 54; i += 2 {
		put32(e+i, 0)
	}
	r[e+54] = 0 // TotWh_SF
	for i := 55; i < 105; i++ {
		r[e+i] = 0 // VAh, varh counters and their scale factors
	}
	r[e+71], r[e+104] = 0x8000, 0x8000 // TotVAh_SF, TotVArh_SF: not implemented
	put32(e+105, 0)                    // Evt

	r[SunSpecEnd], r[SunSpecEnd+1] = 0xFFFF, 0

	for off, v := range s.set {
		r[off] = v
	}
}

// Handle answers one request PDU (see Unit): reads of holding registers
// within the chain, exception 2 for other addresses, exception 1 for
// writes and other functions.
func (s *SunSpec) Handle(pdu []byte) (resp []byte, delay time.Duration, drop bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if len(pdu) < 1 {
		return nil, 0, true
	}
	fc := pdu[0]
	exc := func(code byte) []byte { return []byte{fc | 0x80, code} }
	if len(pdu) < 5 {
		return exc(IllegalDataValue), 0, false
	}
	addr := binary.BigEndian.Uint16(pdu[1:])
	qty := binary.BigEndian.Uint16(pdu[3:])
	if f := s.fault; f.covers(addr, qty) {
		if f.Drop {
			return nil, 0, true
		}
		delay = f.Delay
		if f.Exception != 0 {
			return exc(f.Exception), delay, false
		}
	}
	switch fc {
	case 3:
		off := int(addr) - int(s.base)
		if qty < 1 || qty > 125 || off < 0 || off+int(qty) > len(s.regs) {
			return exc(IllegalDataAddress), delay, false
		}
		s.update()
		out := make([]byte, 2+2*int(qty))
		out[0], out[1] = fc, byte(2*qty)
		for i := 0; i < int(qty); i++ {
			binary.BigEndian.PutUint16(out[2+2*i:], s.regs[off+i])
		}
		return out, delay, false
	case 1, 2, 4:
		return exc(IllegalDataAddress), delay, false
	}
	return exc(IllegalFunction), delay, false
}
