package modbus

import (
	"encoding/hex"
	"testing"
	"time"
)

// echo is a Unit that answers every request with its own PDU.
type echo struct{}

func (echo) Handle(pdu []byte) ([]byte, time.Duration, bool) { return pdu, 0, false }

func TestUnitServerServesOtherUnits(t *testing.T) {
	srv := NewUnitServer(map[byte]Unit{1: NewSensor(time.Hour, 0), 2: echo{}})
	tests := []struct {
		name string
		unit byte
		pdu  string
		want string
	}{
		{name: "sensor", unit: 1, pdu: "0300000001", want: "030200d7"},
		{name: "other unit", unit: 2, pdu: "0300000001", want: "0300000001"},
		{name: "absent unit", unit: 3, pdu: "0300000001", want: "830b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pdu, _ := hex.DecodeString(tt.pdu)
			if got := hex.EncodeToString(srv.answer(t.Context(), tt.unit, pdu, true)); got != tt.want {
				t.Errorf("answer(unit %d, %s) = %s, want %s", tt.unit, tt.pdu, got, tt.want)
			}
		})
	}
}
