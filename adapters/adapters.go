// Package adapters defines what a southbound adapter provides to the bridge
// and keeps the registry of adapter kinds ("modbus", "onvif", ...).
//
// Each kind lives in its own package under adapters/ and registers itself in
// an init function; the daemon imports the kinds it ships (and may Omit one
// it is built without, to say how to have it). A kind parses its own
// [[device]] section of osapgw.toml (purely: no sockets, no files but the
// ones the section names as secrets) and returns an Adapter, which the
// bridge then runs until its context ends.
package adapters

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/osapgw/osapgw/model"
	"github.com/osapgw/osapgw/profiles"
)

// Adapter is one configured sub-device.
type Adapter interface {
	// Describe returns the sub-device's model. It may contact the device
	// (a camera reports its profiles); it returns an error when the model
	// cannot be had yet, and the bridge retries.
	Describe(ctx context.Context) (model.Device, error)
	// Run polls and subscribes until ctx ends, reporting to sink. It returns
	// nil when ctx ends, and an error only when it cannot go on at all
	// (device errors are reported through sink.Status and retried).
	Run(ctx context.Context, sink Sink) error
	// Set writes values to attributes of a resource. Errors wrap the
	// sentinels of this package where one fits.
	Set(ctx context.Context, resource string, values map[string]model.Value) error
	// Get reads attributes of a resource from the device now; no names means
	// all of them. An attribute the device answered for but that could not
	// be read (an exception response, registers that do not decode) comes
	// back as a bad value (model.BadValue, with the reason) beside the good
	// ones; an error means the device could not be asked or did not answer.
	Get(ctx context.Context, resource string, names []string) (map[string]model.Value, error)
	// Invoke calls an operation of a resource and returns its output
	// parameters.
	Invoke(ctx context.Context, resource, operation string, in map[string]any) (map[string]any, error)
}

// Sink receives what adapters capture. Its methods never block for long:
// the bridge queues or stores what it gets, so a slow upstream never stalls
// a poll loop. Timestamps are the capture times.
type Sink interface {
	// Attributes reports current values of attributes of a resource. The
	// sink keeps the map: the caller must not modify it after the call. A
	// point that cannot be read is reported as a bad value with its reason
	// (model.BadValue) when it goes bad, when its reason changes and as
	// often as its good values would be; its next good value says it
	// recovered.
	Attributes(dev, resource string, values map[string]model.Value)
	// Event reports an event; the bridge stores it durably before it returns.
	Event(dev string, ev model.EventOccurrence)
	// Status reports that the device went online or offline; err says why
	// it is offline (nil when online).
	Status(dev string, online bool, err error)
}

// Readier is implemented by adapters that can say whether they are
// connected to their device.
type Readier interface {
	Ready() bool
}

// Warner is implemented by adapters whose configuration is valid but
// holds something an operator should look at (a Modbus address that looks
// like a Modicon register number, a secret file that does not exist yet).
// The adapter runs regardless; `osapgw check` prints the warnings and the
// daemon logs them at start. Each is a *FieldError where it concerns a key.
type Warner interface {
	Warnings() []error
}

// Decoder decodes a device's section of the configuration into v. It is
// strict: keys that v does not have are reported as errors naming them.
type Decoder interface {
	Decode(v any) error
}

// Env is what the daemon hands every adapter it builds.
type Env struct {
	// Logger is scoped to the device ("device", id; "kind", kind).
	Logger *slog.Logger
	// Profiles are the device profiles a device may name (profile =
	// "NAME"): nil means the embedded ones (profiles.Embedded).
	Profiles *profiles.Catalog
}

// Kind is one kind of adapter.
type Kind struct {
	// Name is the value of `kind` in a [[device]] block.
	Name string
	// Sample is a commented sample [[device]] block for this kind.
	Sample string
	// New parses the section of device id (without opening any
	// connection) and returns the adapter. Its errors are the Decoder's
	// and *FieldError (joined when there are several), naming the key;
	// the caller adds the file and line, and the device where the error
	// does not name it (any other error is placed at the device's block).
	New func(id string, dec Decoder, env Env) (Adapter, error)
}

var (
	mu      sync.RWMutex
	kinds   = map[string]Kind{}
	omitted = map[string]string{} // name → why
)

// Register makes a kind available by name. It panics if the name is empty,
// registered twice or omitted, as all are programming errors.
func Register(k Kind) {
	mu.Lock()
	defer mu.Unlock()
	if k.Name == "" || k.New == nil {
		panic("adapters: Register of a kind with no name or constructor")
	}
	if _, dup := kinds[k.Name]; dup {
		panic(fmt.Sprintf("adapters: kind %q registered twice", k.Name))
	}
	if _, dup := omitted[k.Name]; dup {
		panic(fmt.Sprintf("adapters: kind %q registered and omitted", k.Name))
	}
	kinds[k.Name] = k
}

