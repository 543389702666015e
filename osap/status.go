package osap

import (
	"errors"
	"fmt"
	"time"
)

// StatusCode is the status code of an LBS response (binding 2.2).
type StatusCode uint8

// The status codes of the binding.
const (
	StatusOK          StatusCode = 0 // success
	StatusUnsupported StatusCode = 1 // unsupported protocol type, group (suite) or version
	StatusAuthFailed  StatusCode = 2 // bad MAC, or a payload that cannot be decrypted
	StatusUnknown     StatusCode = 3 // serial or DevID not in the registry
	StatusNoMasterKey StatusCode = 4 // master key unknown: run first authentication again
	StatusBusy        StatusCode = 5 // busy: retry after the given delay
	StatusMalformed   StatusCode = 6 // malformed frame, or a required tag missing
	StatusInternal    StatusCode = 7 // internal error of the LBS
)

// String returns a short description of the status ("busy"), or
// "status(N)" for a code the protocol does not define.
func (s StatusCode) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusUnsupported:
		return "unsupported protocol"
	case StatusAuthFailed:
		return "authentication failed"
	case StatusUnknown:
		return "unknown device"
	case StatusNoMasterKey:
		return "master key unknown"
	case StatusBusy:
		return "busy"
	case StatusMalformed:
		return "malformed"
	case StatusInternal:
		return "internal error"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// StatusError is a non-zero status, as received in an LBS response or as
// the LBS decides to answer one. RetryAfter is set with StatusBusy.
type StatusError struct {
	Status     StatusCode
	Message    string
	RetryAfter time.Duration
}

// Error describes the status with its number, its message and its
// retry delay when the LBS gave them.
func (e *StatusError) Error() string {
	s := fmt.Sprintf("LBS status %d (%v)", uint8(e.Status), e.Status)
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(", retry after %v", e.RetryAfter)
	}
	return s
}

// StatusOf maps an error of this package to the status an LBS answers it
// with: a *StatusError gives its own, ErrUnsupported and
// ErrUnsupportedSuite give 1, ErrDecrypt 2, ErrMalformed and
// ErrFrameTooLarge 6, anything else 7. A nil error is StatusOK.
func StatusOf(err error) StatusCode {
	var se *StatusError
	switch {
	case err == nil:
		return StatusOK
	case errors.As(err, &se):
		return se.Status
	case errors.Is(err, ErrUnsupported), errors.Is(err, ErrUnsupportedSuite):
		return StatusUnsupported
	case errors.Is(err, ErrDecrypt):
		return StatusAuthFailed
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrFrameTooLarge):
		return StatusMalformed
	}
	return StatusInternal
}
