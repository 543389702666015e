// Package onvif is the adapter of kind "onvif": an ONVIF IP camera as a
// sub-device. Its profiles become resources "video/1"...(stream and
// snapshot URIs, encoder settings), its PTZ heads "ptz/1"... (position,
// presets, moves), the device itself "device" (information, reboot,
// clock); its motion, tamper, line crossing, intrusion, input and video
// loss alarms, taken from a PullPoint subscription, become events.
//
// The request types are those of github.com/use-go/onvif where they
// marshal correctly; the transport (package soap), the response types that
// real cameras' answers need, the events and discovery are this package's.
package onvif

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/adapters/onvif/soap"
	"github.com/osapgw/osapgw/internal/backoff"
	"github.com/osapgw/osapgw/model"
)

//go:embed sample.conf
var sampleConf string

// Kind is the name of this adapter kind.
const Kind = "onvif"

func init() {
	adapters.Register(adapters.Kind{Name: Kind, Sample: sampleConf, New: func(id string, dec adapters.Decoder, env adapters.Env) (adapters.Adapter, error) {
		return New(id, dec, env)
	}})
}

var _ adapters.Adapter = (*Adapter)(nil)
var _ adapters.Readier = (*Adapter)(nil)
var _ adapters.Warner = (*Adapter)(nil)

// Adapter is one camera.
type Adapter struct {
	id       string
	cfg      Config
	password string // read by New, or by camera while the file was missing
	log      *slog.Logger
	warnings []error

	topics *eventMap     // the camera's topics → events
	seen   *dedup        // last states of the camera's properties
	sink   adapters.Sink // Run's, for uploading snapshots; nil before Run (guarded by mu)
	dialMu sync.Mutex    // one dial at a time
	mu     sync.Mutex
	cam    *camera
}

// New parses a camera's [[device]] section. It reads the password file and
// nothing else; errors are the decoder's, or *adapters.FieldError naming
// the key. A password file that does not exist yet is a warning
// (Warnings), not an error: the adapter reads it when it dials, and
// reports the camera offline with that error until the file is there.
func New(id string, dec adapters.Decoder, env adapters.Env) (*Adapter, error) {
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		return nil, err
	}
	if err := cfg.validate(id); err != nil {
		return nil, err
	}
	a := &Adapter{id: id, cfg: cfg, log: env.Logger, topics: newEventMap(cfg.EventMap), seen: newDedup()}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if cfg.PasswordFile != "" {
		p, err := readSecret(cfg.PasswordFile)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			a.warnings = append(a.warnings, &adapters.FieldError{Device: id, Key: "password_file",
				Err: fmt.Errorf("password_file: %s does not exist yet: the camera stays offline with this error until it does (write the password there, mode 0600)", cfg.PasswordFile)})
		case err != nil:
			return nil, &adapters.FieldError{Device: id, Key: "password_file", Err: err}
		}
		a.password = p
	}
	return a, nil
}

// Warnings returns what New found valid but worth a look: a password file
// that does not exist yet. Each is an *adapters.FieldError.
func (a *Adapter) Warnings() []error { return a.warnings }

// Ready reports whether the adapter is connected to its camera.
func (a *Adapter) Ready() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cam != nil
}

// camera returns the connection, dialling one when there is none.
func (a *Adapter) camera(ctx context.Context) (*camera, error) {
	a.dialMu.Lock()
	defer a.dialMu.Unlock()
	a.mu.Lock()
	k := a.cam
	a.mu.Unlock()
	if k != nil {
		return k, nil
	}
	if a.password == "" && a.cfg.PasswordFile != "" {
		p, err := readSecret(a.cfg.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("camera %q: %w", a.id, err)
		}
		a.password = p
	}
	k, err := dial(ctx, &a.cfg, a.password)
	if err != nil {
		return nil, a.wrap(err)
	}
	a.mu.Lock()
	a.cam = k
	a.mu.Unlock()
	return k, nil
}

// drop forgets and closes k if it is the current connection.
func (a *Adapter) drop(k *camera) {
	a.mu.Lock()
	if a.cam == k {
		a.cam = nil
	}
	a.mu.Unlock()
	k.close()
}

// wrap names the camera and adds the sentinel of adapters that fits.
func (a *Adapter) wrap(err error) error {
	if err == nil {
		return nil
	}
	var sentinel error
	var fault *soap.Fault
	var ne net.Error
	switch {
	case errors.Is(err, soap.ErrUnauthorized):
		sentinel = adapters.ErrUnauthorized
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		sentinel = adapters.ErrTimeout
	case errors.As(err, &fault):
		if strings.Contains(fault.Subcode, "InvalidArgVal") || strings.Contains(fault.Subcode, "NoProfile") || strings.Contains(fault.Subcode, "NoToken") {
			sentinel = adapters.ErrBadRequest
		}
	case errors.Is(err, context.Canceled), errors.Is(err, soap.ErrMalformed):
	default:
		var se *soap.StatusError
		if !errors.As(err, &se) {
			sentinel = adapters.ErrOffline
		}
	}
	if sentinel != nil && !errors.Is(err, sentinel) {
		return fmt.Errorf("camera %q (%s): %w: %w", a.id, a.cfg.URL, sentinel, err)
	}
	return fmt.Errorf("camera %q (%s): %w", a.id, a.cfg.URL, err)
}

// Describe connects when needed and returns the camera's model. A camera
// that cannot be reached gives an error wrapping adapters.ErrOffline (or
// adapters.ErrTimeout when it does not answer in time).
func (a *Adapter) Describe(ctx context.Context) (model.Device, error) {
	k, err := a.camera(ctx)
	if err != nil {
		return model.Device{}, err
	}
	return describe(a.id, k), nil
}

