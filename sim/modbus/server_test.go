package modbus

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"io"
	"net"
	"testing"
	"time"
)

func TestCRC(t *testing.T) {
	// Read holding registers 0x006B+3 of unit 0x11: the Modbus
	// specification's example frame ends in CRC 0x8776 (sent 76 87).
	frame, _ := hex.DecodeString("1103006b0003")
	if got := CRC(frame); got != 0x8776 {
		t.Fatalf("CRC(%x) = %04x, want 8776", frame, got)
	}
	if got := LRC([]byte{0x11, 0x03, 0x00, 0x6B, 0x00, 0x03}); got != 0x7E {
		t.Fatalf("LRC = %02x, want 7e", got)
	}
}

func TestSensorHandle(t *testing.T) {
	s := NewSensor(time.Hour, 4)
	tests := []struct {
		name string
		pdu  string
		want string
	}{
		{name: "read setpoint and mode", pdu: "0300000002", want: "030400d70000"},
		{name: "read alarm limit", pdu: "0300020002", want: "030441f00000"},
		{name: "read past the end", pdu: "0300680001", want: "8302"},
		{name: "bad mode", pdu: "0600010007", want: "8603"},
		{name: "write mode", pdu: "0600010002", want: "0600010002"},
		{name: "read coils", pdu: "0100000002", want: "010102"},
		{name: "write coil", pdu: "050001ff00", want: "050001ff00"},
		{name: "write coil bad value", pdu: "0500011234", want: "8503"},
		{name: "write registers", pdu: "1000320002041234abcd", want: "1000320002"},
		{name: "unknown function", pdu: "2b0e010000", want: "ab01"},
		{name: "read discrete", pdu: "0200000002", want: "020102"},
		{name: "status string", pdu: "04000a0002", want: "04044f4b0000"},
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
	if got := s.Holding(51); got != 0xabcd {
		t.Errorf("holding 51 = %04x after write, want abcd", got)
	}
	s.SetFault(Fault{Exception: ServerDeviceBusy, From: 2, To: 3})
	if got, _, _ := s.Handle([]byte{3, 0, 0, 0, 1}); got[0] != 3 {
		t.Errorf("fault on 2-3 hit register 0: %x", got)
	}
	if got, _, _ := s.Handle([]byte{3, 0, 0, 0, 3}); hex.EncodeToString(got) != "8306" {
		t.Errorf("fault on 2-3 missed read 0-2: %x", got)
	}
	s.SetFault(Fault{Drop: true})
	if _, _, drop := s.Handle([]byte{3, 0, 0, 0, 1}); !drop {
		t.Error("Drop fault answered")
	}
}

func TestServeTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(map[byte]*Sensor{1: NewSensor(time.Hour, 0)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeTCP(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeTCP() = %v", err)
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ask := func(unit byte, pdu string) string {
		p, _ := hex.DecodeString(pdu)
		req := []byte{0, 7, 0, 0, 0, byte(len(p) + 1), unit}
		if _, err := c.Write(append(req, p...)); err != nil {
			t.Fatal(err)
		}
		hdr := make([]byte, 7)
		if _, err := io.ReadFull(c, hdr); err != nil {
			t.Fatal(err)
		}
		body := make([]byte, binary.BigEndian.Uint16(hdr[4:])-1)
		if _, err := io.ReadFull(c, body); err != nil {
			t.Fatal(err)
		}
		if hdr[1] != 7 || hdr[6] != unit {
			t.Fatalf("header %x does not echo transaction 7 and unit %d", hdr, unit)
		}
		return hex.EncodeToString(body)
	}
	if got := ask(1, "0300000001"); got != "030200d7" {
		t.Errorf("unit 1 read = %s, want 030200d7", got)
	}
	if got := ask(9, "0300000001"); got != "830b" {
		t.Errorf("unit 9 read = %s, want 830b (gateway: no answer from target)", got)
	}
}

func TestSensorChangesOverTime(t *testing.T) {
	s := NewSensor(time.Second, 3)
	now := s.start
	s.now = func() time.Time { return now }
	read := func(fc byte, addr, n uint16) string {
		got, _, _ := s.Handle([]byte{fc, byte(addr >> 8), byte(addr), byte(n >> 8), byte(n)})
		return hex.EncodeToString(got)
	}
	temp0, bench0, ticks0 := read(4, 0, 2), read(3, 100, 3), read(4, 24, 4)
	now = now.Add(15 * time.Second)
	temp1, bench1, ticks1 := read(4, 0, 2), read(3, 100, 3), read(4, 24, 4)
	if temp0 == temp1 || bench0 == bench1 {
		t.Errorf("after 15 changes: temperature %s -> %s, bench %s -> %s, want both changed", temp0, temp1, bench0, bench1)
	}
	if ticks0 != "04080000000000000000" || ticks1 != "04080f00000000000000" {
		t.Errorf("ticks (uint64 DCBA) = %s then %s, want 0 then 15", ticks0, ticks1)
	}
	if got := read(4, 6, 2); got != "04040000000f" {
		t.Errorf("uptime = %s, want 15 s", got)
	}
	// A limit below the temperature latches the alarm; command 1 clears it
	// once the limit is above again.
	s.SetHolding(2, 0)
	s.SetHolding(3, 0)
	if !s.Coil(0) || read(4, 10, 3) != "0406414c41524d00" {
		t.Errorf("alarm not latched: coil %v, text %s", s.Coil(0), read(4, 10, 3))
	}
	s.SetHolding(2, 0x41f0) // 30.0
	if !s.Coil(0) {
		t.Error("alarm not latched after the limit went back up")
	}
	if got := read(6, 10, 1); got != "06000a0001" {
		t.Fatalf("write command = %s", got)
	}
	if s.Coil(0) {
		t.Error("alarm still on after command 1")
	}
}

func TestSensorIdentification(t *testing.T) {
	s := NewSensor(time.Hour, 0)
	tests := []struct {
		name string
		id   Identification
		pdu  string
		want string
	}{
		{name: "none set", pdu: "2b0e0100", want: "ab01"},
		{name: "basic", id: Identification{Vendor: "ACME", Product: "M1", Revision: "1.2"},
			pdu: "2b0e0100", want: "2b0e01810000030004" + hex.EncodeToString([]byte("ACME")) + "0102" + hex.EncodeToString([]byte("M1")) + "0203" + hex.EncodeToString([]byte("1.2"))},
		{name: "one per answer", id: Identification{Vendor: "ACME", Product: "M1", Revision: "1.2", PerAnswer: 1},
			pdu: "2b0e0101", want: "2b0e0181ff0201" + "0102" + hex.EncodeToString([]byte("M1"))},
		{name: "individual", id: Identification{Vendor: "ACME", Product: "M1", Revision: "1.2"},
			pdu: "2b0e0402", want: "2b0e0481000001" + "0203" + hex.EncodeToString([]byte("1.2"))},
		{name: "individual past the end", id: Identification{Vendor: "ACME"}, pdu: "2b0e0407", want: "ab02"},
		{name: "bad read code", id: Identification{Vendor: "ACME"}, pdu: "2b0e0500", want: "ab03"},
		{name: "other MEI type", id: Identification{Vendor: "ACME"}, pdu: "2b0d0100", want: "ab01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.SetIdentification(tt.id)
			pdu, _ := hex.DecodeString(tt.pdu)
			got, _, drop := s.Handle(pdu)
			if drop || hex.EncodeToString(got) != tt.want {
				t.Fatalf("Handle(%s) = %x (drop %v), want %s", tt.pdu, got, drop, tt.want)
			}
		})
	}
}

// TestGateway plays the TCP peers of SetGateway: a serializing gateway
// answers absent units late and one request at a time; a plain device is
// silent for them.
func TestGateway(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(map[byte]*Sensor{1: NewSensor(time.Hour, 0)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeTCP(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeTCP() = %v", err)
		}
	}()
	// ask sends a read of unit on a new connection and returns the
	// answer's PDU in hex, or "" when none came within half a second.
	ask := func(unit byte) string {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Error(err)
			return ""
		}
		defer c.Close()
		if _, err := c.Write([]byte{0, 1, 0, 0, 0, 6, unit, 3, 0, 0, 0, 1}); err != nil {
			t.Error(err)
			return ""
		}
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		b := make([]byte, 260)
		n, err := io.ReadAtLeast(c, b, 9)
		if err != nil {
			return ""
		}
		return hex.EncodeToString(b[7:n])
	}
	const delay = 100 * time.Millisecond
	srv.SetGateway(Gateway{AbsentDelay: delay, Serialize: true})
	start := time.Now()
	answers := make(chan string, 2)
	for range 2 {
		go func() { answers <- ask(9) }()
	}
	for range 2 {
		if got := <-answers; got != "830b" {
			t.Errorf("absent unit behind a gateway = %q, want 830b", got)
		}
	}
	if took := time.Since(start); took < 2*delay {
		t.Errorf("two absent units behind a serializing gateway answered in %v, want at least %v", took, 2*delay)
	}
	srv.SetGateway(Gateway{Silent: true})
	if got := ask(9); got != "" {
		t.Errorf("absent unit of a plain device = %q, want no answer", got)
	}
	if got := ask(1); got != "030200d7" {
		t.Errorf("unit 1 of a plain device = %q, want 030200d7", got)
	}
}
