package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/osapgw/osapgw/model"
)

// Record encodings. Every stored value starts with a format byte so that a
// later schema can change one kind of record without a full migration.
const (
	// outboxFormat1 held the protocol body of event.report. It is read,
	// never written: files from before format 2 keep such records until
	// they are acknowledged.
	outboxFormat1 = 1
	outboxFormat2 = 2
	// outboxFormat3 is format 2 with the event's picture state between
	// the name and the parameters. It is written only for events that
	// asked for a picture, so a store without them holds format 2 only.
	outboxFormat3 = 3
	valueFormat1  = 1
	// valueFormat2 adds the reason of a bad value. It is written only for
	// a value with a reason, so a store without bad values stays in
	// format 1, which older builds read.
	valueFormat2 = 2
)

// leafOverhead is what bbolt spends per key/value pair on a leaf page, on
// top of the key and value bytes. It makes Bytes track the file footprint.
const leafOverhead = 16

func idKey(id uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], id)
	return k[:]
}

func keyID(k []byte) (uint64, bool) {
	if len(k) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(k), true
}

// checkEventNames returns an error wrapping ErrInvalid for names the
// outbox does not keep: an empty resource or event name, or a device,
// resource or event name containing NUL.
func checkEventNames(dev, resource, name string) error {
	if strings.IndexByte(dev, 0) >= 0 {
		return fmt.Errorf("device %q contains NUL: %w", dev, ErrInvalid)
	}
	if err := validName("resource", resource); err != nil {
		return err
	}
	return validName("event", name)
}

// encodeEvent checks ev and encodes it as a format-2 outbox record. It
// fails with an error wrapping ErrInvalid for names checkEventNames
// refuses or parameters that encoding/json cannot encode.
func encodeEvent(ev Event) ([]byte, error) {
	if err := checkEventNames(ev.Dev, ev.Resource, ev.Name); err != nil {
		return nil, err
	}
	var params []byte
	if len(ev.Params) > 0 {
		var err error
		if params, err = json.Marshal(ev.Params); err != nil {
			return nil, fmt.Errorf("event %q: params: %w: %w", ev.Name, ErrInvalid, err)
		}
	}
	var pic *Picture
	if ev.Picture {
		pic = &Picture{Pending: true}
	}
	return appendEvent(nil, ev.Dev, ev.Resource, ev.Name, ev.At, pic, params), nil
}

// appendEvent appends an outbox record to dst, in format 2 when pic is
// nil:
// format (2) | capture time, unix ns (8, BE) | len(dev) (uvarint) | dev |
// len(resource) (uvarint) | resource | len(name) (uvarint) | name | params,
// where params, the rest of the value, is a JSON object or empty for none;
// and in format 3, with the picture's state after the name, otherwise (see
// appendPicture).
func appendEvent(dst []byte, dev, resource, name string, at time.Time, pic *Picture, params []byte) []byte {
	dst = slices.Grow(dst, 1+8+3*binary.MaxVarintLen64+len(dev)+len(resource)+len(name)+len(params))
	format := byte(outboxFormat2)
	if pic != nil {
		format = outboxFormat3
	}
	dst = append(dst, format)
	dst = binary.BigEndian.AppendUint64(dst, uint64(unixNano(at)))
	for _, s := range []string{dev, resource, name} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	if pic != nil {
		dst = appendPicture(dst, pic)
	}
	return append(dst, params...)
}

// Flags of a picture's state in a format-3 record.
const (
	picPending  = 1 << 0 // asked for, not taken yet
	picAttached = 1 << 1 // in the spool: size (uvarint) and SHA-256 (32) follow
	picID       = 1 << 2 // uploaded: uvarint len(id) | id follows
	picErr      = 1 << 3 // none: uvarint len(reason) | reason follows
	picKnown    = picPending | picAttached | picID | picErr
)

// appendPicture appends a picture's state: flags (1) | [size (uvarint) |
// sha256 (32)] | [uvarint len(id) | id] | [uvarint len(err) | err], each
// part present when its flag is set.
func appendPicture(dst []byte, p *Picture) []byte {
	var flags byte
	if p.Pending {
		flags |= picPending
	}
	if p.Size > 0 {
		flags |= picAttached
	}
	if p.ID != "" {
		flags |= picID
	}
	if p.Err != "" {
		flags |= picErr
	}
	dst = append(dst, flags)
	if p.Size > 0 {
		dst = binary.AppendUvarint(dst, uint64(p.Size))
		dst = append(dst, p.Sum[:]...)
	}
	for _, s := range []string{p.ID, p.Err} {
		if s != "" {
			dst = binary.AppendUvarint(dst, uint64(len(s)))
			dst = append(dst, s...)
		}
	}
	return dst
}

