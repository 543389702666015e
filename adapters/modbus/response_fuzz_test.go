package modbus

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/goburrow/modbus"
	"github.com/goburrow/serial"

	"github.com/osapgw/osapgw/profiles"
)

// fakePort is a serial port whose answer is given: each read returns at
// most chunk bytes of it, then io.EOF.
type fakePort struct {
	answer []byte
	chunk  int
}

func (p *fakePort) Read(b []byte) (int, error) {
	if len(p.answer) == 0 {
		return 0, io.EOF
	}
	n := min(len(b), len(p.answer), p.chunk)
	copy(b, p.answer[:n])
	p.answer = p.answer[n:]
	return n, nil
}
func (p *fakePort) Write(b []byte) (int, error) { return len(b), nil }
func (p *fakePort) Close() error                { return nil }
func (p *fakePort) Open(*serial.Config) error   { return nil }

// tcpAnswer is goburrow's TCP packager on a transport that answers with a
// given frame, cut to the 260 bytes goburrow's TCP transport reads at most.
type tcpAnswer struct {
	modbus.Packager
	answer []byte
}

func (h tcpAnswer) Send([]byte) ([]byte, error) {
	return h.answer[:min(len(h.answer), 260)], nil
}

// Transport schemes a fuzzed answer arrives on.
const (
	schemeTCP = iota
	schemeRTU
	schemeASCII
	nSchemes
)

// answerClient returns the client a link would use on scheme, answering
// every request with answer (delivered chunk bytes a read on serial).
func answerClient(scheme int, unit byte, answer []byte, chunk int) modbus.Client {
	switch scheme {
	case schemeRTU, schemeASCII:
		h, setUnit := newSerialHandler(link{Address: "/dev/fuzz", Scheme: map[int]string{schemeRTU: "rtu", schemeASCII: "ascii"}[scheme]}, 0)
		setUnit(unit)
		h.(serialHandler).port = &fakePort{answer: answer, chunk: chunk}
		return newPDUClient(h)
	}
	p := modbus.NewTCPClientHandler("fuzz:502")
	p.SlaveId = unit
	return newPDUClient(tcpAnswer{Packager: p, answer: answer})
}

// The functions whose answers the adapter decodes.
const (
	fnReadCoils = iota
	fnReadDiscrete
	fnReadHolding
	fnReadInput
	fnWriteCoil
	fnWriteRegister
	fnWriteRegisters
	fnDeviceID
	fnRaw
	nFunctions
)

// fuzzJob returns the job of function fn (one of the fn constants) as the
// adapter sends it, with addr and count fitted to the function's limits,
// and the read it performs (Count 0 when it is not a read).
func fuzzJob(fn int, addr, count uint16, data []byte) (func(modbus.Client) ([]byte, error), Read) {
	var r Read
	switch fn {
	case fnReadCoils, fnReadDiscrete:
		r = Read{Table: map[int]Table{fnReadCoils: Coil, fnReadDiscrete: Discrete}[fn], Address: addr, Count: count%2000 + 1}
	case fnReadHolding, fnReadInput:
		r = Read{Table: map[int]Table{fnReadHolding: Holding, fnReadInput: Input}[fn], Address: addr, Count: count%125 + 1}
	case fnWriteCoil:
		v := uint16(0)
		if count&1 == 1 {
			v = 0xFF00
		}
		return func(c modbus.Client) ([]byte, error) { return c.WriteSingleCoil(addr, v) }, r
	case fnWriteRegister:
		return func(c modbus.Client) ([]byte, error) { return c.WriteSingleRegister(addr, count) }, r
	case fnWriteRegisters:
		n := count%123 + 1
		return func(c modbus.Client) ([]byte, error) { return c.WriteMultipleRegisters(addr, n, make([]byte, 2*n)) }, r
	case fnDeviceID:
		return pduFn(0x2B, []byte{0x0E, 0x01, byte(addr)}), r
	default:
		return pduFn(byte(count%127+1), data[:min(len(data), MaxPDUData)]), r
	}
	return readFn(r), r
}