// Run keeps a connection to the camera, reports its attributes every poll
// period and its events as they come, until ctx ends. A camera that fails
// is reported offline and retried with backoff.
func (a *Adapter) Run(ctx context.Context, sink adapters.Sink) error {
	// Delays within [0.5 s, 1 s], then [1 s, 2 s], … up to a minute.
	bo := backoff.Backoff{Min: 500 * time.Millisecond, Max: time.Minute, Jitter: true}
	a.mu.Lock()
	a.sink = sink
	a.mu.Unlock()
	online, reported := false, false // reported: any status sent yet
	for {
		k, err := a.camera(ctx)
		if err == nil {
			sink.Status(a.id, true, nil)
			online, reported = true, true
			err = a.serve(ctx, k, sink, &bo)
			a.drop(k)
			err = a.wrap(err)
		}
		if ctx.Err() != nil {
			return nil
		}
		if online || !reported {
			sink.Status(a.id, false, err)
			a.log.Warn("camera offline", "err", err)
			online, reported = false, true
		} else {
			a.log.Debug("camera still offline", "err", err)
		}
		if !backoff.Sleep(ctx, bo.Next()) {
			return nil
		}
	}
}

// serve reports attributes and events over one connection until it fails
// or ctx ends.
func (a *Adapter) serve(ctx context.Context, k *camera, sink adapters.Sink, bo *backoff.Backoff) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		t := time.NewTicker(a.cfg.Poll)
		defer t.Stop()
		for {
			started := time.Now()
			if err := a.poll(ctx, k, sink); err != nil {
				adapters.ObservePoll(sink, a.id, time.Since(started), err)
				return err
			}
			adapters.ObservePoll(sink, a.id, time.Since(started), nil)
			bo.Reset()
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	})
	if a.cfg.events() && k.svc.Events != "" {
		g.Go(func() error { return a.events(ctx, k, sink) })
	}
	err := g.Wait()
	if err == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// poll reads the encoder settings and every resource's attributes once and
// reports them.
func (a *Adapter) poll(ctx context.Context, k *camera, sink adapters.Sink) error {
	if err := k.readEncoders(ctx); err != nil {
		return err
	}
	for _, r := range resourcesOf(k) {
		vals, err := a.read(ctx, k, r, nil, true)
		if err != nil {
			return err
		}
		sink.Attributes(a.id, r, vals)
	}
	return nil
}

// Get reads attributes of a resource from the camera now. Its errors wrap
// the adapters sentinels: ErrNotFound for an unknown resource or
// attribute, ErrOffline or ErrTimeout when the camera does not answer.
func (a *Adapter) Get(ctx context.Context, resource string, names []string) (map[string]model.Value, error) {
	k, err := a.camera(ctx)
	if err != nil {
		return nil, err
	}
	vals, err := a.read(ctx, k, resource, names, false)
	if err != nil {
		return nil, a.wrap(err)
	}
	return vals, nil
}

// Set writes a video profile's frame_rate and bitrate. Its errors wrap the
// adapters sentinels: ErrNotFound, ErrNotWritable and ErrBadRequest for
// what the model refuses, ErrOffline or ErrTimeout when the camera does
// not answer.
func (a *Adapter) Set(ctx context.Context, resource string, values map[string]model.Value) error {
	k, err := a.camera(ctx)
	if err != nil {
		return err
	}
	dev := describe(a.id, k)
	r, ok := dev.Resource(resource)
	if !ok {
		return fmt.Errorf("camera %q: resource %q: %w", a.id, resource, adapters.ErrNotFound)
	}
	coerced := map[string]int{}
	for name, v := range values {
		at, ok := r.Attribute(name)
		if !ok {
			return fmt.Errorf("camera %q: %s: attribute %q: %w", a.id, resource, name, adapters.ErrNotFound)
		}
		if !at.Writable {
			return fmt.Errorf("camera %q: %s: attribute %q: %w", a.id, resource, name, adapters.ErrNotWritable)
		}
		x, err := model.Coerce(at.Type, v.V, at.Min, at.Max)
		if err != nil {
			return fmt.Errorf("camera %q: %s: attribute %q: %w: %w", a.id, resource, name, adapters.ErrBadRequest, err)
		}
		coerced[name] = int(x.(int64))
	}
	i, _ := resourceIndex(resource, "video/")
	p := k.profiles[i]
	p.Enc = k.encoder(p.Token)
	frame, bitrate := p.Enc.FrameRate, p.Enc.Bitrate
	if v, ok := coerced["frame_rate"]; ok {
		frame = v
	}
	if v, ok := coerced["bitrate"]; ok {
		bitrate = v
	}
	req := setVideoEncoder{Force: true, Configuration: rawConfig{Token: p.Enc.Token, Inner: p.Enc.withRates(frame, bitrate)}}
	if pref := p.Enc.schemaPref; pref != "" && pref != "tt" && pref != "onvif" {
		req.Configuration.Attrs = append(req.Configuration.Attrs, xmlnsAttr(pref, soap.Namespaces["tt"]))
	}
	if k.svc.Media2 != "" {
		err = k.setEncoder2(ctx, p.Enc, frame, bitrate)
	} else {
		err = k.call(ctx, "SetVideoEncoderConfiguration", k.svc.Media, req, nil)
	}
	if err != nil {
		return a.wrap(err)
	}
	// Read back what the camera now holds.
	if err := k.readEncoders(ctx); err != nil {
		a.log.Debug("reading encoders after set", "err", err)
	}
	return nil
}

// resourceIndex parses "video/3" as index 2.
func resourceIndex(resource, prefix string) (int, bool) {
	s, ok := strings.CutPrefix(resource, prefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || strconv.Itoa(n) != s {
		return 0, false
	}
	return n - 1, true
}
