package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/osapgw/osapgw/internal/appendjson"
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
type Value struct {
	V       any
	At      time.Time
	Quality Quality
}

type wireValue struct {
	V  any     `json:"v"`
	TS int64   `json:"ts"`
	Q  Quality `json:"q,omitempty"`
}

// MarshalJSON encodes v as {"v":…,"ts":<unix ms>,"q":"good"}. It fails
// only when V does not encode as JSON.
func (v Value) MarshalJSON() ([]byte, error) { return v.AppendJSON(nil) }

// AppendJSON appends to dst what MarshalJSON returns, byte for byte, without
// reflection for V of the types adapters report (bool, int64, float64,
// string). It fails only when V does not encode as JSON, with
// encoding/json's error; dst is then returned unchanged.
func (v Value) AppendJSON(dst []byte) ([]byte, error) {
	q := v.Quality
	if q == "" {
		q = QualityGood
	}
	start := len(dst)
	dst = append(dst, `{"v":`...)
	dst, err := appendjson.Any(dst, v.V)
	if err != nil {
		// encoding/json's error, as it reports it for the whole value.
		_, err = json.Marshal(wireValue{V: v.V, TS: v.At.UnixMilli(), Q: q})
		return dst[:start], err
	}
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendInt(dst, v.At.UnixMilli(), 10)
	dst = append(dst, `,"q":`...)
	dst = appendjson.String(dst, string(q))
	return append(dst, '}'), nil
}

// UnmarshalJSON decodes the form MarshalJSON writes. Numbers come back as
// float64 unless they are integral and fit an int64, then as int64. Input
// that is not of that form gives the encoding/json error.
func (v *Value) UnmarshalJSON(b []byte) error {
	var w struct {
		V  json.RawMessage `json:"v"`
		TS int64           `json:"ts"`
		Q  Quality         `json:"q"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	var x any
	if len(w.V) > 0 {
		dec := json.NewDecoder(bytes.NewReader(w.V))
		dec.UseNumber()
		if err := dec.Decode(&x); err != nil {
			return err
		}
	}
	if n, ok := x.(json.Number); ok {
		if i, err := n.Int64(); err == nil {
			x = i
		} else if f, err := n.Float64(); err == nil {
			x = f
		}
	}
	*v = Value{V: x, At: time.UnixMilli(w.TS), Quality: w.Q}
	return nil
}

// EventOccurrence is one event that happened on a resource of a sub-device,
// with the time it was captured.
type EventOccurrence struct {
	Resource string         `json:"resource"`
	Event    string         `json:"event"`
	Params   map[string]any `json:"params,omitempty"`
	At       time.Time      `json:"-"`
}

// MarshalJSON encodes e as the body of event.report, the capture time as
// "ts" in unix milliseconds. It fails only when a parameter does not
// encode as JSON.
func (e EventOccurrence) MarshalJSON() ([]byte, error) {
	type plain EventOccurrence
	return json.Marshal(struct {
		plain
		TS int64 `json:"ts"`
	}{plain(e), e.At.UnixMilli()})
}

// UnmarshalJSON decodes the form MarshalJSON writes. Input that is not of
// that form gives the encoding/json error.
func (e *EventOccurrence) UnmarshalJSON(b []byte) error {
	type plain EventOccurrence
	var w struct {
		plain
		TS int64 `json:"ts"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*e = EventOccurrence(w.plain)
	e.At = time.UnixMilli(w.TS)
	return nil
}

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
