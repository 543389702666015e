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
		name     string
		link     link
		failures int
		want     time.Duration
	}{
		{name: "tcp first", link: link{Scheme: "tcp"}, failures: 1, want: 200 * time.Millisecond},
		{name: "tcp second", link: link{Scheme: "tcp"}, failures: 2, want: 400 * time.Millisecond},
		{name: "tcp fifth", link: link{Scheme: "tcp"}, failures: 5, want: 3200 * time.Millisecond},
		{name: "tcp eighth", link: link{Scheme: "tcp"}, failures: 8, want: 25600 * time.Millisecond},
		{name: "tcp capped", link: link{Scheme: "tcp"}, failures: 9, want: 30 * time.Second},
		{name: "tcp long outage", link: link{Scheme: "tcp"}, failures: 100, want: 30 * time.Second},
		{name: "rtu first", link: link{Scheme: "rtu"}, failures: 1, want: 200 * time.Millisecond},
		{name: "rtu fourth", link: link{Scheme: "rtu"}, failures: 4, want: 1600 * time.Millisecond},
		{name: "rtu capped", link: link{Scheme: "rtu"}, failures: 5, want: 2 * time.Second},
		{name: "ascii long outage", link: link{Scheme: "ascii"}, failures: 100, want: 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := backoff(tt.failures, tt.link.backoffLimit()); got != tt.want {
				t.Errorf("backoff(%d, %s) = %v, want %v", tt.failures, tt.link.Scheme, got, tt.want)
			}
		})
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