// readPicture reads what appendPicture wrote. A pending picture has no
// other part; flags it does not know, a zero size or empty strings are
// refused.
func readPicture(b []byte) (*Picture, []byte, bool) {
	if len(b) < 1 || b[0]&^picKnown != 0 {
		return nil, nil, false
	}
	flags := b[0]
	b = b[1:]
	if flags&picPending != 0 && flags != picPending {
		return nil, nil, false
	}
	p := &Picture{Pending: flags&picPending != 0}
	if flags&picAttached != 0 {
		n, w := binary.Uvarint(b)
		if w <= 0 || w != len(binary.AppendUvarint(nil, n)) || n == 0 || n > math.MaxInt64 || len(b)-w < sha256Size {
			return nil, nil, false
		}
		p.Size = int64(n)
		copy(p.Sum[:], b[w:w+sha256Size])
		b = b[w+sha256Size:]
	}
	var ok bool
	if flags&picID != 0 {
		if p.ID, b, ok = readString(b); !ok || p.ID == "" {
			return nil, nil, false
		}
	}
	if flags&picErr != 0 {
		if p.Err, b, ok = readString(b); !ok || p.Err == "" {
			return nil, nil, false
		}
	}
	return p, b, true
}

const sha256Size = 32

// decodeEvent decodes an outbox record of any format. A record that
// does not decode, or holds what the encoder would not have written, is an
// error wrapping ErrCorrupt. The returned Record owns its memory (it does
// not alias v, which bbolt may reuse after the transaction).
func decodeEvent(id uint64, v []byte) (Record, error) {
	at, ok := decodeEventAt(v)
	if !ok {
		return Record{}, fmt.Errorf("outbox record %d: bad header: %w", id, ErrCorrupt)
	}
	rest := v[9:]
	dev, rest, ok := readString(rest)
	if !ok {
		return Record{}, fmt.Errorf("outbox record %d: bad device length: %w", id, ErrCorrupt)
	}
	rec := Record{ID: id, Dev: dev, At: at}
	if v[0] == outboxFormat1 {
		if err := decodeBody1(&rec, rest); err != nil {
			return Record{}, fmt.Errorf("outbox record %d: %w", id, err)
		}
		return rec, nil
	}
	if rec.Resource, rest, ok = readString(rest); !ok {
		return Record{}, fmt.Errorf("outbox record %d: bad resource length: %w", id, ErrCorrupt)
	}
	if rec.Name, rest, ok = readString(rest); !ok {
		return Record{}, fmt.Errorf("outbox record %d: bad event name length: %w", id, ErrCorrupt)
	}
	if v[0] == outboxFormat3 {
		if rec.Picture, rest, ok = readPicture(rest); !ok {
			return Record{}, fmt.Errorf("outbox record %d: bad picture state: %w", id, ErrCorrupt)
		}
	}
	if err := checkEventNames(rec.Dev, rec.Resource, rec.Name); err != nil {
		return Record{}, fmt.Errorf("outbox record %d: %w: %w", id, ErrCorrupt, err)
	}
	if len(rest) > 0 {
		if !isJSONObject(rest) {
			return Record{}, fmt.Errorf("outbox record %d: params are not a JSON object: %w", id, ErrCorrupt)
		}
		rec.Params = bytes.Clone(rest)
	}
	return rec, nil
}

// readString reads a uvarint length and that many bytes. It refuses a
// length that is not minimally encoded or runs past the end.
func readString(b []byte) (string, []byte, bool) {
	n, w := binary.Uvarint(b)
	if w <= 0 || w != len(binary.AppendUvarint(nil, n)) || n > uint64(len(b)-w) {
		return "", nil, false
	}
	b = b[w:]
	return string(b[:n]), b[n:], true
}

// isJSONObject reports whether b is one JSON object, without surrounding
// space.
func isJSONObject(b []byte) bool {
	return len(b) >= 2 && b[0] == '{' && b[len(b)-1] == '}' && json.Valid(b)
}

