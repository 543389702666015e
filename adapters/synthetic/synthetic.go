// Package synthetic is an adapter kind that needs no hardware: a
// sub-device that reports attributes and emits events at a configured
// rate. It exists for load tests of the gateway and of a platform, for
// benchmarks, and to try a platform integration on a bench.
package synthetic

import (
	"context"
	_ "embed"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/model"
)

//go:embed sample.conf
var sampleConf string

func init() {
	adapters.Register(adapters.Kind{Name: "synthetic", Sample: sampleConf, New: New})
}

// Config is the synthetic kind's section of a [[device]] block.
type Config struct {
	Attributes     int      `toml:"attributes"`
	AttributeEvery Duration `toml:"attribute_every"`
	EventRate      float64  `toml:"event_rate"`
}

// Duration is a TOML duration string.
type Duration time.Duration

// UnmarshalText parses a duration such as "1s"; it returns an error
// naming the text when it is not one.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q", b)
	}
	*d = Duration(v)
	return nil
}

// Adapter is one synthetic sub-device.
type Adapter struct {
	id  string
	cfg Config

	mu       sync.Mutex
	setpoint float64
}

var _ adapters.Adapter = (*Adapter)(nil)

// New parses the section; it opens nothing. It returns the decoder's
// error, or an *adapters.FieldError naming the field whose value is out of
// range.
func New(id string, dec adapters.Decoder, _ adapters.Env) (adapters.Adapter, error) {
	cfg := Config{Attributes: 10, AttributeEvery: Duration(time.Second)}
	if err := dec.Decode(&cfg); err != nil {
		return nil, err
	}
	bad := func(key, format string, args ...any) error {
		return &adapters.FieldError{Device: id, Key: key, Err: fmt.Errorf(format, args...)}
	}
	switch {
	case cfg.Attributes < 0 || cfg.Attributes > 10000:
		return nil, bad("attributes", "attributes: %d is not within 0..10000", cfg.Attributes)
	case time.Duration(cfg.AttributeEvery) < 10*time.Millisecond:
		return nil, bad("attribute_every", "attribute_every: %v is under 10ms", time.Duration(cfg.AttributeEvery))
	case cfg.EventRate < 0 || cfg.EventRate > 100000 || math.IsNaN(cfg.EventRate):
		return nil, bad("event_rate", "event_rate: %v is not within 0..100000", cfg.EventRate)
	}
	return &Adapter{id: id, cfg: cfg}, nil
}

// Describe returns the model: resource "main" with value_N attributes, a
// writable setpoint, an echo operation and a tick event. It never fails.
func (a *Adapter) Describe(context.Context) (model.Device, error) {
	attrs := make([]model.Attribute, 0, a.cfg.Attributes+1)
	for i := range a.cfg.Attributes {
		attrs = append(attrs, model.Attribute{Name: "value_" + strconv.Itoa(i), Type: model.TypeFloat})
	}
	lo, hi := -1000.0, 1000.0
	attrs = append(attrs, model.Attribute{Name: "setpoint", Type: model.TypeFloat, Writable: true, Min: &lo, Max: &hi})
	return model.Device{ID: a.id, Kind: "synthetic", Model: "synthetic", Resources: []model.Resource{{
		Name: "main",
		Areas: []model.Area{{
			Name:       "synthetic",
			Attributes: attrs,
			Operations: []model.Operation{{Name: "echo",
				Inputs:  []model.Param{{Name: "text", Type: model.TypeString, Required: true}},
				Outputs: []model.Param{{Name: "text", Type: model.TypeString}}}},
			Events: []model.EventType{{Name: "tick", Params: []model.Param{{Name: "n", Type: model.TypeInt}}}},
		}},
	}}}, nil
}

