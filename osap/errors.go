package osap

import "errors"

// Sentinel errors of the protocol package.
var (
	// ErrDecrypt is returned when a sealed payload cannot be opened: it is
	// too short, its tag or MAC does not verify, or its padding is wrong.
	ErrDecrypt = errors.New("cannot open sealed payload")
	// ErrUnsupportedSuite is returned when a suite is not one of the
	// binding's, or not among those allowed.
	ErrUnsupportedSuite = errors.New("unsupported cipher suite")
)

// ErrMalformed is returned when bytes off the wire do not parse: a
// truncated frame, a bad TLV, a business message that is not JSON.
var ErrMalformed = errors.New("malformed")

// ErrUnsupported is returned when an LBS frame is well formed but not of
// this binding: the ECDH control flag is clear, the FORM_VERSION is not 1,
// or the protocol type is not 1. The LBS answers it with status 1.
var ErrUnsupported = errors.New("unsupported protocol")

// ErrFrameTooLarge is returned when an LBS frame announces more than
// MaxFrameSize bytes; nothing of its body is read or allocated.
var ErrFrameTooLarge = errors.New("LBS frame over 64 KiB")
