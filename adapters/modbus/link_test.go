package modbus

import (
	"strings"
	"testing"
	"time"

	"github.com/goburrow/modbus"

	sim "github.com/osapgw/osapgw/sim/modbus"
)

func TestSafeDo(t *testing.T) {
	_, err := safeDo(func(modbus.Client) ([]byte, error) {
		var b []byte
		return b[:1], nil // what a library bug on a short answer looks like
	}, nil)
	if err == nil || !strings.Contains(err.Error(), "malformed answer") {
		t.Fatalf("safeDo(panicking) = %v, want a malformed answer error", err)
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		failures int
		want     time.Duration
	}{
		{1, 200 * time.Millisecond},
		{2, 400 * time.Millisecond},
		{5, 3200 * time.Millisecond},
		{8, 25600 * time.Millisecond},
		{9, 30 * time.Second},
		{100, 30 * time.Second},
	}
	for _, tt := range tests {
		if got := backoff(tt.failures); got != tt.want {
			t.Errorf("backoff(%d) = %v, want %v", tt.failures, got, tt.want)
		}
	}
}

func TestRTUFrameOK(t *testing.T) {
	frame := []byte{0x01, 0x03, 0x02, 0x00, 0xD7}
	frame = append(frame, 0, 0)
	crc := sim.CRC(frame[:5])
	frame[5], frame[6] = byte(crc), byte(crc>>8)
	if !rtuFrameOK(frame) {
		t.Errorf("rtuFrameOK(%x) = false, want true", frame)
	}
	if rtuFrameOK(frame[:6]) {
		t.Errorf("rtuFrameOK(%x) = true, want false", frame[:6])
	}
}

func TestRTUAnswerLen(t *testing.T) {
	tests := []struct {
		req  []byte
		want int
	}{
		{req: []byte{1, 3, 0, 0, 0, 10, 0, 0}, want: 25},
		{req: []byte{1, 1, 0, 0, 0, 9, 0, 0}, want: 7},
		{req: []byte{1, 6, 0, 1, 0, 3, 0, 0}, want: 8},
		{req: []byte{1, 16, 0, 1, 0, 2, 4, 0, 1, 0, 2, 0, 0}, want: 8},
		{req: []byte{1, 43, 14, 1, 0, 0, 0}, want: 0},      // read device identification: by CRC
		{req: []byte{1, 3, 0, 0, 0, 0}, want: 0},           // raw FC 3 of unusual length
		{req: []byte{1, 16, 0, 1, 0, 2, 9, 0, 0}, want: 0}, // byte count disagrees
	}
	for _, tt := range tests {
		if got := rtuAnswerLen(tt.req); got != tt.want {
			t.Errorf("rtuAnswerLen(%x) = %d, want %d", tt.req, got, tt.want)
		}
	}
}
