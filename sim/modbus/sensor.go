// Package modbus simulates Modbus sensors: the server side of Modbus TCP
// (MBAP framing), RTU (CRC-16 framing, over a serial port or a
// pseudo-terminal) and ASCII, serving one or more units, each a Sensor with
// a realistic register map whose values change over time. Faults
// (exception responses, delays, dropped answers) can be injected at run
// time, for tests of a client's failure handling.
//
// # Register map of a Sensor
//
// Input registers (read-only):
//
//	0-1   temperature   float32 ABCD, °C (21 ± 4, a slow sine)
//	2-3   humidity      float32 ABCD, % (45 ± 10)
//	4     pressure      uint16, 0.1 hPa (10130 ± 20)
//	5     status bits   bit 0 running, bit 1 alarm
//	6-7   uptime        uint32 ABCD, s
//	8-9   temperature   int32 CDAB, 0.01 °C
//	10-17 status text   string, 16 characters ("OK" or "ALARM")
//	20-23 energy        float64 ABCD, kWh (grows)
//	24-27 ticks         uint64 DCBA (one per change interval)
//
// Holding registers (read/write):
//
//	0     setpoint      int16, 0.1 °C (215)
//	1     mode          uint16, 0 to 3 (other values: exception 3)
//	2-3   alarm limit   float32 ABCD, °C (30.0)
//	10    command       uint16: writing 1 clears a latched alarm
//	100-  bench         Extra registers, each changing every change interval
//
// Coils: 0 alarm (latched when temperature > alarm limit), 1 heater.
// Discrete inputs: 0 door open (toggles every 7 changes), 1 power ok.
//
// Read Device Identification (function 43/14) answers the basic objects
// set with SetIdentification, or exception 1 when none are set.
//
// Values depend on the time elapsed since the sensor started, in steps of
// the change interval, so a sensor needs no goroutine of its own.
package modbus

import (
	"encoding/binary"
	"math"
	"sync"
	"time"
)

// Sizes of the tables of a Sensor (holding grows with Extra).
const (
	InputRegisters   = 32
	HoldingRegisters = 100
	Coils            = 16
	DiscreteInputs   = 16
	BenchBase        = 100 // first holding register of the Extra ones
)

// Modbus exception codes the simulator answers with.
const (
	IllegalFunction     byte = 1
	IllegalDataAddress  byte = 2
	IllegalDataValue    byte = 3
	ServerDeviceFailure byte = 4
	ServerDeviceBusy    byte = 6
	GatewayNoResponse   byte = 0x0B
)

// Fault is what a Sensor does wrong to requests touching registers (or
// bits) From to To of any table (all of them when both are zero).
type Fault struct {
	Exception byte          // answer with this exception code (0: none)
	Delay     time.Duration // answer this late
	Drop      bool          // do not answer at all
	From, To  uint16
}

func (f Fault) covers(addr, count uint16) bool {
	if f.From == 0 && f.To == 0 {
		return true
	}
	return int(addr) <= int(f.To) && int(addr)+int(count)-1 >= int(f.From)
}

// Sensor is one simulated unit. Its methods are safe for concurrent use.
type Sensor struct {
	mu       sync.Mutex
	start    time.Time
	change   time.Duration
	now      func() time.Time
	holding  []uint16
	coils    [Coils]bool
	alarm    bool // latched
	fault    Fault
	requests uint64
	ident    Identification
}

// NewSensor returns a sensor whose values change every change interval
// (1 s when zero), with extra bench holding registers from BenchBase.
func NewSensor(change time.Duration, extra int) *Sensor {
	if change <= 0 {
		change = time.Second
	}
	s := &Sensor{start: time.Now(), change: change, now: time.Now, holding: make([]uint16, HoldingRegisters+extra)}
	s.holding[0] = 215
	limit := math.Float32bits(30)
	s.holding[2], s.holding[3] = uint16(limit>>16), uint16(limit)
	s.coils[1] = true
	return s
}

