package modbus

import "time"

// Unit is one simulated device behind a Server, answering the requests
// for its unit id: a Sensor, a profile's register map
// (sim/modbus/profile), or any other simulated device. Handle answers one
// request PDU (function code and data) with the response PDU; drop is
// true when the unit does not answer, and delay is how late the answer
// must be. Handle is called from several goroutines at once.
type Unit interface {
	Handle(pdu []byte) (resp []byte, delay time.Duration, drop bool)
}

var _ Unit = (*Sensor)(nil)

// NewUnitServer returns a server of the given units, which may be of
// different kinds.
func NewUnitServer(units map[byte]Unit) *Server { return &Server{units: units} }
