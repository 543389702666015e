package model

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"time"
)

// Quality says how far a value can be trusted.
type Quality string

// The qualities a value can have.
const (
	QualityGood      Quality = "good"
	QualityUncertain Quality = "uncertain"
	QualityBad       Quality = "bad"
)

// Value is one reading of an attribute, with the time it was captured. V
// holds a bool, int64, float64, string, or (for TypeJSON) any JSON value.
// A value of QualityBad holds no reading: V is nil and Err says why the
// point could not be read ("exception 2 (illegal data address)"). How a
// value travels is the binding's (package osap); how it is kept on flash
// is the store's.
type Value struct {
	V       any
	At      time.Time
	Quality Quality
	// Err is the reason a bad value could not be had; empty otherwise.
	Err string
}

// BadValue returns the value of a point that could not be read at at, and
// why.
func BadValue(at time.Time, reason string) Value {
	return Value{At: at, Quality: QualityBad, Err: reason}
}

// EventOccurrence is one event that happened on a resource of a sub-device,
// with the time it was captured.
type EventOccurrence struct {
	Resource string
	Event    string
	// Params are the event's parameters: values of the types of the model
	// (bool, int64, float64, string) or anything encoding/json encodes.
	Params map[string]any
	// At is the capture time.
	At time.Time
	// Picture, when set, asks for a picture of the event (binding 2.7)
	// and takes it. The gateway stores the event first, marked as waiting
	// for its picture, then calls Picture at once on a goroutine of its
	// own, with a context that ends at the picture wait; it reads the
	// image (a JPEG) to its end and closes it. An error, or an image not
	// taken in time, becomes the event's picture_error; the event is sent
	// either way.
	Picture PictureFunc `json:"-"`
}

// PictureFunc takes a picture and returns its bytes to read, or an error
// saying why it could not (the camera is slow, refused, unreachable).
type PictureFunc func(ctx context.Context) (io.ReadCloser, error)

// Coerce converts x, as decoded from JSON or TOML, to the Go type that
// holds a value of type t (bool, int64, float64, string), checking the
// range [min, max] where given. It returns an error that says what was
// wrong; callers add the place.
func Coerce(t Type, x any, min, max *float64) (any, error) {
	var out any
	switch t {
	case TypeBool:
		b, ok := x.(bool)
		if !ok {
			return nil, fmt.Errorf("want a bool, got %T", x)
		}
		return b, nil
	case TypeString:
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("want a string, got %T", x)
		}
		return s, nil
	case TypeJSON:
		return x, nil
	case TypeInt:
		f, err := number(x)
		if err != nil {
			return nil, err
		}
		if f != math.Trunc(f) || math.Abs(f) > 1<<63 {
			return nil, fmt.Errorf("want an integer, got %v", x)
		}
		if i, ok := x.(int64); ok {
			out = i
		} else {
			out = int64(f)
		}
		if err := inRange(f, min, max); err != nil {
			return nil, err
		}
		return out, nil
	case TypeFloat:
		f, err := number(x)
		if err != nil {
			return nil, err
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("want a finite number, got %v", f)
		}
		if err := inRange(f, min, max); err != nil {
			return nil, err
		}
		return f, nil
	}
	return nil, fmt.Errorf("unknown type %q", t)
}

func number(x any) (float64, error) {
	switch n := x.(type) {
	case float64:
		return n, nil
	case float32:
		return float64(n), nil
	case int:
		return float64(n), nil
	case int64:
		return float64(n), nil
	case int32:
		return float64(n), nil
	case uint16:
		return float64(n), nil
	case uint32:
		return float64(n), nil
	case uint64:
		return float64(n), nil
	case json.Number:
		return n.Float64()
	}
	return 0, fmt.Errorf("want a number, got %T", x)
}

func inRange(f float64, min, max *float64) error {
	if min != nil && f < *min {
		return fmt.Errorf("%v is below the minimum %v", f, *min)
	}
	if max != nil && f > *max {
		return fmt.Errorf("%v is above the maximum %v", f, *max)
	}
	return nil
}