// checkDecoded asserts what the adapter relies on in an answer b to the
// read r that doRead accepts: every point that fits in r decodes without
// indexing past b, and a register value has the bytes it needs.
func checkDecoded(t *testing.T, r Read, b []byte) {
	t.Helper()
	if len(b) > 255 {
		t.Fatalf("answer to %v carries %d data bytes; its byte count holds at most 255", r, len(b))
	}
	if len(b) < answerBytes(r) {
		return // doRead refuses it (errShortAnswer)
	}
	if r.Table.bits() {
		enc := &encoding{table: r.Table, codec: Codec{Type: Bool, Bit: -1, Scale: 1}}
		for off := range int(r.Count) {
			if _, err := decodeAttr(&attr{enc: enc, addr: r.Address + uint16(off)}, r, b); err != nil {
				t.Fatalf("decodeAttr(bit %d of %v) = %v", off, r, err)
			}
		}
		return
	}
	for _, typ := range Types {
		c := Codec{Type: typ, Order: ABCD, Bit: 0, Length: 4, Scale: 1}
		for off := 0; off+c.Registers() <= int(r.Count); off++ {
			at := &attr{enc: &encoding{table: r.Table, codec: c}, addr: r.Address + uint16(off)}
			v, err := decodeAttr(at, r, b)
			if err != nil && !strings.Contains(err.Error(), "not a number") {
				t.Fatalf("decodeAttr(%s at %d of %v, %d bytes) = %v", typ, off, r, len(b), err)
			}
			if s, ok := v.(string); ok && len(s) > 2*c.Registers() {
				t.Fatalf("decodeAttr(%s at %d) = %d bytes of text from %d registers", typ, off, len(s), c.Registers())
			}
		}
	}
}

// FuzzResponse sends each request the adapter makes (reads of the four
// tables, the writes, Read Device Identification, modbus.raw) to a unit
// that answers with arbitrary bytes, on TCP, RTU or ASCII framing, through
// the link's own client (safeDo, as conn.serve runs it). It asserts that
// nothing panics past safeDo; that an accepted read answer, once doRead
// has checked its length, decodes every point within the read; that an
// accepted PDU answer carries the request's function code and at most a
// PDU's bytes; that an exception is reported with its function code; and
// that a device identification answer gives clean, bounded text.
func FuzzResponse(f *testing.F) {
	for _, s := range responseSeeds(f) {
		f.Add(s.scheme, s.fn, s.addr, s.count, byte(1), s.answer, byte(255))
	}
	f.Fuzz(func(t *testing.T, scheme, fn uint8, addr, count uint16, unit byte, answer []byte, chunk byte) {
		job, r := fuzzJob(int(fn)%nFunctions, addr, count, answer)
		c := answerClient(int(scheme)%nSchemes, unit, answer, int(chunk)+1)
		b, err := safeDo(job, c)
		var mbErr *modbus.ModbusError
		if errors.As(err, &mbErr) {
			if mbErr.FunctionCode&0x80 == 0 {
				t.Fatalf("exception with function code %#x, want the request's | 0x80", mbErr.FunctionCode)
			}
			return
		}
		if err != nil {
			return
		}
		switch int(fn) % nFunctions {
		case fnDeviceID, fnRaw:
			if len(b) < 1 || len(b) > 1+MaxPDUData {
				t.Fatalf("PDU answer of %d bytes, want 1 to %d", len(b), 1+MaxPDUData)
			}
			if int(fn)%nFunctions == fnRaw && b[0] != byte(count%127+1) {
				t.Fatalf("answer of function %d to a request of function %d", b[0], count%127+1)
			}
			if int(fn)%nFunctions == fnDeviceID {
				checkDeviceID(t, b[1:])
			}
		}
		if r.Count > 0 {
			checkDecoded(t, r, b)
		}
	})
}

// checkDeviceID asserts that parseDeviceID gives at most the objects the
// answer declares, each as valid, trimmed text without control characters.
func checkDeviceID(t *testing.T, b []byte) {
	t.Helper()
	a, err := parseDeviceID(b)
	if err != nil {
		return
	}
	if len(a.objects) > int(b[5]) {
		t.Fatalf("parseDeviceID(%x) = %d objects, %d declared", b, len(a.objects), b[5])
	}
	for id, s := range a.objects {
		if !utf8.ValidString(s) || strings.TrimSpace(s) != s || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7F }) {
			t.Fatalf("parseDeviceID object %d = %q, not clean text", id, s)
		}
	}
}

type responseSeed struct {
	scheme, fn  uint8
	addr, count uint16
	answer      []byte
}

