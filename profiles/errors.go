package profiles

import "errors"

// Sentinel errors. Test for them with errors.Is; the errors of this
// package wrap them with the name or file at fault.
var (
	// ErrUnknown is returned by Catalog.Lookup when no profile has the
	// name; the message lists the closest names.
	ErrUnknown = errors.New("unknown profile")

	// ErrInvalid is returned by Load and Parse for a profile file whose
	// header is wrong (a name that is not the file's, no source, an
	// unknown class) or that is not TOML.
	ErrInvalid = errors.New("invalid profile")
)
