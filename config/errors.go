package config

import "fmt"

// Error is a problem at a place in the configuration file: Parse and
// Check return them (joined), and errors.As finds them. For a device's
// key, Err is (or wraps) the kind's *adapters.FieldError.
type Error struct {
	// File is the file's name as Parse was given it.
	File string
	// Line is the line of the key, or of the nearest enclosing table or
	// array element the text has; 0 when none is known.
	Line int
	// Key is the path of the key in the file, array elements by their
	// 0-based index: "upstream.lbs", "device[2].attribute[0].address".
	Key string
	// Err is the problem, naming the device and the key as the operator
	// wrote them.
	Err error
}

// Error returns "FILE:LINE: " (or "FILE: " when the line is not known)
// followed by Err's text.
func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// Problems returns the problems that err joins (as errors.Join does, at any
// depth), one per element, in order; nil for a nil error.
func Problems(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Problems(e)...)
		}
		return out
	}
	return []error{err}
}