// body1 is the body of event.report as format-1 records hold it, from
// json.Marshal(model.EventOccurrence).
type body1 struct {
	Resource string          `json:"resource"`
	Event    string          `json:"event"`
	Params   json.RawMessage `json:"params"`
	TS       int64           `json:"ts"`
}

// decodeBody1 fills rec's resource, name and parameters from the body of
// a format-1 record. The parameters are the bytes of the body, exactly;
// "null" or absent means none. The time comes from the record's header,
// as before, not from "ts". A body that is not one such JSON object (an
// unknown key, a type that does not fit, parameters that are not an
// object, anything after it) is an error wrapping ErrCorrupt.
func decodeBody1(rec *Record, body []byte) error {
	var b body1
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return fmt.Errorf("format-1 body: %w: %w", ErrCorrupt, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("format-1 body: data after the object: %w", ErrCorrupt)
	}
	rec.Resource, rec.Name = b.Resource, b.Event
	switch {
	case len(b.Params) == 0 || string(b.Params) == "null":
	case isJSONObject(b.Params):
		rec.Params = bytes.Clone(b.Params)
	default:
		return fmt.Errorf("format-1 body: params are not a JSON object: %w", ErrCorrupt)
	}
	return nil
}

// decodeEventAt returns the capture time of an outbox record of either
// format without decoding the rest.
func decodeEventAt(v []byte) (time.Time, bool) {
	if len(v) < 9 || (v[0] != outboxFormat1 && v[0] != outboxFormat2 && v[0] != outboxFormat3) {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v[1:9]))), true
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// Kinds of stored attribute values.
const (
	kindNull   = 0
	kindBool   = 1
	kindInt    = 2
	kindFloat  = 3
	kindString = 4
	kindJSON   = 5
)

// Value flags.
const flagPending = 1

// valueKey is dev NUL resource NUL attribute.
func valueKey(dev, resource, attr string) []byte {
	return []byte(dev + "\x00" + resource + "\x00" + attr)
}