// Run reports attributes every attribute_every and emits event_rate
// events per second until ctx ends, then returns nil.
func (a *Adapter) Run(ctx context.Context, sink adapters.Sink) error {
	sink.Status(a.id, true, nil)
	attrTick := time.NewTicker(time.Duration(a.cfg.AttributeEvery))
	defer attrTick.Stop()
	var evTick <-chan time.Time
	if a.cfg.EventRate > 0 {
		// Tick at most every 5 ms; each tick emits, in one batch, the
		// events due since the start, so the rate holds even when the
		// sink is slow (a batch then carries more events).
		interval := max(time.Duration(float64(time.Second)/a.cfg.EventRate), 5*time.Millisecond)
		t := time.NewTicker(interval)
		defer t.Stop()
		evTick = t.C
	}
	var n int64
	start := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-attrTick.C:
			if a.cfg.Attributes > 0 {
				sink.Attributes(a.id, "main", a.values(now, start))
			}
		case now := <-evTick:
			due := int64(now.Sub(start).Seconds()*a.cfg.EventRate) - n
			if due <= 0 {
				continue
			}
			evs := make([]model.EventOccurrence, min(due, 10000))
			for i := range evs {
				n++
				evs[i] = model.EventOccurrence{Resource: "main", Event: "tick", Params: map[string]any{"n": n}, At: now}
			}
			adapters.EmitEvents(sink, a.id, evs)
		}
	}
}

func (a *Adapter) values(now, start time.Time) map[string]model.Value {
	t := now.Sub(start).Seconds()
	vals := make(map[string]model.Value, a.cfg.Attributes)
	for i := range a.cfg.Attributes {
		vals["value_"+strconv.Itoa(i)] = model.Value{V: math.Round(100*(20+5*math.Sin(t/60+float64(i)))) / 100, At: now, Quality: model.QualityGood}
	}
	return vals
}

// Set accepts the setpoint. Another resource gives an error wrapping
// adapters.ErrNotFound; another attribute, adapters.ErrNotWritable; a
// setpoint that is not a float, adapters.ErrBadRequest.
func (a *Adapter) Set(_ context.Context, resource string, values map[string]model.Value) error {
	if resource != "main" {
		return fmt.Errorf("%w: resource %q", adapters.ErrNotFound, resource)
	}
	for name, v := range values {
		if name != "setpoint" {
			return fmt.Errorf("%w: attribute %q", adapters.ErrNotWritable, name)
		}
		f, ok := v.V.(float64)
		if !ok {
			return fmt.Errorf("%w: setpoint: want a float, got %T", adapters.ErrBadRequest, v.V)
		}
		a.mu.Lock()
		a.setpoint = f
		a.mu.Unlock()
	}
	return nil
}

// Get returns the setpoint and the current values. An unknown resource or
// attribute gives an error wrapping adapters.ErrNotFound.
func (a *Adapter) Get(_ context.Context, resource string, names []string) (map[string]model.Value, error) {
	if resource != "main" {
		return nil, fmt.Errorf("%w: resource %q", adapters.ErrNotFound, resource)
	}
	now := time.Now()
	all := a.values(now, now)
	a.mu.Lock()
	all["setpoint"] = model.Value{V: a.setpoint, At: now, Quality: model.QualityGood}
	a.mu.Unlock()
	if len(names) == 0 {
		return all, nil
	}
	out := make(map[string]model.Value, len(names))
	for _, n := range names {
		v, ok := all[n]
		if !ok {
			return nil, fmt.Errorf("%w: attribute %q", adapters.ErrNotFound, n)
		}
		out[n] = v
	}
	return out, nil
}

// Invoke runs echo. Any other operation or resource gives an error
// wrapping adapters.ErrNotFound.
func (a *Adapter) Invoke(_ context.Context, resource, op string, in map[string]any) (map[string]any, error) {
	if resource != "main" || op != "echo" {
		return nil, fmt.Errorf("%w: operation %q of resource %q", adapters.ErrNotFound, op, resource)
	}
	return map[string]any{"text": in["text"]}, nil
}
