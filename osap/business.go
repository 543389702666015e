package osap

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/osapgw/osapgw/internal/appendjson"
	"github.com/osapgw/osapgw/model"
)

// Message types carried in the general payload of business messages.
const (
	TypeTopoAdd         = "topo.add"
	TypeTopoRemove      = "topo.remove"
	TypeSubOnline       = "sub.online"
	TypeSubOffline      = "sub.offline"
	TypeTopoReply       = "topo.reply"
	TypeAttributeReport = "attribute.report"
	TypeEventReport     = "event.report"
	TypeAttributeSet    = "attribute.set"
	TypeAttributeGet    = "attribute.get"
	TypeOperationInvoke = "operation.invoke"
	TypeReply           = "reply"
	TypeStatus          = "status"
)

// Reply codes of downlink replies (binding 2.4).
const (
	CodeOK         = 0
	CodeBadRequest = 400
	// CodeUnauthorized: the device refused the gateway's credentials.
	CodeUnauthorized = 401
	CodeNotFound     = 404
	CodeTimeout      = 408
	CodeNotWritable  = 409
	CodeDeviceError  = 500
	CodeOffline      = 503
)

// MaxMessageSize bounds a business message's plaintext; larger ones are
// refused by both sides. MQTT itself allows 256 MiB, which no gateway box
// can afford to buffer.
const MaxMessageSize = 1 << 20

// Header is the general payload of a business message.
type Header struct {
	ID   string `json:"id"`
	TS   int64  `json:"ts"`
	Type string `json:"type"`
	Dev  string `json:"dev"`
	Code int    `json:"code"`
	Msg  string `json:"msg,omitempty"`
}

// Message is a decoded business message: its general payload and its
// application payload, still as JSON.
type Message struct {
	Header
	Body json.RawMessage
}

// Bodies of the business messages.
type (
	// AttributeReport is the body of attribute.report.
	AttributeReport struct {
		Resource string `json:"resource"`
		Values   Values `json:"values"`
	}
	// TopoAdd is the body of topo.add: sub-devices with their full model.
	TopoAdd struct {
		Devices []model.Device `json:"devices"`
	}
	// DeviceList is the body of topo.remove, sub.online and sub.offline.
	DeviceList struct {
		Devices []string `json:"devices"`
	}
	// AttributeSet is the body of attribute.set.
	AttributeSet struct {
		Resource string         `json:"resource"`
		Values   map[string]any `json:"values"`
	}
	// AttributeGet is the body of attribute.get; no names means all.
	AttributeGet struct {
		Resource string   `json:"resource"`
		Names    []string `json:"names,omitempty"`
	}
	// OperationInvoke is the body of operation.invoke.
	OperationInvoke struct {
		Resource  string         `json:"resource"`
		Operation string         `json:"operation"`
		Input     map[string]any `json:"input,omitempty"`
	}
	// ReplyBody is the body of a reply: the values read by attribute.get or
	// the output of operation.invoke, where there are any.
	ReplyBody struct {
		Values Values         `json:"values,omitempty"`
		Output map[string]any `json:"output,omitempty"`
	}
	// Status is the body of messages on the status topic.
	Status struct {
		Online bool `json:"online"`
	}
)

// EncodeMessage builds the plaintext of a business message: LEN (2 bytes,
// big endian) ‖ general JSON ‖ application JSON. A nil body leaves the
// application payload empty. It fails when h or body does not encode as
// JSON, or the message is over MaxMessageSize.
func EncodeMessage(h Header, body any) ([]byte, error) { return appendMessage(nil, h, body) }

// appendMessage appends what EncodeMessage returns to dst. The header and
// an AttributeReport body, sent at every poll, are written without
// reflection, as encoding/json would write them; other bodies go through
// encoding/json. On failure dst is returned unchanged.
func appendMessage(dst []byte, h Header, body any) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0)
	dst = h.appendJSON(dst)
	gen := len(dst) - start - 2
	if gen > 0xffff {
		return dst[:start], fmt.Errorf("encode %s header: %d bytes, over 65535", h.Type, gen)
	}
	binary.BigEndian.PutUint16(dst[start:], uint16(gen))
	if body != nil {
		var err error
		if dst, err = appendBody(dst, body); err != nil {
			return dst[:start], fmt.Errorf("encode %s body: %w", h.Type, err)
		}
	}
	if n := len(dst) - start; n > MaxMessageSize {
		return dst[:start], fmt.Errorf("encode %s: %d bytes, over the %d-byte limit", h.Type, n, MaxMessageSize)
	}
	return dst, nil
}

// appendJSON appends h as json.Marshal(h) writes it.
func (h Header) appendJSON(dst []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendjson.String(dst, h.ID)
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendInt(dst, h.TS, 10)
	dst = append(dst, `,"type":`...)
	dst = appendjson.String(dst, h.Type)
	dst = append(dst, `,"dev":`...)
	dst = appendjson.String(dst, h.Dev)
	dst = append(dst, `,"code":`...)
	dst = strconv.AppendInt(dst, int64(h.Code), 10)
	if h.Msg != "" {
		dst = append(dst, `,"msg":`...)
		dst = appendjson.String(dst, h.Msg)
	}
	return append(dst, '}')
}