func splitValueKey(k []byte) (dev, resource, attr string, ok bool) {
	parts := strings.SplitN(string(k), "\x00", 3)
	if len(parts) != 3 {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

func validName(what, s string) error {
	if s == "" || strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%s %q: empty or contains NUL: %w", what, s, ErrInvalid)
	}
	return nil
}

// encodeValue encodes an attribute value:
// format (1) | flags (1) | capture time, unix ns (8, BE) | kind (1) |
// len(quality) (1) | quality | payload, where the payload is 1 byte for a
// bool, 8 bytes BE for an int64 or the bits of a float64, the bytes of a
// string, or JSON for anything else. A value with a reason (Err) is
// written in format 2, which has uvarint len(err) | err between the
// quality and the payload.
func encodeValue(v model.Value, flags byte) ([]byte, error) {
	if len(v.Quality) > 255 {
		return nil, fmt.Errorf("quality %q too long: %w", v.Quality, ErrInvalid)
	}
	format := byte(valueFormat1)
	if v.Err != "" {
		format = valueFormat2
	}
	b := make([]byte, 0, 16+len(v.Quality)+len(v.Err))
	b = append(b, format, flags)
	b = binary.BigEndian.AppendUint64(b, uint64(unixNano(v.At)))
	var payload []byte
	var kind byte
	switch x := v.V.(type) {
	case nil:
		kind = kindNull
	case bool:
		kind = kindBool
		if x {
			payload = []byte{1}
		} else {
			payload = []byte{0}
		}
	case int64:
		kind = kindInt
		payload = binary.BigEndian.AppendUint64(nil, uint64(x))
	case int:
		kind = kindInt
		payload = binary.BigEndian.AppendUint64(nil, uint64(int64(x)))
	case float64:
		kind = kindFloat
		payload = binary.BigEndian.AppendUint64(nil, math.Float64bits(x))
	case string:
		kind = kindString
		payload = []byte(x)
	default:
		j, err := json.Marshal(x)
		if err != nil {
			return nil, fmt.Errorf("value of type %T: %w: %w", x, ErrInvalid, err)
		}
		kind = kindJSON
		payload = j
	}
	b = append(b, kind, byte(len(v.Quality)))
	b = append(b, v.Quality...)
	if format == valueFormat2 {
		b = binary.AppendUvarint(b, uint64(len(v.Err)))
		b = append(b, v.Err...)
	}
	return append(b, payload...), nil
}

// decodeValue decodes what encodeValue wrote, in either format, and
// returns the value and its flags.
func decodeValue(b []byte) (model.Value, byte, error) {
	if len(b) < 12 || (b[0] != valueFormat1 && b[0] != valueFormat2) {
		return model.Value{}, 0, fmt.Errorf("value record: bad header: %w", ErrCorrupt)
	}
	flags := b[1]
	ns := int64(binary.BigEndian.Uint64(b[2:10]))
	kind, ql := b[10], int(b[11])
	rest := b[12:]
	if ql > len(rest) {
		return model.Value{}, 0, fmt.Errorf("value record: bad quality length: %w", ErrCorrupt)
	}
	v := model.Value{Quality: model.Quality(rest[:ql])}
	if ns != 0 {
		v.At = time.Unix(0, ns)
	}
	p := rest[ql:]
	if b[0] == valueFormat2 {
		var ok bool
		if v.Err, p, ok = readString(p); !ok || v.Err == "" {
			return model.Value{}, 0, fmt.Errorf("value record: bad reason length: %w", ErrCorrupt)
		}
	}
	switch kind {
	case kindNull:
		if len(p) != 0 {
			return model.Value{}, 0, fmt.Errorf("value record: null with payload: %w", ErrCorrupt)
		}
	case kindBool:
		if len(p) != 1 || p[0] > 1 {
			return model.Value{}, 0, fmt.Errorf("value record: bad bool: %w", ErrCorrupt)
		}
		v.V = p[0] == 1
	case kindInt, kindFloat:
		if len(p) != 8 {
			return model.Value{}, 0, fmt.Errorf("value record: bad number: %w", ErrCorrupt)
		}
		u := binary.BigEndian.Uint64(p)
		if kind == kindInt {
			v.V = int64(u)
		} else {
			v.V = math.Float64frombits(u)
		}
	case kindString:
		v.V = string(p)
	case kindJSON:
		var x any
		if err := json.Unmarshal(p, &x); err != nil {
			return model.Value{}, 0, fmt.Errorf("value record: %w: %w", ErrCorrupt, err)
		}
		v.V = x
	default:
		return model.Value{}, 0, fmt.Errorf("value record: unknown kind %d: %w", kind, ErrCorrupt)
	}
	return v, flags, nil
}

// storedCredentials is the stored form of Credentials.
type storedCredentials struct {
	Format        int       `json:"format"`
	DevID         string    `json:"dev_id"`
	MasterKey     []byte    `json:"master_key"`
	Suite         uint8     `json:"suite"`
	SessionKey    []byte    `json:"session_key,omitempty"`
	SessionExpiry time.Time `json:"session_expiry,omitzero"`
	Lifetime      int64     `json:"lifetime_ns,omitempty"`
	DASAddress    string    `json:"das_address,omitempty"`
	PictureURL    string    `json:"picture_url,omitempty"`
}

const credentialsFormat1 = 1

func encodeCredentials(c Credentials) ([]byte, error) {
	return json.Marshal(storedCredentials{
		Format:        credentialsFormat1,
		DevID:         c.DevID,
		MasterKey:     c.MasterKey,
		Suite:         c.Suite,
		SessionKey:    c.SessionKey,
		SessionExpiry: c.SessionExpiry,
		Lifetime:      int64(c.Lifetime),
		DASAddress:    c.DASAddress,
		PictureURL:    c.PictureURL,
	})
}

func decodeCredentials(b []byte) (Credentials, error) {
	var s storedCredentials
	if err := json.Unmarshal(b, &s); err != nil {
		return Credentials{}, fmt.Errorf("credentials: %w: %w", ErrCorrupt, err)
	}
	if s.Format != credentialsFormat1 {
		return Credentials{}, fmt.Errorf("credentials: unknown format %d: %w", s.Format, ErrCorrupt)
	}
	return Credentials{
		DevID:         s.DevID,
		MasterKey:     s.MasterKey,
		Suite:         s.Suite,
		SessionKey:    s.SessionKey,
		SessionExpiry: s.SessionExpiry,
		Lifetime:      time.Duration(s.Lifetime),
		DASAddress:    s.DASAddress,
		PictureURL:    s.PictureURL,
	}, nil
}