// responseSeeds returns well-formed answers, framed for each scheme, to
// each function: what a unit that works answers (and the recorded
// answers of the simulator and pymodbus tests are built alike).
func responseSeeds(tb testing.TB) []responseSeed {
	regs := []byte{0x00, 0xd7, 0x3f, 0xc0, 0x00, 0x00, 'S', 'D', 'M', '6', '3', '0', 0, 0}
	pdus := []struct {
		fn          uint8
		addr, count uint16 // as fuzzJob takes them
		pdu         []byte
	}{
		{fnReadCoils, 0, 9, []byte{0x01, 2, 0xA5, 0x01}},
		{fnReadDiscrete, 16, 7, []byte{0x02, 1, 0x81}},
		{fnReadHolding, 0, 6, append([]byte{0x03, 14}, regs...)},
		{fnReadInput, 30000, 1, []byte{0x04, 4, 0x43, 0x66, 0x80, 0x00}},
		{fnReadHolding, 0, 0, []byte{0x83, 0x02}}, // illegal data address
		{fnWriteCoil, 5, 1, []byte{0x05, 0, 5, 0xFF, 0}},
		{fnWriteRegister, 7, 1234, []byte{0x06, 0, 7, 0x04, 0xD2}},
		{fnWriteRegisters, 100, 1, []byte{0x10, 0, 100, 0, 2}},
		{fnDeviceID, 0, 0, []byte{0x2B, 0x0E, 0x01, 0x01, 0x00, 0x00, 0x03, 0x00, 0x07, 'E', 'a', 's', 't', 'r', 'o', 'n', 0x01, 0x06, 'S', 'D', 'M', '6', '3', '0', 0x02, 0x04, '1', '.', '0', '2'}},
		{fnRaw, 0, 16, []byte{0x11, 4, 1, 2, 0xFF, 0xFF}},
	}
	var out []responseSeed
	for _, p := range pdus {
		for scheme := range nSchemes {
			frame := frameFor(tb, scheme, p.pdu) // TCP: transaction 1, that of the first request
			out = append(out, responseSeed{uint8(scheme), p.fn, p.addr, p.count, frame})
		}
	}
	return out
}

// FuzzRTUFrame checks the RTU framing of serialTransport: an answer PDU,
// framed by goburrow's RTU packager and read in chunks of any size (as a
// serial port hands them), comes back as the same PDU, whether readRTU
// knows the answer's length from the request or must find the frame's end
// by its CRC (decode(encode(x)) == x). The one exception is documented on
// rtuFrameOK: a frame cut where its first bytes end in their own CRC.
func FuzzRTUFrame(f *testing.F) {
	f.Add(byte(0x03), uint16(2), []byte{0x03, 4, 0, 1, 0, 2}, byte(255))
	f.Add(byte(0x01), uint16(9), []byte{0x01, 2, 0xff, 0x01}, byte(1))
	f.Add(byte(0x2B), uint16(0), []byte{0x2B, 0x0E, 1, 1, 0, 0, 1, 0, 1, 'x'}, byte(3))
	f.Add(byte(0x06), uint16(7), []byte{0x86, 0x02}, byte(2))
	f.Fuzz(func(t *testing.T, fc byte, count uint16, pdu []byte, chunk byte) {
		if len(pdu) == 0 || len(pdu) > 1+MaxPDUData {
			return
		}
		fc = fc%127 + 1
		reqData := make([]byte, 4)
		binary.BigEndian.PutUint16(reqData[2:], count)
		if fc == 0x2B {
			reqData = []byte{0x0E, 0x01, 0x00}
		}
		p := modbus.NewRTUClientHandler("fuzz")
		p.SlaveId = 1
		req, err := p.Encode(&modbus.ProtocolDataUnit{FunctionCode: fc, Data: reqData})
		if err != nil {
			t.Fatal(err)
		}
		frame, err := p.Encode(&modbus.ProtocolDataUnit{FunctionCode: pdu[0], Data: pdu[1:]})
		if err != nil {
			t.Fatal(err)
		}
		want := rtuAnswerLen(req)
		if pdu[0] == fc|0x80 {
			want = 5
		}
		if want != 0 && want != len(frame) {
			return // not an answer to req: the transport reads what req announces
		}
		tr := &serialTransport{port: &fakePort{answer: frame, chunk: int(chunk) + 1}}
		got, err := tr.readRTU(req)
		if err != nil {
			t.Fatalf("readRTU(%x in chunks of %d) = %v", frame, int(chunk)+1, err)
		}
		if len(got) > 256 {
			t.Fatalf("readRTU gave %d bytes, more than an RTU frame", len(got))
		}
		if !bytes.Equal(got, frame) {
			if want == 0 && len(got) < len(frame) && bytes.HasPrefix(frame, got) && rtuFrameOK(got) {
				return // the documented one chance in 65536
			}
			t.Fatalf("readRTU(%x in chunks of %d) = %x", frame, int(chunk)+1, got)
		}
		if err := p.Verify(req, got); err != nil {
			t.Fatalf("Verify(%x, %x) = %v", req, got, err)
		}
		back, err := p.Decode(got)
		if err != nil || back.FunctionCode != pdu[0] || !bytes.Equal(back.Data, pdu[1:]) {
			t.Fatalf("Decode(%x) = %v, %v; want %x", got, back, err, pdu)
		}
	})
}