// SetFault makes the sensor misbehave; Fault{} restores it.
func (s *Sensor) SetFault(f Fault) {
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
}

// Requests returns the number of requests the sensor has been asked.
func (s *Sensor) Requests() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Holding returns holding register i.
func (s *Sensor) Holding(i int) uint16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.holding[i]
}

// SetHolding sets holding register i.
func (s *Sensor) SetHolding(i int, v uint16) {
	s.mu.Lock()
	s.holding[i] = v
	s.mu.Unlock()
}

// Coil returns coil i.
func (s *Sensor) Coil(i int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.update()
	return s.coils[i]
}

// Temperature returns the current temperature in °C.
func (s *Sensor) Temperature() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.temperature()
}

func (s *Sensor) tick() int64 { return int64(s.now().Sub(s.start) / s.change) }

func (s *Sensor) temperature() float64 {
	t := float64(s.tick())
	return math.Round((21+4*math.Sin(2*math.Pi*t/60))*100) / 100
}

func (s *Sensor) limit() float32 {
	return math.Float32frombits(uint32(s.holding[2])<<16 | uint32(s.holding[3]))
}

// update latches the alarm and moves the bench registers. Caller holds mu.
func (s *Sensor) update() {
	if float32(s.temperature()) > s.limit() {
		s.alarm = true
	}
	s.coils[0] = s.alarm
	t := s.tick()
	for i := HoldingRegisters; i < len(s.holding); i++ {
		s.holding[i] = uint16(t + int64(i))
	}
}

// inputs returns the input registers now. Caller holds mu.
func (s *Sensor) inputs() []uint16 {
	r := make([]uint16, InputRegisters)
	t := float64(s.tick())
	temp := s.temperature()
	put32 := func(i int, v uint32) { r[i], r[i+1] = uint16(v>>16), uint16(v) }
	put32(0, math.Float32bits(float32(temp)))
	put32(2, math.Float32bits(float32(math.Round((45+10*math.Sin(2*math.Pi*t/90))*10)/10)))
	r[4] = uint16(10130 + int(20*math.Sin(2*math.Pi*t/120)))
	r[5] = 1
	text := "OK"
	if s.alarm {
		r[5] |= 2
		text = "ALARM"
	}
	put32(6, uint32(s.now().Sub(s.start)/time.Second))
	t100 := uint32(int32(math.Round(temp * 100)))
	r[8], r[9] = uint16(t100), uint16(t100>>16) // CDAB
	var str [16]byte
	copy(str[:], text)
	for i := 0; i < 8; i++ {
		r[10+i] = binary.BigEndian.Uint16(str[2*i:])
	}
	e := math.Float64bits(1000 + t*0.01)
	for i := 0; i < 4; i++ {
		r[20+i] = uint16(e >> (48 - 16*i))
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(s.tick())) // DCBA: least significant byte first
	for i := 0; i < 4; i++ {
		r[24+i] = binary.BigEndian.Uint16(b[2*i:])
	}
	return r
}

func (s *Sensor) discretes() []bool {
	d := make([]bool, DiscreteInputs)
	d[0] = (s.tick()/7)%2 == 1
	d[1] = true
	return d
}

