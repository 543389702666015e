package profile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/osapgw/osapgw/adapters/modbus"
	"github.com/osapgw/osapgw/profiles"
	sim "github.com/osapgw/osapgw/sim/modbus"
)

// Options are how a Device departs from its profile.
type Options struct {
	// Change is how often the values change; 1 s when zero.
	Change time.Duration
	// Missing names points that answer exception 2 (illegal data
	// address), as points the device does not implement.
	Missing []string
	// Unit is the unit id the device answers on, which a point named
	// modbus_unit reports.
	Unit byte
}

// Device is one simulated device of a profile, a sim/modbus Unit. Its
// methods are safe for concurrent use.
type Device struct {
	name   string
	points []*point // sorted by table and address
	phases int

	start  time.Time
	change time.Duration
	now    func() time.Time

	mu       sync.Mutex
	stored   map[cell]uint16 // identity, writable points and writes: they win over the generated values
	coils    map[uint16]bool // coils written
	requests uint64
}

var _ sim.Unit = (*Device)(nil)

// cell is one register (or bit) of a table.
type cell struct {
	table modbus.Table
	addr  uint16
}

// point is one attribute of the profile, compiled.
type point struct {
	name    string
	table   modbus.Table
	addr    uint16
	n       int // registers, or 1 for a bit
	codec   modbus.Codec
	value   func(*state) any
	missing bool
}

func (p *point) overlaps(table modbus.Table, lo, hi int) bool {
	return p.table == table && int(p.addr) < hi && int(p.addr)+p.n > lo
}

// New returns a simulated device of the Modbus profile p. The error names
// the profile and what is wrong: a point whose encoding does not compile,
// an identity whose value does not fit, a missing point it does not have.
func New(p *profiles.Profile, opts Options) (*Device, error) {
	mp, err := modbus.DecodeProfile(p)
	if err != nil {
		return nil, err
	}
	if opts.Change <= 0 {
		opts.Change = time.Second
	}
	d := &Device{name: p.Name, start: time.Now(), change: opts.Change, now: time.Now,
		stored: map[cell]uint16{}, coils: map[uint16]bool{}, phases: 1}
	points := mp.Points()
	for _, a := range points {
		if strings.Contains(a.Name, "_l2") {
			d.phases = 3
		}
	}
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("profile %q: "+format, append([]any{p.Name}, args...)...))
	}
	for _, a := range points {
		table, codec, err := a.Codec()
		if err == nil && a.Address == nil {
			err = errors.New("address: missing")
		}
		if err != nil {
			fail("attribute %q: %v", a.Name, err)
			continue
		}
		pt := &point{name: a.Name, table: table, addr: uint16(*a.Address), n: codec.Registers(), codec: codec}
		pt.value = generator(a.Name, a.Unit, codec, table, d.phases, opts.Unit, p)
		d.points = append(d.points, pt)
		if a.Writable && !table.Bits() {
			// A setting: it starts at its plausible value and keeps what
			// is written.
			if err := d.store(pt, pt.value(d.state(0))); err != nil {
				fail("attribute %q: %v", a.Name, err)
			}
		}
	}
	for i, id := range mp.Identity {
		table, codec, err := id.Codec()
		v := id.Value
		if v == nil && len(id.Values) > 0 {
			v = id.Values[0]
		}
		if err == nil && id.Address == nil {
			err = errors.New("address: missing")
		}
		if err == nil {
			err = d.store(&point{table: table, addr: uint16(*id.Address), n: codec.Registers(), codec: codec}, v)
		}
		if err != nil {
			fail("identity #%d: %v", i+1, err)
		}
	}
	for _, name := range opts.Missing {
		i := slices.IndexFunc(d.points, func(pt *point) bool { return pt.name == name })
		if i < 0 {
			fail("no point %q to leave out", name)
			continue
		}
		d.points[i].missing = true
	}
	slices.SortStableFunc(d.points, func(a, b *point) int {
		if a.table != b.table {
			return strings.Compare(string(a.table), string(b.table))
		}
		return int(a.addr) - int(b.addr)
	})
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return d, nil
}

// store keeps v, encoded as pt encodes it, in the stored registers.
func (d *Device) store(pt *point, v any) error {
	if pt.table.Bits() {
		return nil
	}
	b, err := pt.codec.Encode(v, 0)
	if err != nil {
		return err
	}
	for i := range pt.n {
		d.stored[cell{pt.table, pt.addr + uint16(i)}] = binary.BigEndian.Uint16(b[2*i:])
	}
	return nil
}

// Name returns the name of the device's profile.
func (d *Device) Name() string { return d.name }

// Requests returns the number of requests the device has been asked.
func (d *Device) Requests() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.requests
}

func (d *Device) tick() int64 { return int64(d.now().Sub(d.start) / d.change) }

