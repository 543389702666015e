package store

import "errors"

// Sentinel errors. Test for them with errors.Is; the errors the store
// returns wrap them with the place and the cause.
var (
	// ErrClosed is returned when a method is called on a Store after (or
	// while) Close runs. Nothing of that call was stored.
	ErrClosed = errors.New("store closed")

	// ErrNoSpace is returned when a write could not be made durable because
	// the file system is full (ENOSPC) or the file reached its size limit.
	// Nothing of that write was stored, everything stored before is
	// intact, and later writes succeed once space is back.
	ErrNoSpace = errors.New("no space left for the store")

	// ErrInsecure is returned by Open when the store file or its directory
	// can be read by users other than the owner. The message names the
	// chmod command that fixes it.
	ErrInsecure = errors.New("store readable by others")

	// ErrNewerSchema is returned by Open when the file was written by a
	// newer osapgw whose schema this build does not know. The file is left
	// untouched; run the newer osapgw, or move the file away to start over.
	ErrNewerSchema = errors.New("store written by a newer schema version")

	// ErrNotStore is returned by Open when the file is a valid bbolt file
	// that was not written by osapgw (it has buckets but no schema key).
	// The file is left untouched.
	ErrNotStore = errors.New("file is not an osapgw store")

	// ErrLocked is returned by Open when another process (or another Store
	// in this process) holds the file open.
	ErrLocked = errors.New("store file locked by another process")

	// ErrTooLarge is returned by Append when an event, encoded, exceeds
	// MaxEventBytes or the outbox's MaxBytes. It is not stored.
	ErrTooLarge = errors.New("event too large for the outbox")

	// ErrInvalid is returned when an argument cannot be stored as given: an
	// empty or NUL-containing device, resource, attribute or event name (an
	// event's device may be empty: it is the gateway's own), or a value or
	// event parameters that the store cannot encode.
	ErrInvalid = errors.New("invalid argument")

	// ErrNotPending is returned by AttachPicture, FailPicture and
	// SetPictureID when the event is no longer stored (acknowledged,
	// dropped) or its picture is not in the state the call needs (no
	// longer pending, given up, stored before a restart).
	ErrNotPending = errors.New("no such picture pending")

	// ErrCorrupt is returned when a stored record cannot be decoded. Open
	// never returns it: a damaged file is moved aside and a fresh one
	// started (see the package documentation).
	ErrCorrupt = errors.New("corrupt record")
)
