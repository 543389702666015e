package modbus

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/goburrow/modbus"
	"github.com/goburrow/serial"
)

// errHangUp is returned when a serial port reads end of file: the device
// is gone (USB adapter unplugged, pty closed).
var errHangUp = errors.New("serial port hung up")

// serialTransport sends RTU or ASCII frames on a serial port. It replaces
// goburrow's serial transporters, whose reads loop forever on a port that
// hung up (read returns 0 bytes and no error): with it, an unplugged
// adapter fails the request and the link reopens the port.
type serialTransport struct {
	cfg   serial.Config
	ascii bool
	port  serial.Port
}

// Connect opens the port if it is not open.
func (t *serialTransport) Connect() error {
	if t.port != nil {
		return nil
	}
	p, err := serial.Open(&t.cfg)
	if err != nil {
		return err
	}
	t.port = p
	return nil
}

// Close closes the port if it is open.
func (t *serialTransport) Close() error {
	if t.port == nil {
		return nil
	}
	err := t.port.Close()
	t.port = nil
	return err
}

// read reads at least one byte into b.
func (t *serialTransport) read(b []byte) (int, error) {
	n, err := t.port.Read(b)
	if n == 0 && err == nil {
		return 0, errHangUp
	}
	return n, err
}

// Send writes the request frame and reads the answer frame.
func (t *serialTransport) Send(req []byte) ([]byte, error) {
	if err := t.Connect(); err != nil {
		return nil, err
	}
	if _, err := t.port.Write(req); err != nil {
		return nil, err
	}
	if t.ascii {
		return t.readASCII()
	}
	return t.readRTU(req)
}

// readRTU reads an RTU answer: its length follows from the request's
// function code, or is 5 bytes for an exception.
func (t *serialTransport) readRTU(req []byte) ([]byte, error) {
	want := rtuAnswerLen(req)
	buf := make([]byte, 256)
	n := 0
	for {
		if n >= 2 && buf[1] == req[1]|0x80 {
			want = 5
		}
		if want > 0 && n >= want && n >= 4 || want == 0 && n >= 4 && rtuFrameOK(buf[:n]) {
			return buf[:n], nil
		}
		if n == len(buf) {
			return nil, fmt.Errorf("modbus: rtu answer longer than %d bytes", len(buf))
		}
		m, err := t.read(buf[n:])
		n += m
		if err != nil {
			return nil, err
		}
	}
}

// rtuAnswerLen returns the length of the answer to an RTU request
// (address, function, data, CRC), or 0 when the request does not tell it
// (a function it does not know, or a request of unusual length, as
// modbus.raw and Read Device Identification send): readRTU then reads
// until the frame's CRC checks.
func rtuAnswerLen(req []byte) int {
	const head = 1 + 1 + 2 // address, function, CRC
	if len(req) < 4 {
		return head
	}
	count := 0
	if len(req) >= 6 {
		count = int(req[4])<<8 | int(req[5])
	}
	switch req[1] {
	case modbus.FuncCodeReadCoils, modbus.FuncCodeReadDiscreteInputs:
		if len(req) == 8 {
			return head + 1 + (count+7)/8
		}
	case modbus.FuncCodeReadHoldingRegisters, modbus.FuncCodeReadInputRegisters:
		if len(req) == 8 {
			return head + 1 + 2*count
		}
	case modbus.FuncCodeWriteSingleCoil, modbus.FuncCodeWriteSingleRegister:
		if len(req) == 8 {
			return head + 4
		}
	case modbus.FuncCodeWriteMultipleCoils, modbus.FuncCodeWriteMultipleRegisters:
		if len(req) >= 9 && len(req) == 9+int(req[6]) {
			return head + 4
		}
	}
	return 0
}

// rtuFrameOK reports whether the RTU frame b ends with the CRC of the rest.
// A frame cut short fails the check but for one chance in 65536.
func rtuFrameOK(b []byte) bool {
	crc := uint16(0xFFFF)
	for _, x := range b[:len(b)-2] {
		crc ^= uint16(x)
		for i := 0; i < 8; i++ {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return b[len(b)-2] == byte(crc) && b[len(b)-1] == byte(crc>>8)
}

// readASCII reads an ASCII answer, up to its CR LF.
func (t *serialTransport) readASCII() ([]byte, error) {
	buf := make([]byte, 513)
	n := 0
	for {
		if n >= 3 && bytes.HasSuffix(buf[:n], []byte("\r\n")) {
			if i := bytes.IndexByte(buf[:n], ':'); i > 0 {
				return buf[i:n], nil // drop noise before the start
			}
			return buf[:n], nil
		}
		if n == len(buf) {
			return nil, fmt.Errorf("modbus: ascii answer longer than %d bytes", len(buf))
		}
		m, err := t.read(buf[n:])
		n += m
		if err != nil {
			return nil, err
		}
	}
}

// serialHandler is goburrow's packager (RTU or ASCII framing) over our
// transport.
type serialHandler struct {
	modbus.Packager
	*serialTransport
}

// newSerialHandler returns the handler of a serial link and the function
// that sets the unit of the next request.
func newSerialHandler(l link, timeout time.Duration) (handler, func(byte)) {
	t := &serialTransport{
		cfg:   serial.Config{Address: l.Address, BaudRate: l.Baud, DataBits: l.DataBits, StopBits: l.StopBits, Parity: l.Parity, Timeout: timeout},
		ascii: l.Scheme == "ascii",
	}
	if t.ascii {
		p := modbus.NewASCIIClientHandler(l.Address)
		return serialHandler{Packager: p, serialTransport: t}, func(u byte) { p.SlaveId = u }
	}
	p := modbus.NewRTUClientHandler(l.Address)
	return serialHandler{Packager: p, serialTransport: t}, func(u byte) { p.SlaveId = u }
}
