package modbus

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// Server serves Units by unit id. Over TCP a request for a unit it does
// not have is answered with exception 0x0B (gateway target failed to
// respond), as a TCP gateway does; on a serial line it is not answered.
type Server struct {
	units map[byte]Unit

	mu       sync.Mutex
	accepted int
}

// NewServer returns a server of the given sensors (NewUnitServer serves
// other units).
func NewServer(sensors map[byte]*Sensor) *Server {
	units := make(map[byte]Unit, len(sensors))
	for id, s := range sensors {
		units[id] = s
	}
	return NewUnitServer(units)
}

// Accepted returns the number of TCP connections accepted so far.
func (s *Server) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// answer returns the response PDU for unit, or nil for no answer, after the
// sensor's delay (cut short when ctx ends).
func (s *Server) answer(ctx context.Context, unit byte, pdu []byte, gateway bool) []byte {
	sn, ok := s.units[unit]
	if !ok {
		if gateway && len(pdu) > 0 {
			return []byte{pdu[0] | 0x80, GatewayNoResponse}
		}
		return nil
	}
	resp, delay, drop := sn.Handle(pdu)
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
	if drop {
		return nil
	}
	return resp
}

// ServeTCP accepts Modbus TCP connections on ln and serves them until ctx
// ends; it then closes ln and every connection and waits for their
// goroutines. It returns nil when ctx ends.
func (s *Server) ServeTCP(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	conns := map[net.Conn]bool{}
	var mu sync.Mutex
	closeAll := func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	}
	stop := context.AfterFunc(ctx, closeAll)
	defer stop()
	defer wg.Wait()
	defer closeAll()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("sim modbus: accept: %w", err)
		}
		mu.Lock()
		if ctx.Err() != nil {
			mu.Unlock()
			c.Close()
			return nil
		}
		conns[c] = true
		mu.Unlock()
		s.mu.Lock()
		s.accepted++
		s.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				c.Close()
			}()
			s.serveConn(ctx, c)
		}()
	}
}

// serveConn serves one TCP connection, one request at a time, until it
// fails or closes.
func (s *Server) serveConn(ctx context.Context, c net.Conn) {
	r := bufio.NewReader(c)
	var hdr [7]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(hdr[4:]))
		if binary.BigEndian.Uint16(hdr[2:]) != 0 || n < 2 || n > 254 {
			return // not Modbus: drop the connection
		}
		pdu := make([]byte, n-1)
		if _, err := io.ReadFull(r, pdu); err != nil {
			return
		}
		resp := s.answer(ctx, hdr[6], pdu, true)
		if resp == nil {
			continue
		}
		out := make([]byte, 7+len(resp))
		copy(out, hdr[:4])
		binary.BigEndian.PutUint16(out[4:], uint16(len(resp)+1))
		out[6] = hdr[6]
		copy(out[7:], resp)
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// CRC returns the Modbus RTU CRC-16 of b (sent low byte first).
func CRC(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, x := range b {
		crc ^= uint16(x)
		for i := 0; i < 8; i++ {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// rtuRequestLen returns the length of the RTU request frame starting with
// b (which holds at least 7 bytes), or 0 when the function is unknown.
func rtuRequestLen(b []byte) int {
	switch b[1] {
	case 1, 2, 3, 4, 5, 6:
		return 8
	case 15, 16:
		return 9 + int(b[6])
	}
	return 0
}

// ServeRTU serves Modbus RTU requests read from port until ctx ends or the
// port fails; it closes port when ctx ends (to stop a blocked read). Frames
// are found by their length and CRC; garbage is skipped a byte at a time.
func (s *Server) ServeRTU(ctx context.Context, port io.ReadWriteCloser) error {
	stop := context.AfterFunc(ctx, func() { port.Close() })
	defer stop()
	var buf []byte
	chunk := make([]byte, 512)
	for {
		// Parse every complete frame in buf.
		for len(buf) >= 7 {
			n := rtuRequestLen(buf)
			if n == 0 {
				buf = buf[1:]
				continue
			}
			if len(buf) < n {
				break
			}
			frame := buf[:n]
			if CRC(frame[:n-2]) != binary.LittleEndian.Uint16(frame[n-2:]) {
				buf = buf[1:]
				continue
			}
			buf = buf[n:]
			resp := s.answer(ctx, frame[0], frame[1:n-2], false)
			if resp == nil {
				continue
			}
			out := append([]byte{frame[0]}, resp...)
			out = binary.LittleEndian.AppendUint16(out, CRC(out))
			if _, err := port.Write(out); err != nil {
				return s.portErr(ctx, err)
			}
		}
		n, err := port.Read(chunk)
		if err != nil {
			return s.portErr(ctx, err)
		}
		buf = append(buf, chunk[:n]...)
	}
}

func (s *Server) portErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("sim modbus: serial: %w", err)
}

// LRC returns the Modbus ASCII longitudinal redundancy check of b.
func LRC(b []byte) byte {
	var sum byte
	for _, x := range b {
		sum += x
	}
	return -sum
}

// ServeASCII serves Modbus ASCII requests (":" hex LRC CR LF) read from
// port until ctx ends or the port fails; it closes port when ctx ends.
func (s *Server) ServeASCII(ctx context.Context, port io.ReadWriteCloser) error {
	stop := context.AfterFunc(ctx, func() { port.Close() })
	defer stop()
	r := bufio.NewReader(port)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return s.portErr(ctx, err)
		}
		i := strings.IndexByte(line, ':')
		if i < 0 {
			continue
		}
		raw, err := hex.DecodeString(strings.TrimRight(line[i+1:], "\r\n"))
		if err != nil || len(raw) < 3 || LRC(raw[:len(raw)-1]) != raw[len(raw)-1] {
			continue
		}
		resp := s.answer(ctx, raw[0], raw[1:len(raw)-1], false)
		if resp == nil {
			continue
		}
		out := append([]byte{raw[0]}, resp...)
		out = append(out, LRC(out))
		if _, err := fmt.Fprintf(port, ":%s\r\n", strings.ToUpper(hex.EncodeToString(out))); err != nil {
			return s.portErr(ctx, err)
		}
	}
}
