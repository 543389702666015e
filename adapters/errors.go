package adapters

import "errors"

// Sentinel errors that adapters wrap so the bridge can answer downlink
// requests with the reply codes of the binding.
var (
	// ErrBadRequest is returned when a request's values or parameters are
	// of the wrong type, out of range or missing (reply code 400).
	ErrBadRequest = errors.New("bad request")
	// ErrNotFound is returned when a resource, attribute or operation does
	// not exist (reply code 404).
	ErrNotFound = errors.New("not found")
	// ErrTimeout is returned when the device did not answer in time
	// (reply code 408).
	ErrTimeout = errors.New("device timeout")
	// ErrNotWritable is returned when an attribute cannot be set (reply
	// code 409).
	ErrNotWritable = errors.New("not writable")
	// ErrOffline is returned when the device is known to be unreachable
	// (reply code 503).
	ErrOffline = errors.New("device offline")
	// ErrUnauthorized is returned when the device refused the gateway's
	// credentials (reply code 401): trying again will not help until the
	// credentials are changed, on the device or in the configuration.
	ErrUnauthorized = errors.New("credentials refused")
	// ErrNoPictureService is returned by a PictureUploader when the
	// platform offers no picture service (binding 2.7): there is nowhere
	// to upload a picture to.
	ErrNoPictureService = errors.New("no picture service")
)
