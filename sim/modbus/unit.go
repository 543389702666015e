package modbus

import "time"

// Unit is what a Server serves at one unit id: a Sensor, a SunSpec device,
// or anything else that answers request PDUs. Handle answers one request
// PDU (function code and data) with the response PDU; drop is true when
// the unit does not answer, and delay is how late the answer must be. A
// Server may call Handle from several goroutines at once.
type Unit interface {
	Handle(pdu []byte) (resp []byte, delay time.Duration, drop bool)
}

var (
	_ Unit = (*Sensor)(nil)
	_ Unit = (*SunSpec)(nil)
)

// NewServerOf returns a server of units of any kind by unit id.
func NewServerOf(units map[byte]Unit) *Server { return &Server{units: units} }
