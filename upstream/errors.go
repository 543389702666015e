package upstream

import (
	"errors"
	"fmt"
)

// Sentinel errors of the upstream session.
var (
	// ErrNotConnected is returned by Publish when no connection to the DAS
	// is up: the session is offline, connecting, switching to a refreshed
	// session key, or stopping. Nothing was sent; the caller keeps the
	// message and tries again after Handler.Connected.
	ErrNotConnected = errors.New("upstream: not connected")
	// ErrConnectionLost is passed to a Publish done callback when the
	// connection ended before the message was acknowledged. The message may
	// or may not have reached the broker; the caller sends it again on the
	// next connection (the platform deduplicates events on their id).
	ErrConnectionLost = errors.New("upstream: connection ended before the publish completed")
	// ErrKeyRefresh is passed to Handler.Disconnected when the session
	// closed the connection itself to reconnect with a refreshed session
	// key.
	ErrKeyRefresh = errors.New("upstream: reconnecting with a refreshed session key")
	// ErrRefused is wrapped by the error of a connection attempt the DAS
	// refused with CONNACK 4 (bad user name or password) or 5 (not
	// authorized); the session re-authenticates with the LBS.
	ErrRefused = errors.New("upstream: DAS refused the credentials")
	// ErrNoPictureService is returned by UploadPicture when the platform
	// announced no picture service (no tag 0x0D in 0xB): nothing can be
	// uploaded, and events go without pictures.
	ErrNoPictureService = errors.New("upstream: the platform offers no picture service")
	// ErrPictureRefused is matched by the error of UploadPicture when the
	// picture service refused the picture for good (400, 401, 413 or any
	// 4xx), or the picture cannot be sent (empty, over
	// osap.PictureMaxSize); trying again cannot help. The error is a
	// *PictureError with the status.
	ErrPictureRefused = errors.New("upstream: picture refused")
)

// refusedError is a CONNACK refusal with its return code.
type refusedError struct{ code byte }

func (e *refusedError) Error() string {
	return fmt.Sprintf("DAS refused the credentials with CONNACK %d", e.code)
}

// Is makes codes 4 and 5 match ErrRefused.
func (e *refusedError) Is(target error) bool {
	return target == ErrRefused && (e.code == 4 || e.code == 5)
}
