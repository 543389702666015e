package modbus

import (
	"errors"
	"fmt"
	"time"

	"github.com/goburrow/modbus"

	"github.com/osapgw/osapgw/adapters"
)

// This file holds how a failed read becomes bad points: what a read's
// error says about its spans, and how a merged read that the unit refuses
// is split until the spans at fault are read alone.

// failure is what the error of a read says.
type failure int

const (
	// failException: the unit answered, with an exception or an answer
	// too short; every span of the read is bad, for this poll.
	failException failure = iota
	// failAddress: the unit answered an exception that may be about the
	// addresses read (2 illegal data address, 3 illegal data value, which
	// some units answer for a read they cannot serve, 4 server device
	// failure, which some answer for registers they do not have): a read
	// of several spans is split to find the ones at fault.
	failAddress
	// failNoAnswer: the unit did not answer (a timeout, or a TCP
	// gateway's exception 10 or 11).
	failNoAnswer
	// failLink: the request could not be made (the link is down, the
	// context ended).
	failLink
)

// errShortAnswer is returned by doRead for an answer shorter than the read.
var errShortAnswer = errors.New("short answer")

// exceptionNames are the names of the Modbus exception codes.
var exceptionNames = map[byte]string{
	1: "illegal function", 2: "illegal data address", 3: "illegal data value",
	4: "server device failure", 5: "acknowledge", 6: "server device busy",
	8: "memory parity error", 10: "gateway path unavailable",
	11: "gateway target device failed to respond",
}

// classify returns what err, the error of a read, says, and the reason
// its spans are bad ("exception 2 (illegal data address)").
func classify(err error, timeout time.Duration) (failure, string) {
	var mbErr *modbus.ModbusError
	switch {
	case errors.As(err, &mbErr):
		code := mbErr.ExceptionCode
		name, ok := exceptionNames[code]
		if !ok {
			name = "unknown"
		}
		reason := fmt.Sprintf("exception %d (%s)", code, name)
		switch code {
		case modbus.ExceptionCodeIllegalDataAddress, modbus.ExceptionCodeIllegalDataValue, modbus.ExceptionCodeServerDeviceFailure:
			return failAddress, reason
		case modbus.ExceptionCodeGatewayPathUnavailable, modbus.ExceptionCodeGatewayTargetDeviceFailedToRespond:
			return failNoAnswer, reason
		}
		return failException, reason
	case errors.Is(err, errShortAnswer):
		return failException, "short answer"
	case errors.Is(err, adapters.ErrTimeout):
		return failNoAnswer, "no answer within " + timeout.String()
	}
	return failLink, err.Error()
}

// piece is a read a poll made and what it gave: the answer, or the
// reason its spans are bad.
type piece struct {
	Read
	b      []byte // the answer; nil when the read failed
	reason string // why the spans are bad, when it failed
	// isolated: the read covers one address and the unit refused it
	// (failAddress), so the failure is its spans' own.
	isolated bool
}

// isolate finds the spans at fault in r, a read that failed with err. A
// read that fails with failAddress and covers spans at more than one
// address is split: the shortest failing prefix of its units (spans at
// one address) is found by bisection, and the prefix before it, which
// answered, is kept as one read; the unit that ends it is read alone, and
// while units read alone fail, the next one is tried alone too; what
// remains is read as one read, and split again if it fails. It returns the
// reads it ended with, in address order, each with its answer or its
// failure, and nil; or, when the unit does not answer one of them
// (failNoAnswer, failLink), the pieces done so far and that error. read
// performs one read.
//
// One unit at fault among n costs about log2(n)+4 reads, once: the caller
// keeps the pieces as its plan, so that later polls read the good spans
// in their own reads and the bad ones alone. n units at fault side by side
// cost about n+log2(n).
func isolate(r Read, err error, timeout time.Duration, span func(id int) Span, read func(Read) ([]byte, error)) ([]piece, error) {
	var out []piece
	suspect := false // the first unit of r ended a failing prefix: try it alone first
	for {
		starts := units(r, span)
		// upto is the read of r's units before i, from the read of its
		// units from i on.
		upto := func(i int) Read {
			end := len(r.IDs)
			if i < len(starts) {
				end = starts[i]
			}
			return cover(r.Table, r.IDs[:end], span)
		}
		from := func(i int) Read { return cover(r.Table, r.IDs[starts[i]:], span) }
		if err == nil && suspect && len(starts) > 1 {
			first := upto(1)
			if _, ferr := read(first); ferr != nil {
				kind, reason := classify(ferr, timeout)
				switch kind {
				case failAddress:
					out = append(out, piece{Read: first, reason: reason, isolated: true})
					r = from(1)
					continue
				case failException:
					return append(out, piece{Read: r, reason: reason}), nil
				}
				return out, ferr
			}
			// It answers alone: read it with the rest.
		}
		suspect = false
		if err == nil {
			b, rerr := read(r)
			if rerr == nil {
				return append(out, piece{Read: r, b: b}), nil
			}
			err = rerr
		}
		kind, reason := classify(err, timeout)
		switch {
		case kind == failNoAnswer || kind == failLink:
			return out, err
		case kind == failException:
			return append(out, piece{Read: r, reason: reason}), nil
		case len(starts) == 1:
			return append(out, piece{Read: r, reason: reason, isolated: true}), nil
		}
		err = nil
		// upto(len(starts)), r itself, fails: find the shortest failing
		// prefix, upto(lo). When lo > 1, upto(lo-1) answered: good.
		lo, hi := 1, len(starts)
		var good piece
		for lo < hi {
			mid := (lo + hi) / 2
			pr := upto(mid)
			b, perr := read(pr)
			if perr == nil {
				lo, good = mid+1, piece{Read: pr, b: b}
				continue
			}
			kind, rs := classify(perr, timeout)
			if kind == failAddress {
				hi, reason = mid, rs
				continue
			}
			rest := r
			if lo > 1 {
				out, rest = append(out, good), from(lo-1)
			}
			if kind == failException {
				return append(out, piece{Read: rest, reason: rs}), nil
			}
			return out, perr
		}
		if lo == 1 {
			// upto(1) was read, and failed: the first unit is at fault.
			out = append(out, piece{Read: upto(1), reason: reason, isolated: true})
			r = from(1)
		} else {
			out = append(out, good)
			r = from(lo - 1)
		}
		suspect = true
	}
}