// Omit records that the kind called name exists but this program is built
// without it, and why (what to build to have it), so that a configuration
// naming it can say so rather than call the kind unknown. An omitted kind
// is not registered: Lookup does not find it and Kinds does not list it.
// Omit panics if the name is empty or already registered or omitted.
func Omit(name, why string) {
	mu.Lock()
	defer mu.Unlock()
	if name == "" {
		panic("adapters: Omit of a kind with no name")
	}
	_, reg := kinds[name]
	_, dup := omitted[name]
	if reg || dup {
		panic(fmt.Sprintf("adapters: kind %q omitted and registered, or omitted twice", name))
	}
	omitted[name] = why
}

// Omitted returns why the kind called name is left out of this program,
// and false when it is not omitted (it is registered, or unknown).
func Omitted(name string) (why string, ok bool) {
	mu.RLock()
	defer mu.RUnlock()
	why, ok = omitted[name]
	return why, ok
}

// Lookup returns the kind called name, and false when there is none.
func Lookup(name string) (Kind, bool) {
	mu.RLock()
	defer mu.RUnlock()
	k, ok := kinds[name]
	return k, ok
}

// Kinds returns the names of the registered kinds, sorted.
func Kinds() []string {
	mu.RLock()
	defer mu.RUnlock()
	names := make([]string, 0, len(kinds))
	for n := range kinds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// EventBatcher is implemented by sinks that store several events with one
// durable write. Adapters that capture events in bursts call EmitEvents
// rather than Sink.Event in a loop, so a burst costs one fsync, not one
// per event.
type EventBatcher interface {
	Events(dev string, evs []model.EventOccurrence)
}

// EmitEvents reports evs to sink in order, in one batch when the sink
// supports it.
func EmitEvents(sink Sink, dev string, evs []model.EventOccurrence) {
	if b, ok := sink.(EventBatcher); ok && len(evs) > 1 {
		b.Events(dev, evs)
		return
	}
	for _, ev := range evs {
		sink.Event(dev, ev)
	}
}

// PictureUploader is implemented by sinks that can upload a picture to
// the platform's picture service (binding 2.7), for operations whose
// output names a picture (a camera's snapshot). UploadPicture reads body
// from its start; size and sum are its length and SHA-256. It returns
// the picture's id, or an error wrapping ErrNoPictureService when the
// platform offers no picture service. Use UploadPicture.
type PictureUploader interface {
	UploadPicture(ctx context.Context, dev string, body io.ReadSeeker, size int64, sum [sha256.Size]byte) (id string, err error)
}

// UploadPicture uploads a picture of dev through sink when it can upload
// pictures, and returns its id; otherwise an error wrapping
// ErrNoPictureService.
func UploadPicture(ctx context.Context, sink Sink, dev string, body io.ReadSeeker, size int64, sum [sha256.Size]byte) (string, error) {
	u, ok := sink.(PictureUploader)
	if !ok || sink == nil {
		return "", ErrNoPictureService
	}
	return u.UploadPicture(ctx, dev, body, size, sum)
}

// PollObserver is implemented by sinks that keep per-device poll metrics.
// Adapters that poll call ObservePoll once per poll cycle.
type PollObserver interface {
	Polled(dev string, took time.Duration, err error)
}

// PointError is an attribute that was bad in a poll cycle, and why.
type PointError struct {
	Resource, Attribute string
	// Reason is the value's Err, e.g. "exception 2 (illegal data address)".
	Reason string
}

// PointErrors is the error of a poll cycle in which the device answered
// but some of the attributes polled were bad: their reads failed, or they
// were left alone after failing. It is never empty.
type PointErrors []PointError

func (e PointErrors) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d bad", len(e))
	for i, p := range e {
		sep := ", "
		if i == 0 {
			sep = ": "
		}
		fmt.Fprintf(&b, "%s%s/%s: %s", sep, p.Resource, p.Attribute, p.Reason)
	}
	return b.String()
}

// ObservePoll reports one poll cycle of dev to sink when it keeps poll
// metrics: how long it took and its error: nil when the device answered
// for every attribute, a PointErrors when it answered but some attributes
// were bad, any other error when it did not answer.
func ObservePoll(sink Sink, dev string, took time.Duration, err error) {
	if o, ok := sink.(PollObserver); ok {
		o.Polled(dev, took, err)
	}
}