// Handle answers one request PDU (function code and data) with the
// response PDU: reads (functions 1 to 4) and writes (5, 6, 15, 16). It
// never drops a request nor delays its answer.
func (d *Device) Handle(pdu []byte) (resp []byte, delay time.Duration, drop bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.requests++
	if len(pdu) < 1 {
		return nil, 0, true
	}
	fc := pdu[0]
	exc := func(code byte) []byte { return []byte{fc | 0x80, code} }
	if len(pdu) < 5 {
		return exc(sim.IllegalDataValue), 0, false
	}
	addr := int(binary.BigEndian.Uint16(pdu[1:]))
	qty := int(binary.BigEndian.Uint16(pdu[3:]))
	switch fc {
	case 1, 2:
		if qty < 1 || qty > 2000 || addr+qty > 65536 {
			return exc(sim.IllegalDataAddress), 0, false
		}
		table := modbus.Coil
		if fc == 2 {
			table = modbus.Discrete
		}
		bits, ok := d.readBits(table, addr, qty)
		if !ok {
			return exc(sim.IllegalDataAddress), 0, false
		}
		out := make([]byte, 2+(qty+7)/8)
		out[0], out[1] = fc, byte((qty+7)/8)
		for i, b := range bits {
			if b {
				out[2+i/8] |= 1 << (i % 8)
			}
		}
		return out, 0, false
	case 3, 4:
		if qty < 1 || qty > 125 || addr+qty > 65536 {
			return exc(sim.IllegalDataAddress), 0, false
		}
		table := modbus.Holding
		if fc == 4 {
			table = modbus.Input
		}
		regs, ok := d.readRegisters(table, addr, qty)
		if !ok {
			return exc(sim.IllegalDataAddress), 0, false
		}
		out := make([]byte, 2+2*qty)
		out[0], out[1] = fc, byte(2*qty)
		for i, r := range regs {
			binary.BigEndian.PutUint16(out[2+2*i:], r)
		}
		return out, 0, false
	case 5:
		if qty != 0xFF00 && qty != 0 {
			return exc(sim.IllegalDataValue), 0, false
		}
		if d.touchesMissing(modbus.Coil, addr, 1) {
			return exc(sim.IllegalDataAddress), 0, false
		}
		d.coils[uint16(addr)] = qty == 0xFF00
		return slices.Clone(pdu[:5]), 0, false
	case 6:
		if d.touchesMissing(modbus.Holding, addr, 1) {
			return exc(sim.IllegalDataAddress), 0, false
		}
		d.stored[cell{modbus.Holding, uint16(addr)}] = uint16(qty)
		return slices.Clone(pdu[:5]), 0, false
	case 15, 16:
		if len(pdu) < 6 || len(pdu) != 6+int(pdu[5]) {
			return exc(sim.IllegalDataValue), 0, false
		}
		data := pdu[6:]
		if fc == 15 {
			if qty < 1 || qty > 1968 || int(pdu[5]) != (qty+7)/8 || addr+qty > 65536 {
				return exc(sim.IllegalDataValue), 0, false
			}
			if d.touchesMissing(modbus.Coil, addr, qty) {
				return exc(sim.IllegalDataAddress), 0, false
			}
			for i := range qty {
				d.coils[uint16(addr+i)] = data[i/8]>>(i%8)&1 == 1
			}
		} else {
			if qty < 1 || qty > 123 || int(pdu[5]) != 2*qty || addr+qty > 65536 {
				return exc(sim.IllegalDataValue), 0, false
			}
			if d.touchesMissing(modbus.Holding, addr, qty) {
				return exc(sim.IllegalDataAddress), 0, false
			}
			for i := range qty {
				d.stored[cell{modbus.Holding, uint16(addr + i)}] = binary.BigEndian.Uint16(data[2*i:])
			}
		}
		return slices.Clone(pdu[:5]), 0, false
	}
	return exc(sim.IllegalFunction), 0, false
}

func (d *Device) touchesMissing(table modbus.Table, addr, qty int) bool {
	for _, pt := range d.points {
		if pt.missing && pt.overlaps(table, addr, addr+qty) {
			return true
		}
	}
	return false
}

// readRegisters returns registers addr to addr+qty-1 of table, or false
// when they touch a missing point. Caller holds mu.
func (d *Device) readRegisters(table modbus.Table, addr, qty int) ([]uint16, bool) {
	if d.touchesMissing(table, addr, qty) {
		return nil, false
	}
	regs := make([]uint16, qty)
	st := d.state(d.tick())
	for _, pt := range d.points {
		if !pt.overlaps(table, addr, addr+qty) {
			continue
		}
		var cur uint16 // a bool in a register keeps the other bits
		if i := int(pt.addr) - addr; i >= 0 {
			cur = regs[i]
		}
		b, err := pt.codec.Encode(pt.value(st), cur)
		if err != nil {
			continue // a value the encoding cannot hold reads as 0 (a test keeps the embedded profiles from it)
		}
		for i := range pt.n {
			if j := int(pt.addr) + i - addr; j >= 0 && j < qty {
				regs[j] = binary.BigEndian.Uint16(b[2*i:])
			}
		}
	}
	for i := range regs {
		if v, ok := d.stored[cell{table, uint16(addr + i)}]; ok {
			regs[i] = v
		}
	}
	return regs, true
}

// readBits returns bits addr to addr+qty-1 of table, or false when they
// touch a missing point. Caller holds mu.
func (d *Device) readBits(table modbus.Table, addr, qty int) ([]bool, bool) {
	if d.touchesMissing(table, addr, qty) {
		return nil, false
	}
	bits := make([]bool, qty)
	st := d.state(d.tick())
	for _, pt := range d.points {
		if pt.overlaps(table, addr, addr+qty) {
			bits[int(pt.addr)-addr], _ = pt.value(st).(bool)
		}
	}
	if table == modbus.Coil {
		for i := range bits {
			if v, ok := d.coils[uint16(addr+i)]; ok {
				bits[i] = v
			}
		}
	}
	return bits, true
}
