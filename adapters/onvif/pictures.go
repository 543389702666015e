package onvif

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/model"
)

// snapshotEvents are the events of a camera's model that snapshot_on may
// name.
var snapshotEvents = []string{EventMotion, EventTamper, EventLineCrossing, EventIntrusion, EventVideoLoss, EventDigitalInput, EventGeneric}

// validateSnapshotOn checks that snapshot_on names only events of the
// camera's model, once each.
func (c *Config) validateSnapshotOn(id string) error {
	var errs []error
	for i, name := range c.SnapshotOn {
		switch {
		case !slices.Contains(snapshotEvents, name):
			errs = append(errs, &adapters.FieldError{Device: id, Key: "snapshot_on",
				Err: fmt.Errorf("snapshot_on: %q is not an event of the camera (one of %s)", name, strings.Join(snapshotEvents, ", "))})
		case slices.Contains(c.SnapshotOn[:i], name):
			errs = append(errs, &adapters.FieldError{Device: id, Key: "snapshot_on", Err: fmt.Errorf("snapshot_on: %q named twice", name)})
		}
	}
	return errors.Join(errs...)
}

// pictureFor returns how to take the picture of an event when snapshot_on
// names it, and nil otherwise: for an event with a state, only when it
// becomes true. The picture is the snapshot of the event's video profile,
// or of the first profile with a snapshot address for an event of the
// device.
func (a *Adapter) pictureFor(k *camera, resource, event string, params map[string]any) model.PictureFunc {
	if !slices.Contains(a.cfg.SnapshotOn, event) {
		return nil
	}
	if st, ok := params["state"].(bool); ok && !st {
		return nil
	}
	uri := ""
	if i, ok := resourceIndex(resource, resVideo); ok && i < len(k.profiles) {
		uri = k.profiles[i].SnapshotURI
	}
	for _, p := range k.profiles {
		if uri != "" {
			break
		}
		uri = p.SnapshotURI
	}
	return func(ctx context.Context) (io.ReadCloser, error) {
		if uri == "" {
			return nil, fmt.Errorf("camera %q has no snapshot address", a.id)
		}
		body, err := k.c.Open(ctx, uri, snapshotLimit)
		if err != nil {
			return nil, a.wrap(&callError{Call: "GET snapshot", Err: err})
		}
		return body, nil
	}
}

// snapshotOutput is the output of the snapshot operation: the picture's
// size and SHA-256 and, when the platform offers a picture service, its
// id there ("picture"), or why it could not be uploaded
// ("picture_error").
func (a *Adapter) snapshotOutput(ctx context.Context, data []byte) map[string]any {
	sum := sha256.Sum256(data)
	out := map[string]any{"size": int64(len(data)), "sha256": hex.EncodeToString(sum[:])}
	a.mu.Lock()
	sink := a.sink
	a.mu.Unlock()
	id, err := adapters.UploadPicture(ctx, sink, a.id, bytes.NewReader(data), int64(len(data)), sum)
	switch {
	case err == nil:
		out["picture"] = id
	case errors.Is(err, adapters.ErrNoPictureService):
	default:
		a.log.Info("snapshot not uploaded", "err", err)
		out["picture_error"] = err.Error()
	}
	return out
}