// FuzzParseRawInput checks the input of modbus.raw: accepted data is at
// most a PDU's and is the hex it was given, spaces aside.
func FuzzParseRawInput(f *testing.F) {
	f.Add(int64(3), "00 00 00 0a")
	f.Add(int64(128), "")
	f.Add(int64(16), "zz")
	f.Fuzz(func(t *testing.T, fn int64, data string) {
		fc, b, err := parseRawInput(map[string]any{"function": fn, "data": data})
		if err != nil {
			return
		}
		if fc < 1 || fc > 127 || int64(fc) != fn {
			t.Fatalf("parseRawInput(function %d) = %d", fn, fc)
		}
		if len(b) > MaxPDUData {
			t.Fatalf("parseRawInput gave %d bytes, more than %d", len(b), MaxPDUData)
		}
		if got, want := strings.ToLower(strings.Join(strings.Fields(data), "")), hex.EncodeToString(b); got != want {
			t.Fatalf("parseRawInput(%q) = %s", data, want)
		}
	})
}

// TestResponseSeeds checks that FuzzResponse's seeds are answers the
// client accepts on every scheme (an exception as *modbus.ModbusError), so
// that the fuzzer starts from the paths past the framing checks.
func TestResponseSeeds(t *testing.T) {
	for _, s := range responseSeeds(t) {
		job, _ := fuzzJob(int(s.fn), s.addr, s.count, s.answer)
		for _, chunk := range []int{1, 256} {
			_, err := safeDo(job, answerClient(int(s.scheme), 1, s.answer, chunk))
			var mbErr *modbus.ModbusError
			if err != nil && !errors.As(err, &mbErr) {
				t.Errorf("scheme %d function %d answer %x (chunks of %d): %v", s.scheme, s.fn, s.answer, chunk, err)
			}
		}
	}
}

// TestAnswerOfAnotherFunction is the regression test of what FuzzResponse
// found (testdata/fuzz/FuzzResponse/26488da5a8915fd0): an answer of
// another function than the request's was taken for an exception whose
// code is its first data byte. It is a garbled answer now; a true
// exception stays *modbus.ModbusError.
func TestAnswerOfAnotherFunction(t *testing.T) {
	tests := []struct {
		name          string
		pdu           []byte // answer to Read Holding Registers, 1 register
		wantException bool
	}{
		{name: "stale read coils answer", pdu: []byte{0x01, 0x02, 0xff, 0x01}},
		{name: "exception to another function", pdu: []byte{0x81, 0x02}},
		{name: "exception without its code", pdu: []byte{0x83}},
		{name: "exception with extra bytes", pdu: []byte{0x83, 0x02, 0x00}},
		{name: "exception", pdu: []byte{0x83, 0x02}, wantException: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for scheme := range nSchemes {
				frame := frameFor(t, scheme, tt.pdu)
				_, err := safeDo(readFn(Read{Table: Holding, Count: 1}), answerClient(scheme, 1, frame, 256))
				var mbErr *modbus.ModbusError
				if got := errors.As(err, &mbErr); got != tt.wantException || err == nil {
					t.Errorf("scheme %d: ReadHoldingRegisters answered %x = %v, want an exception %v", scheme, tt.pdu, err, tt.wantException)
				}
			}
		})
	}
}

// frameFor frames pdu as unit 1's answer to the first request on scheme.
func frameFor(t testing.TB, scheme int, pdu []byte) []byte {
	t.Helper()
	var pk modbus.Packager
	switch scheme {
	case schemeTCP:
		h := modbus.NewTCPClientHandler("x")
		h.SlaveId = 1
		pk = h
	case schemeRTU:
		h := modbus.NewRTUClientHandler("x")
		h.SlaveId = 1
		pk = h
	default:
		h := modbus.NewASCIIClientHandler("x")
		h.SlaveId = 1
		pk = h
	}
	frame, err := pk.Encode(&modbus.ProtocolDataUnit{FunctionCode: pdu[0], Data: pdu[1:]})
	if err != nil {
		t.Fatal(err)
	}
	return frame
}

// FuzzCheckProfile runs `osapgw profile check` on arbitrary Modbus
// profiles, from every embedded profile (profiles/data): nothing panics
// in decoding, compiling the points or checking the class, and every
// problem names the profile's file.
func FuzzCheckProfile(f *testing.F) {
	files, err := filepath.Glob("../../profiles/data/*.toml")
	if err != nil || len(files) < 10 {
		f.Fatalf("%d embedded profiles (%v), want at least 10", len(files), err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(strings.TrimSuffix(filepath.Base(file), ".toml"), b)
	}
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		path := filepath.Join("profiles.d", name+".toml")
		hdr, err := profiles.Parse(path, data)
		if err != nil || hdr.Kind != "modbus" {
			return
		}
		err = CheckProfile(hdr)
		if err == nil {
			return
		}
		for _, msg := range strings.Split(err.Error(), "\n") {
			if !strings.HasPrefix(msg, path+":") {
				t.Fatalf("problem %q does not name the file %s", msg, path)
			}
		}
	})
}
