package modbus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/goburrow/modbus"

	"github.com/osapgw/osapgw/adapters"
)

// Found is a unit that answered a discovery probe.
type Found struct {
	Unit byte
	// Answer says how it answered: "registers" when it returned holding
	// register 0, or the exception it returned (a unit that answers with
	// an exception is there all the same).
	Answer string
}

// Discover probes each unit of units on the link at rawURL (tcp://,
// rtu:// or ascii://, serial settings in the query) by reading holding
// register 0, and returns those that answer, in order. A TCP gateway's
// exceptions 10 and 11 (no path, no answer from the target) mean no unit.
// Each silent unit costs timeout. It fails when the URL is bad or the link
// cannot be opened, and returns what it found so far when ctx ends.
func Discover(ctx context.Context, rawURL string, units []byte, timeout time.Duration) ([]Found, error) {
	l, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	pool := NewPool()
	sl := pool.acquire(l, 0)
	defer pool.release(sl)
	var found []Found
	probe := func(c modbus.Client) ([]byte, error) { return c.ReadHoldingRegisters(0, 1) }
	for _, u := range units {
		_, err := sl.do(ctx, u, timeout, probe)
		var mbErr *modbus.ModbusError
		switch {
		case ctx.Err() != nil:
			return found, ctx.Err()
		case err == nil:
			found = append(found, Found{Unit: u, Answer: "registers"})
		case errors.As(err, &mbErr):
			if mbErr.ExceptionCode == modbus.ExceptionCodeGatewayPathUnavailable || mbErr.ExceptionCode == modbus.ExceptionCodeGatewayTargetDeviceFailedToRespond {
				continue
			}
			found = append(found, Found{Unit: u, Answer: fmt.Sprintf("exception %d", mbErr.ExceptionCode)})
		case errors.Is(err, adapters.ErrTimeout):
			continue
		default:
			// The link itself failed (refused, port missing): the rest
			// would fail alike.
			return found, fmt.Errorf("discover %s: unit %d: %w", rawURL, u, err)
		}
	}
	return found, nil
}

// ParseUnits parses a list of unit ids and ranges such as "1-10,17,20-22"
// (0 to 255).
func ParseUnits(s string) ([]byte, error) {
	var out []byte
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || a < 0 || b > 255 || a > b {
			return nil, fmt.Errorf("units: bad element %q (want N or N-M within 0-255)", part)
		}
		for u := a; u <= b; u++ {
			out = append(out, byte(u))
		}
	}
	return out, nil
}
