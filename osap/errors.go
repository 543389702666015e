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
