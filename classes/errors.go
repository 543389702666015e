package classes

import "errors"

// Sentinel errors. Test for them with errors.Is; Check wraps them with the
// class, the name and what differs.
var (
	// ErrUnknown is returned when a resource names a class this build does
	// not define.
	ErrUnknown = errors.New("unknown class")

	// ErrNotConforming is returned when a resource names a class it does
	// not implement: a required name missing, or a class name with another
	// type or unit.
	ErrNotConforming = errors.New("does not implement its class")
)