// Handle answers one request PDU (function code and data) and returns the
// response PDU; drop is true when the sensor does not answer, and delay is
// how late the answer must be.
func (s *Sensor) Handle(pdu []byte) (resp []byte, delay time.Duration, drop bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	s.update()
	if len(pdu) < 1 {
		return nil, 0, true
	}
	fc := pdu[0]
	exc := func(code byte) []byte { return []byte{fc | 0x80, code} }
	if fc == 0x2B {
		if s.fault.Drop {
			return nil, 0, true
		}
		return s.readDeviceID(pdu), s.fault.Delay, false
	}
	if len(pdu) < 5 {
		return exc(IllegalDataValue), 0, false
	}
	addr := binary.BigEndian.Uint16(pdu[1:])
	qty := binary.BigEndian.Uint16(pdu[3:])
	count := qty
	if fc == 5 || fc == 6 {
		count = 1
	}
	if f := s.fault; f.covers(addr, count) {
		if f.Drop {
			return nil, 0, true
		}
		delay = f.Delay
		if f.Exception != 0 {
			return exc(f.Exception), delay, false
		}
	}
	inRange := func(size int) bool { return count >= 1 && int(addr)+int(count) <= size }
	switch fc {
	case 1, 2: // read coils, discrete inputs
		bits := s.coils[:]
		if fc == 2 {
			bits = s.discretes()
		}
		if qty < 1 || qty > 2000 || !inRange(len(bits)) {
			return exc(IllegalDataAddress), delay, false
		}
		out := make([]byte, 2+(qty+7)/8)
		out[0], out[1] = fc, byte((qty+7)/8)
		for i := 0; i < int(qty); i++ {
			if bits[int(addr)+i] {
				out[2+i/8] |= 1 << (i % 8)
			}
		}
		return out, delay, false
	case 3, 4: // read holding, input registers
		regs := s.holding
		if fc == 4 {
			regs = s.inputs()
		}
		if qty < 1 || qty > 125 || !inRange(len(regs)) {
			return exc(IllegalDataAddress), delay, false
		}
		out := make([]byte, 2+2*int(qty))
		out[0], out[1] = fc, byte(2*qty)
		for i := 0; i < int(qty); i++ {
			binary.BigEndian.PutUint16(out[2+2*i:], regs[int(addr)+i])
		}
		return out, delay, false
	case 5: // write single coil
		if !inRange(Coils) {
			return exc(IllegalDataAddress), delay, false
		}
		if qty != 0xFF00 && qty != 0 {
			return exc(IllegalDataValue), delay, false
		}
		s.coils[addr] = qty == 0xFF00
		if addr == 0 {
			s.alarm = s.coils[0]
		}
		return append([]byte(nil), pdu[:5]...), delay, false
	case 6: // write single register
		if !inRange(len(s.holding)) {
			return exc(IllegalDataAddress), delay, false
		}
		if code := s.writeHolding(addr, []uint16{qty}); code != 0 {
			return exc(code), delay, false
		}
		return append([]byte(nil), pdu[:5]...), delay, false
	case 15, 16: // write multiple coils, registers
		if len(pdu) < 6 || len(pdu) != 6+int(pdu[5]) {
			return exc(IllegalDataValue), delay, false
		}
		data := pdu[6:]
		if fc == 15 {
			if qty < 1 || qty > 1968 || int(pdu[5]) != (int(qty)+7)/8 || !inRange(Coils) {
				return exc(IllegalDataAddress), delay, false
			}
			for i := 0; i < int(qty); i++ {
				s.coils[int(addr)+i] = data[i/8]>>(i%8)&1 == 1
			}
		} else {
			if qty < 1 || qty > 123 || int(pdu[5]) != 2*int(qty) {
				return exc(IllegalDataValue), delay, false
			}
			if !inRange(len(s.holding)) {
				return exc(IllegalDataAddress), delay, false
			}
			vals := make([]uint16, qty)
			for i := range vals {
				vals[i] = binary.BigEndian.Uint16(data[2*i:])
			}
			if code := s.writeHolding(addr, vals); code != 0 {
				return exc(code), delay, false
			}
		}
		return append([]byte(nil), pdu[:5]...), delay, false
	}
	return exc(IllegalFunction), delay, false
}

// writeHolding writes holding registers, refusing a bad mode. Caller
// holds mu.
func (s *Sensor) writeHolding(addr uint16, vals []uint16) byte {
	for i, v := range vals {
		a := int(addr) + i
		if a == 1 && v > 3 {
			return IllegalDataValue
		}
	}
	for i, v := range vals {
		a := int(addr) + i
		s.holding[a] = v
		if a == 10 && v == 1 {
			s.alarm = false
			s.coils[0] = false
			s.holding[a] = 0
		}
	}
	return 0
}
