package modbus

import (
	"strings"
	"testing"
	"time"

	"github.com/goburrow/modbus"
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

func TestRTUAnswerLen(t *testing.T) {
	tests := []struct {
		req  []byte
		want int
	}{
		{req: []byte{1, 3, 0, 0, 0, 10, 0, 0}, want: 25},
		{req: []byte{1, 1, 0, 0, 0, 9, 0, 0}, want: 7},
		{req: []byte{1, 6, 0, 1, 0, 3, 0, 0}, want: 8},
		{req: []byte{1, 16, 0, 1, 0, 2, 4, 0, 1, 0, 2, 0, 0}, want: 8},
	}
	for _, tt := range tests {
		if got := rtuAnswerLen(tt.req); got != tt.want {
			t.Errorf("rtuAnswerLen(%x) = %d, want %d", tt.req, got, tt.want)
		}
	}
}
