package osap

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/osapgw/osapgw/internal/appendjson"
	"github.com/osapgw/osapgw/model"
)

// This file holds the binding's encoding of attribute values and event
// bodies (design 2.4, 2.5). The model says what a value or an event is;
// how it travels is the binding's business, and lives here.

// Values is a set of attribute values keyed by attribute name, as they
// travel in attribute.report and in replies to attribute.get: each value
// is {"v":…,"ts":<unix ms>,"q":"good"}, or {"ts":<unix ms>,"q":"bad",
// "err":"<reason>"} for a point that could not be read (design 2.5), the
// names in the order of their bytes (as encoding/json writes a map).
type Values map[string]model.Value

// MarshalJSON encodes vs as a JSON object of values. It fails only when a
// value does not encode as JSON.
func (vs Values) MarshalJSON() ([]byte, error) {
	if vs == nil {
		return []byte("null"), nil
	}
	return appendValues(nil, vs)
}

// UnmarshalJSON decodes what MarshalJSON writes, each value as
// DecodeValue does. Input that is not a JSON object of such values gives
// the encoding/json error.
func (vs *Values) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if raw == nil {
		*vs = nil
		return nil
	}
	out := make(Values, len(raw))
	for name, r := range raw {
		v, err := DecodeValue(r)
		if err != nil {
			return fmt.Errorf("value %q: %w", name, err)
		}
		out[name] = v
	}
	*vs = out
	return nil
}

// appendValues appends vs as a JSON object, names sorted. On failure dst is
// returned unchanged.
func appendValues(dst []byte, vs Values) ([]byte, error) {
	start := len(dst)
	kp := keyPool.Get().(*[]string)
	keys := (*kp)[:0]
	for k := range vs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	var err error
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendjson.String(dst, k)
		dst = append(dst, ':')
		if dst, err = AppendValue(dst, vs[k]); err != nil {
			err = fmt.Errorf("attribute %q: %w", k, err)
			break
		}
	}
	clear(keys)
	*kp = keys[:0]
	keyPool.Put(kp)
	if err != nil {
		return dst[:start], err
	}
	return append(dst, '}'), nil
}

// wireValue is a value as encoding/json would write it by reflection; it
// gives AppendValue's errors the form encoding/json gives them.
type wireValue struct {
	V  any           `json:"v"`
	TS int64         `json:"ts"`
	Q  model.Quality `json:"q,omitempty"`
}

// wireBad is a bad value as encoding/json would write it by reflection:
// no "v", and the reason.
type wireBad struct {
	TS  int64         `json:"ts"`
	Q   model.Quality `json:"q"`
	Err string        `json:"err"`
}

