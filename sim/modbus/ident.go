package modbus

// Identification is what a Sensor answers to Read Device Identification
// (function 43, MEI type 14): the basic objects 0 VendorName, 1
// ProductCode and 2 MajorMinorRevision.
type Identification struct {
	Vendor, Product, Revision string
	// PerAnswer bounds the objects of one answer (0: all of them), to
	// test clients that follow "more follows".
	PerAnswer int
}

// SetIdentification makes the sensor answer Read Device Identification
// with id; a zero id (the default) makes it answer exception 1 (illegal
// function), as most simple devices do.
func (s *Sensor) SetIdentification(id Identification) {
	s.mu.Lock()
	s.ident = id
	s.mu.Unlock()
}

// readDeviceID answers a Read Device Identification request PDU (0x2B,
// 0x0E, read code, object id). Codes 1 to 3 (basic, regular, extended
// stream) return the basic objects from the object id asked (0 when it is
// past them), at most maxObjects per answer with "more follows" set when
// some are left; code 4 returns the one object asked. Caller holds mu.
func (s *Sensor) readDeviceID(pdu []byte) []byte {
	exc := func(code byte) []byte { return []byte{0x2B | 0x80, code} }
	if s.ident.Vendor+s.ident.Product+s.ident.Revision == "" || len(pdu) < 2 || pdu[1] != 0x0E {
		return exc(IllegalFunction)
	}
	if len(pdu) != 4 || pdu[2] < 1 || pdu[2] > 4 {
		return exc(IllegalDataValue)
	}
	objs := []string{s.ident.Vendor, s.ident.Product, s.ident.Revision}
	code, first := pdu[2], int(pdu[3])
	last := len(objs)
	if code == 4 {
		if first >= len(objs) {
			return exc(IllegalDataAddress)
		}
		last = first + 1
	} else if first >= len(objs) {
		first = 0
	}
	more, next := byte(0), byte(0)
	if max := s.ident.PerAnswer; max > 0 && last-first > max {
		last = first + max
		more, next = 0xFF, byte(last)
	}
	out := []byte{0x2B, 0x0E, code, 0x81, more, next, byte(last - first)}
	for i := first; i < last; i++ {
		out = append(out, byte(i), byte(len(objs[i])))
		out = append(out, objs[i]...)
	}
	return out
}