// appendBody appends body as json.Marshal(body) writes it.
func appendBody(dst []byte, body any) ([]byte, error) {
	switch r := body.(type) {
	case AttributeReport:
		return r.appendJSON(dst)
	case EventReport:
		return r.AppendJSON(dst)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// keyPool holds the slices appendJSON sorts attribute names in.
var keyPool = sync.Pool{New: func() any { return new([]string) }}

// appendJSON appends r as json.Marshal(r) writes it: values in the order of
// their names' bytes. On failure dst is returned unchanged.
func (r AttributeReport) appendJSON(dst []byte) ([]byte, error) {
	start := len(dst)
	dst = append(dst, `{"resource":`...)
	dst = appendjson.String(dst, r.Resource)
	dst = append(dst, `,"values":`...)
	if r.Values == nil {
		return append(dst, "null}"...), nil
	}
	dst, err := appendValues(dst, r.Values)
	if err != nil {
		return dst[:start], err
	}
	return append(dst, '}'), nil
}

// DecodeMessage parses the plaintext of a business message. The general
// payload must be a JSON object of Header's fields with a type; the
// application payload, when present, must be valid JSON. Anything else is
// ErrMalformed; when the general payload still gives the message's id (a
// non-empty string), the error is an *UnreadableError with what could be
// read, so that a request can be answered (binding 2.4: 400).
func DecodeMessage(b []byte) (Message, error) {
	if len(b) > MaxMessageSize {
		return Message{}, fmt.Errorf("%w: %d bytes, over the %d-byte limit", ErrMalformed, len(b), MaxMessageSize)
	}
	if len(b) < 2 {
		return Message{}, fmt.Errorf("%w: message of %d bytes has no LEN", ErrMalformed, len(b))
	}
	n := int(binary.BigEndian.Uint16(b))
	if 2+n > len(b) {
		return Message{}, fmt.Errorf("%w: general payload of %d bytes, only %d left", ErrMalformed, n, len(b)-2)
	}
	var m Message
	dec := json.NewDecoder(bytes.NewReader(b[2 : 2+n]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m.Header); err != nil {
		return Message{}, unreadable(b[2:2+n], fmt.Errorf("%w: general payload: %v", ErrMalformed, err))
	}
	if dec.More() {
		return Message{}, unreadable(b[2:2+n], fmt.Errorf("%w: general payload: trailing data", ErrMalformed))
	}
	if m.Type == "" {
		return Message{}, unreadable(b[2:2+n], fmt.Errorf("%w: general payload has no type", ErrMalformed))
	}
	if app := b[2+n:]; len(app) > 0 {
		if !json.Valid(app) {
			return Message{}, unreadable(b[2:2+n], fmt.Errorf("%w: %s: application payload is not JSON", ErrMalformed, m.Type))
		}
		m.Body = json.RawMessage(app)
	}
	return m, nil
}

// UnreadableError is the error of DecodeMessage (and OpenMessage) for a
// message that opened but does not decode, whose general payload still
// gives its id: the body is not JSON, or the general payload has a field
// of the wrong type, an unknown field, trailing data or no type. Header
// holds the id and, where they are strings, the type and dev; Err wraps
// ErrMalformed with the reason.
type UnreadableError struct {
	Header Header
	Err    error
}

func (e *UnreadableError) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e *UnreadableError) Unwrap() error { return e.Err }

// unreadable returns err as an *UnreadableError when gen, the general
// payload, is a JSON object with a non-empty string id, and err otherwise.
func unreadable(gen []byte, err error) error {
	var fields map[string]json.RawMessage
	if json.Unmarshal(gen, &fields) != nil {
		// A valid object followed by trailing data: read its first value.
		if json.NewDecoder(bytes.NewReader(gen)).Decode(&fields) != nil {
			return err
		}
	}
	str := func(name string) string {
		var v string
		_ = json.Unmarshal(fields[name], &v) // absent or not a string: ""
		return v
	}
	h := Header{ID: str("id"), Type: str("type"), Dev: str("dev")}
	if h.ID == "" {
		return err
	}
	return &UnreadableError{Header: h, Err: err}
}

// DecodeBody decodes a message's application payload into v, refusing
// unknown fields. A missing body, or one that does not decode into v, is
// ErrMalformed.
func (m Message) DecodeBody(v any) error {
	if len(m.Body) == 0 {
		return fmt.Errorf("%w: %s has no body", ErrMalformed, m.Type)
	}
	dec := json.NewDecoder(bytes.NewReader(m.Body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %s body: %v", ErrMalformed, m.Type, err)
	}
	return nil
}

// SealMessage encodes and seals a business message for topic (the AAD).
// It fails when the message does not encode (see EncodeMessage) or rand
// fails.
func (c *Cipher) SealMessage(rand io.Reader, topic string, h Header, body any) ([]byte, error) {
	bp := plainPool.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooledPlaintext {
			plainPool.Put(bp)
		}
	}()
	pt, err := appendMessage((*bp)[:0], h, body)
	*bp = pt[:0]
	if err != nil {
		return nil, err
	}
	out, err := c.Seal(make([]byte, 0, len(pt)+c.Overhead()), rand, []byte(topic), pt)
	if err != nil {
		return nil, fmt.Errorf("seal %s on %q: %w", h.Type, topic, err)
	}
	return out, nil
}

// plainPool holds the buffers SealMessage encodes plaintexts in; the
// sealed message is a new slice, as the caller keeps it.
var plainPool = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledPlaintext is the largest buffer kept in plainPool: a rare large
// message (a big topo.add) is not worth keeping its memory for.
const maxPooledPlaintext = 64 << 10

// OpenMessage opens and decodes a business message received on topic. A
// payload that does not open with c is ErrDecrypt; one too short to be
// sealed, or that opens but does not decode, ErrMalformed (an
// *UnreadableError when its id can be read, see DecodeMessage).
func (c *Cipher) OpenMessage(topic string, payload []byte) (Message, error) {
	if len(payload) > MaxMessageSize+c.Overhead() {
		return Message{}, fmt.Errorf("%w: %d bytes on %q", ErrMalformed, len(payload), topic)
	}
	pt, err := c.Open(nil, []byte(topic), payload)
	if err != nil {
		return Message{}, fmt.Errorf("open message on %q: %w", topic, err)
	}
	return DecodeMessage(pt)
}

// Topic directions and kinds (binding 2.4).
const (
	DirUp   = "up"
	DirDown = "down"

	KindTopo      = "topo"
	KindAttribute = "attribute"
	KindEvent     = "event"
	KindReply     = "reply"
	KindStatus    = "status"
)

// Topic returns osap/v1/{devID}/{dir}/{kind}.
func Topic(devID, dir, kind string) string {
	return "osap/v1/" + devID + "/" + dir + "/" + kind
}

// DownFilter returns the subscription filter for everything sent down to
// devID: osap/v1/{devID}/down/#.
func DownFilter(devID string) string { return "osap/v1/" + devID + "/down/#" }

// ParseTopic splits a topic of the binding into its DevID, direction and
// kind (the rest of the path after the direction). A topic of another
// form is ErrMalformed.
func ParseTopic(topic string) (devID, dir, kind string, err error) {
	parts := strings.SplitN(topic, "/", 5)
	if len(parts) != 5 || parts[0] != "osap" || parts[1] != "v1" || parts[2] == "" || (parts[3] != DirUp && parts[3] != DirDown) || parts[4] == "" {
		return "", "", "", fmt.Errorf("%w: topic %q is not osap/v1/{DevID}/up|down/{kind}", ErrMalformed, topic)
	}
	return parts[2], parts[3], parts[4], nil
}

const loginPrefix = "osap-login"

// LoginMaxAge is how old a login password may be when the DAS checks it.
const LoginMaxAge = 300 * time.Second

// LoginPassword builds the MQTT CONNECT password: base64 (standard, padded)
// of seal("osap-login" ‖ unix seconds (8 bytes BE) ‖ nonce (16)) with the
// DevID as AAD. It fails only when rand fails.
func (c *Cipher) LoginPassword(rand io.Reader, devID string, now time.Time) (string, error) {
	pt := make([]byte, 0, len(loginPrefix)+8+NonceSize)
	pt = append(pt, loginPrefix...)
	pt = binary.BigEndian.AppendUint64(pt, uint64(now.Unix()))
	var nonce [NonceSize]byte
	if _, err := io.ReadFull(rand, nonce[:]); err != nil {
		return "", fmt.Errorf("read login nonce: %w", err)
	}
	pt = append(pt, nonce[:]...)
	sealed, err := c.Seal(nil, rand, []byte(devID), pt)
	if err != nil {
		return "", fmt.Errorf("seal login password: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sealed), nil
}

// OpenLoginPassword opens a login password and returns the time and nonce
// it carries. Checking freshness and replay is the caller's. A password
// that is not base64 of a sealed login of the right form is ErrMalformed;
// one that does not open with c, ErrDecrypt.
func (c *Cipher) OpenLoginPassword(devID, password string) (time.Time, [NonceSize]byte, error) {
	var nonce [NonceSize]byte
	if len(password) > 512 {
		return time.Time{}, nonce, fmt.Errorf("%w: login password of %d bytes", ErrMalformed, len(password))
	}
	raw, err := base64.StdEncoding.DecodeString(password)
	if err != nil {
		return time.Time{}, nonce, fmt.Errorf("%w: login password is not base64", ErrMalformed)
	}
	pt, err := c.Open(nil, []byte(devID), raw)
	if err != nil {
		return time.Time{}, nonce, fmt.Errorf("login password: %w", err)
	}
	if len(pt) != len(loginPrefix)+8+NonceSize || string(pt[:len(loginPrefix)]) != loginPrefix {
		return time.Time{}, nonce, fmt.Errorf("%w: login password has the wrong form", ErrMalformed)
	}
	sec := int64(binary.BigEndian.Uint64(pt[len(loginPrefix):]))
	copy(nonce[:], pt[len(loginPrefix)+8:])
	return time.Unix(sec, 0), nonce, nil
}