// AppendValue appends v to dst as {"v":…,"ts":<unix ms>,"q":"good"} (an
// empty quality is written as good), byte for byte as encoding/json writes
// that object, without reflection for V of the types adapters report
// (bool, int64, float64, string). A value of quality bad is written
// {"ts":<unix ms>,"q":"bad","err":"<reason>"}, without V (design 2.5); Err
// is written for bad values only. It fails only when V does not encode as
// JSON, with encoding/json's error; dst is then returned unchanged.
func AppendValue(dst []byte, v model.Value) ([]byte, error) {
	q := v.Quality
	if q == "" {
		q = model.QualityGood
	}
	if q == model.QualityBad {
		dst = append(dst, `{"ts":`...)
		dst = strconv.AppendInt(dst, v.At.UnixMilli(), 10)
		dst = append(dst, `,"q":"bad","err":`...)
		dst = appendjson.String(dst, v.Err)
		return append(dst, '}'), nil
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

// DecodeValue decodes the forms AppendValue writes, the reason of a bad
// value included. Numbers come back as float64 unless they are integral
// and fit an int64, then as int64. Input that is not of that form gives
// the encoding/json error.
func DecodeValue(b []byte) (model.Value, error) {
	var w struct {
		V   json.RawMessage `json:"v"`
		TS  int64           `json:"ts"`
		Q   model.Quality   `json:"q"`
		Err string          `json:"err"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return model.Value{}, err
	}
	var x any
	if len(w.V) > 0 {
		dec := json.NewDecoder(bytes.NewReader(w.V))
		dec.UseNumber()
		if err := dec.Decode(&x); err != nil {
			return model.Value{}, err
		}
	}
	if n, ok := x.(json.Number); ok {
		if i, err := n.Int64(); err == nil {
			x = i
		} else if f, err := n.Float64(); err == nil {
			x = f
		}
	}
	return model.Value{V: x, At: time.UnixMilli(w.TS), Quality: w.Q, Err: w.Err}, nil
}

// EventReport is the body of event.report:
// {"resource":…,"event":…,"params":{…},"ts":<unix ms>}, params left out
// when there are none, then "pictures":["<id>",…] or "picture_error":"…"
// for an event that came with a picture (binding 2.7), each left out when
// empty.
type EventReport struct {
	Resource string `json:"resource"`
	Event    string `json:"event"`
	// Params is the event's parameters as a JSON object (nil for none).
	Params json.RawMessage `json:"params,omitempty"`
	// TS is the capture time in unix milliseconds.
	TS int64 `json:"ts"`
	// Pictures are the ids the picture service (binding 2.7) gave the
	// pictures taken for the event, uploaded before it is sent.
	Pictures []string `json:"pictures,omitempty"`
	// PictureError says why a picture wanted for the event could not be
	// taken or uploaded in time; the event is delivered all the same.
	PictureError string `json:"picture_error,omitempty"`
}

// errBadParams is returned by EventReport's encoders for parameters that
// are not a JSON object.
var errBadParams = errors.New("event params are not a JSON object")

// NewEventReport returns the body of event.report for ev, its parameters
// encoded with encoding/json. It fails when a parameter does not encode as
// JSON.
func NewEventReport(ev model.EventOccurrence) (EventReport, error) {
	r := EventReport{Resource: ev.Resource, Event: ev.Event, TS: ev.At.UnixMilli()}
	if len(ev.Params) > 0 {
		p, err := json.Marshal(ev.Params)
		if err != nil {
			return EventReport{}, fmt.Errorf("event %q: %w", ev.Event, err)
		}
		r.Params = p
	}
	return r, nil
}

// Occurrence returns the event the report describes, its parameters
// decoded as encoding/json decodes into a map[string]any (numbers as
// float64). It fails when Params is not a JSON object.
func (r EventReport) Occurrence() (model.EventOccurrence, error) {
	ev := model.EventOccurrence{Resource: r.Resource, Event: r.Event, At: time.UnixMilli(r.TS)}
	if len(r.Params) > 0 {
		if err := json.Unmarshal(r.Params, &ev.Params); err != nil {
			return model.EventOccurrence{}, fmt.Errorf("event %q params: %w", r.Event, err)
		}
	}
	return ev, nil
}

// AppendJSON appends r to dst byte for byte as json.Marshal(r) writes it,
// without reflection. Params must be compact JSON as encoding/json writes
// it (json.Marshal's output is); anything that is not a valid JSON object
// is refused. On failure dst is returned unchanged.
func (r EventReport) AppendJSON(dst []byte) ([]byte, error) {
	if len(r.Params) > 0 && (r.Params[0] != '{' || !json.Valid(r.Params)) {
		return dst, errBadParams
	}
	dst = append(dst, `{"resource":`...)
	dst = appendjson.String(dst, r.Resource)
	dst = append(dst, `,"event":`...)
	dst = appendjson.String(dst, r.Event)
	if len(r.Params) > 0 {
		dst = append(dst, `,"params":`...)
		dst = append(dst, r.Params...)
	}
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendInt(dst, r.TS, 10)
	if len(r.Pictures) > 0 {
		dst = append(dst, `,"pictures":[`...)
		for i, id := range r.Pictures {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendjson.String(dst, id)
		}
		dst = append(dst, ']')
	}
	if r.PictureError != "" {
		dst = append(dst, `,"picture_error":`...)
		dst = appendjson.String(dst, r.PictureError)
	}
	return append(dst, '}'), nil
}
