package osap

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"time"
	"unicode/utf8"
)

// MACSize is the size of the MAC of 0x1 (HMAC-SHA256).
const MACSize = 32

// MaxIDLen bounds serials and DevIDs on the wire.
const MaxIDLen = 128

// DeviceInfo is the JSON of tag 0x0B, sent in 0x7.
type DeviceInfo struct {
	Model    string `json:"model"`
	Firmware string `json:"firmware"`
	Kind     string `json:"kind"` // "gateway"
}

// The LBS messages of the binding, as their fields. Encode builds a frame;
// the matching Decode function reads one (requests: the general payload
// first, so that the LBS can find the key, then the sealed one).
type (
	// AuthReq is 0x1: general serial, public key, nonce_dev and MAC.
	AuthReq struct {
		Serial    string
		PublicKey []byte // uncompressed P-384, 97 bytes
		Nonce     []byte // nonce_dev, 16 bytes
		MAC       []byte // set by Encode; checked by VerifyAuthReqMAC
	}
	// AuthRsp is 0x2: sealed with the share key under the chosen suite.
	AuthRsp struct {
		PublicKey []byte // the LBS's
		Nonce     []byte // nonce_lbs
	}
	// RefreshReq is 0x4: general DevID; sealed with the master key.
	RefreshReq struct {
		DevID string
		Nonce []byte
	}
	// RefreshRsp is 0x6: sealed with the master key.
	RefreshRsp struct {
		SessionKey []byte
		Lifetime   time.Duration // whole seconds on the wire
		Nonce      []byte        // echo of 0x4's
	}
	// ApplyReq is 0x7: general serial; sealed with the master key.
	ApplyReq struct {
		Serial string
		Info   DeviceInfo
		Nonce  []byte
	}
	// ApplyRsp is 0x8: sealed with the master key.
	ApplyRsp struct {
		DevID      string
		SessionKey []byte
		Lifetime   time.Duration
		Nonce      []byte // echo of 0x7's
	}
	// ApplyCfm is 0x9: general DevID; sealed with the session key.
	ApplyCfm struct {
		DevID string
		Nonce []byte // the nonce of 0x7
	}
	// AccessReq is 0xA: general DevID; sealed with the session key.
	AccessReq struct {
		DevID string
		Nonce []byte
	}
	// AccessRsp is 0xB: sealed with the session key.
	AccessRsp struct {
		DASAddress string
		Nonce      []byte // echo of 0xA's
		// PictureURL is the picture service's base URL (tag 0x0D,
		// binding 2.7); empty when the platform offers none.
		PictureURL string
	}
)

func tlvString(t Tag, s string) TLV { return TLV{Tag: t, Value: []byte(s)} }

func tlvUint32(t Tag, v uint32) TLV {
	return TLV{Tag: t, Value: binary.BigEndian.AppendUint32(nil, v)}
}

// lifetimeSeconds converts a lifetime to whole seconds for the wire.
func lifetimeSeconds(d time.Duration) uint32 {
	s := d / time.Second
	if s < 0 {
		return 0
	}
	if s > 0xffffffff {
		return 0xffffffff
	}
	return uint32(s)
}

// required returns the value of tag t, checking its size (size 0: any
// non-empty value of at most MaxIDLen bytes of UTF-8; size -1: any value).
// A missing or wrongly sized tag is ErrMalformed (status 6).
func required(mt MsgType, ts TLVs, t Tag, size int) ([]byte, error) {
	v, ok := ts.Get(t)
	if !ok {
		return nil, fmt.Errorf("%w: %v: missing %v", ErrMalformed, mt, t)
	}
	switch {
	case size > 0 && len(v) != size:
		return nil, fmt.Errorf("%w: %v: %v of %d bytes, want %d", ErrMalformed, mt, t, len(v), size)
	case size == 0 && (len(v) == 0 || len(v) > MaxIDLen || !utf8.Valid(v)):
		return nil, fmt.Errorf("%w: %v: %v of %d bytes is not 1..%d bytes of UTF-8", ErrMalformed, mt, t, len(v), MaxIDLen)
	}
	return v, nil
}

func requiredString(mt MsgType, ts TLVs, t Tag) (string, error) {
	v, err := required(mt, ts, t, 0)
	return string(v), err
}

// RequiredID returns the serial or DevID (tag t) of a request's general
// payload, which the LBS needs to find the key that opens the rest.
// A missing tag, or one that is not 1 to MaxIDLen bytes of UTF-8, is
// ErrMalformed.
func RequiredID(f *Frame, t Tag) (string, error) { return requiredString(f.Type, f.General, t) }

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// expect checks that f is of type t.
func expect(f *Frame, t MsgType) error {
	if f.Type != t {
		return fmt.Errorf("%w: got %v, want %v", ErrMalformed, f.Type, t)
	}
	return nil
}

// ResponseError returns nil when response f has status 0, a *StatusError
// with its message and retry-after when it has another, and ErrMalformed
// when it has no status.
func ResponseError(f *Frame) error {
	v, err := required(f.Type, f.General, TagStatus, 1)
	if err != nil {
		return err
	}
	if v[0] == 0 {
		return nil
	}
	se := &StatusError{Status: StatusCode(v[0])}
	if m, ok := f.General.Get(TagMessage); ok {
		se.Message = string(m)
	}
	if r, ok := f.General.Get(TagRetryAfter); ok && len(r) == 2 {
		se.RetryAfter = time.Duration(binary.BigEndian.Uint16(r)) * time.Second
	}
	return se
}

// EncodeError builds an error response of type t: PROTOCOL-VERSION, status,
// and message and retry after when set, in clear, with an empty application
// payload. group is the LBS's supported set with status 1, and otherwise
// the suite chosen on the connection when there is one.
func EncodeError(t MsgType, seq uint16, group SuiteSet, e *StatusError) ([]byte, error) {
	f := NewFrame(t, group, seq, TLV{Tag: TagStatus, Value: []byte{byte(e.Status)}})
	if e.Message != "" {
		f.General = append(f.General, tlvString(TagMessage, e.Message))
	}
	if e.RetryAfter > 0 {
		s := min((e.RetryAfter+time.Second-1)/time.Second, 0xffff)
		f.General = append(f.General, TLV{Tag: TagRetryAfter, Value: binary.BigEndian.AppendUint16(nil, uint16(s))})
	}
	return f.Encode()
}

func statusOK() TLV { return TLV{Tag: TagStatus, Value: []byte{0}} }

func sealed(f *Frame, c *Cipher, rand io.Reader, app TLVs) ([]byte, error) {
	if err := f.Seal(c, rand, app); err != nil {
		return nil, err
	}
	return f.Encode()
}

// Encode builds 0x1 with the MAC: HMAC-SHA256(share key, the whole frame
// with the MAC value set to 32 zero bytes).
// It fails only when a value makes the frame too large (ErrFrameTooLarge
// over MaxFrameSize).
func (m AuthReq) Encode(seq uint16, offer SuiteSet, shareKey []byte) ([]byte, error) {
	f := NewFrame(MsgAuthReq, offer, seq,
		tlvString(TagSerial, m.Serial),
		TLV{Tag: TagPublicKey, Value: m.PublicKey},
		TLV{Tag: TagNonce, Value: m.Nonce},
		TLV{Tag: TagMAC, Value: make([]byte, MACSize)})
	b, err := f.Encode()
	if err != nil {
		return nil, err
	}
	h := hmac.New(sha256.New, shareKey)
	h.Write(b)
	h.Sum(b[:len(b)-MACSize])
	return b, nil
}

// DecodeAuthReq reads 0x1's fields. The MAC is checked by VerifyAuthReqMAC
// once the share key is known from the serial.
// A frame of another type, or with a field missing or of the wrong size,
// is ErrMalformed.
func DecodeAuthReq(f *Frame) (AuthReq, error) {
	var m AuthReq
	if err := expect(f, MsgAuthReq); err != nil {
		return m, err
	}
	var err error
	if m.Serial, err = requiredString(f.Type, f.General, TagSerial); err != nil {
		return m, err
	}
	if m.PublicKey, err = required(f.Type, f.General, TagPublicKey, PublicKeySize); err != nil {
		return m, err
	}
	if m.Nonce, err = required(f.Type, f.General, TagNonce, NonceSize); err != nil {
		return m, err
	}
	if m.MAC, err = required(f.Type, f.General, TagMAC, MACSize); err != nil {
		return m, err
	}
	return m, nil
}

// VerifyAuthReqMAC checks the MAC of the 0x1 frame raw (as received)
// against shareKey, in constant time. A mismatch is a *StatusError with
// status 2.
func VerifyAuthReqMAC(raw []byte, shareKey []byte) error {
	h, err := DecodeFixedHeader(raw)
	if err != nil {
		return err
	}
	gen := h.Size + varHeaderSize + lenSize
	if len(raw) < gen+versionSize {
		return fmt.Errorf("%w: 0x1 too short for its MAC", ErrMalformed)
	}
	gl := int(binary.BigEndian.Uint16(raw[gen-lenSize:]))
	if gl < versionSize || gen+gl > len(raw) {
		return fmt.Errorf("%w: 0x1 general payload LEN %d", ErrMalformed, gl)
	}
	off := tlvValueOffset(raw[gen+versionSize:gen+gl], TagMAC)
	if off < 0 || gen+versionSize+off+MACSize > gen+gl {
		return fmt.Errorf("%w: 0x1 has no MAC", ErrMalformed)
	}
	off += gen + versionSize
	zeroed := clone(raw)
	clear(zeroed[off : off+MACSize])
	mac := hmac.New(sha256.New, shareKey)
	mac.Write(zeroed)
	if subtle.ConstantTimeCompare(mac.Sum(nil), raw[off:off+MACSize]) != 1 {
		return &StatusError{Status: StatusAuthFailed, Message: "MAC does not verify"}
	}
	return nil
}

// Encode builds a successful 0x2, sealed with c (the share key under the
// chosen suite, which is also the frame's protocol group).
// It fails only when rand fails or a value makes the frame too large
// (ErrFrameTooLarge over MaxFrameSize).
func (m AuthRsp) Encode(seq uint16, c *Cipher, rand io.Reader) ([]byte, error) {
	f := NewFrame(MsgAuthRsp, SuiteSet(c.Suite()), seq, statusOK())
	return sealed(f, c, rand, TLVs{{TagPublicKey, m.PublicKey}, {TagNonce, m.Nonce}})
}

// DecodeAuthRsp checks 0x2's status (a *StatusError when it is not 0) and
// opens its application payload with c.
// A frame of another type, or with a field missing or of the wrong size,
// is ErrMalformed; one that does not open with c, ErrDecrypt.
func DecodeAuthRsp(f *Frame, c *Cipher) (AuthRsp, error) {
	var m AuthRsp
	app, err := openResponse(f, MsgAuthRsp, c)
	if err != nil {
		return m, err
	}
	if m.PublicKey, err = required(f.Type, app, TagPublicKey, PublicKeySize); err != nil {
		return m, err
	}
	m.Nonce, err = required(f.Type, app, TagNonce, NonceSize)
	return m, err
}

func openResponse(f *Frame, t MsgType, c *Cipher) (TLVs, error) {
	if err := expect(f, t); err != nil {
		return nil, err
	}
	if err := ResponseError(f); err != nil {
		return nil, err
	}
	return f.Open(c)
}

func openRequest(f *Frame, t MsgType, c *Cipher) (TLVs, error) {
	if err := expect(f, t); err != nil {
		return nil, err
	}
	return f.Open(c)
}

// Encode builds 0x4, sealed with c (the master key under the stored suite).
// It fails only when rand fails or a value makes the frame too large
// (ErrFrameTooLarge over MaxFrameSize).
func (m RefreshReq) Encode(seq uint16, c *Cipher, rand io.Reader) ([]byte, error) {
	f := NewFrame(MsgRefreshReq, SuiteSet(c.Suite()), seq, tlvString(TagDevID, m.DevID))
	return sealed(f, c, rand, TLVs{{TagNonce, m.Nonce}})
}

// DecodeRefreshReq opens 0x4 with c.
// A frame of another type, or with a field missing or of the wrong size,
// is ErrMalformed; one that does not open with c, ErrDecrypt.
func DecodeRefreshReq(f *Frame, c *Cipher) (RefreshReq, error) {
	var m RefreshReq
	var err error
	if m.DevID, err = RequiredID(f, TagDevID); err != nil {
		return m, err
	}
	app, err := openRequest(f, MsgRefreshReq, c)
	if err != nil {
		return m, err
	}
	m.Nonce, err = required(f.Type, app, TagNonce, NonceSize)
	return m, err
}

// Encode builds a successful 0x6, sealed with c (the master key).
// It fails only when rand fails or a value makes the frame too large
// (ErrFrameTooLarge over MaxFrameSize).
func (m RefreshRsp) Encode(seq uint16, c *Cipher, rand io.Reader) ([]byte, error) {
	f := NewFrame(MsgRefreshRsp, SuiteSet(c.Suite()), seq, statusOK())
	return sealed(f, c, rand, TLVs{{TagSessionKey, m.SessionKey}, tlvUint32(TagLifetime, lifetimeSeconds(m.Lifetime)), {TagNonce, m.Nonce}})
}

// DecodeRefreshRsp checks 0x6's status and opens it with c.
// A status other than 0 is a *StatusError; a frame of another type, or
// with a field missing or of the wrong size, ErrMalformed; one that does
// not open with c, ErrDecrypt.
func DecodeRefreshRsp(f *Frame, c *Cipher) (RefreshRsp, error) {
	var m RefreshRsp
	app, err := openResponse(f, MsgRefreshRsp, c)
	if err != nil {
		return m, err
	}
	if m.SessionKey, m.Lifetime, err = sessionTLVs(f.Type, app); err != nil {
		return m, err
	}
	m.Nonce, err = required(f.Type, app, TagNonce, NonceSize)
	return m, err
}

func sessionTLVs(mt MsgType, app TLVs) ([]byte, time.Duration, error) {
	k, err := required(mt, app, TagSessionKey, KeySize)
	if err != nil {
		return nil, 0, err
	}
	l, err := required(mt, app, TagLifetime, 4)
	if err != nil {
		return nil, 0, err
	}
	return k, time.Duration(binary.BigEndian.Uint32(l)) * time.Second, nil
}

// Encode builds 0x7, sealed with c (the master key under the chosen suite).
// It fails only when rand fails or a value makes the frame too large
// (ErrFrameTooLarge over MaxFrameSize).
func (m ApplyReq) Encode(seq uint16, c *Cipher, rand io.Reader) ([]byte, error) {
	info, err := json.Marshal(m.Info)
	if err != nil {
		return nil, fmt.Errorf("encode device info: %w", err)
	}
	f := NewFrame(MsgApplyDevIDReq, SuiteSet(c.Suite()), seq, tlvString(TagSerial, m.Serial))
	return sealed(f, c, rand, TLVs{{TagDeviceInfo, info}, {TagNonce, m.Nonce}})
}

// DecodeApplyReq opens 0x7 with c. Device info that is not a JSON object is
// ErrMalformed; unknown fields in it are ignored.
func DecodeApplyReq(f *Frame, c *Cipher) (ApplyReq, error) {
	var m ApplyReq
	var err error
	if m.Serial, err = RequiredID(f, TagSerial); err != nil {
		return m, err
	}
	app, err := openRequest(f, MsgApplyDevIDReq, c)
	if err != nil {
		return m, err
	}
	info, err := required(f.Type, app, TagDeviceInfo, -1)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(info, &m.Info); err != nil {
		return m, fmt.Errorf("%w: %v: device info: %v", ErrMalformed, f.Type, err)
	}
	m.Nonce, err = required(f.Type, app, TagNonce, NonceSize)
	return m, err
}

// Encode builds a successful 0x8, sealed with c (the master key).
// It fails only when rand fails or a value makes the frame too large
// (ErrFrameTooLarge over MaxFrameSize).
func (m ApplyRsp) Encode(seq uint16, c *Cipher, rand io.Reader) ([]byte, error) {
	f := NewFrame(MsgApplyDevIDRsp, SuiteSet(c.Suite()), seq, statusOK())
	return sealed(f, c, rand, TLVs{tlvString(TagDevID, m.DevID), {TagSessionKey, m.SessionKey}, tlvUint32(TagLifetime, lifetimeSeconds(m.Lifetime)), {TagNonce, m.Nonce}})
}

// DecodeApplyRsp checks 0x8's status and opens it with c.
// A status other than 0 is a *StatusError; a frame of another type, or
// with a field missing or of the wrong size, ErrMalformed; one that does
// not open with c, ErrDecrypt.
func DecodeApplyRsp(f *Frame, c *Cipher) (ApplyRsp, error) {
	var m ApplyRsp
	app, err := openResponse(f, MsgApplyDevIDRsp, c)
	if err != nil {
		return m, err
	}
	if m.DevID, err = requiredString(f.Type, app, TagDevID); err != nil {
		return m, err
	}
	if m.SessionKey, m.Lifetime, err = sessionTLVs(f.Type, app); err != nil {
		return m, err
	}
	m.Nonce, err = required(f.Type, app, TagNonce, NonceSize)
	return m, err
}

// Encode builds 0x9, sealed with c (the new session key).
// It fails only when rand fails or a value makes the frame too large
// (ErrFrameTooLarge over MaxFrameSize).
func (m ApplyCfm) Encode(seq uint16, c *Cipher, rand io.Reader) ([]byte, error) {
	f := NewFrame(MsgApplyDevIDCfm, SuiteSet(c.Suite()), seq, tlvString(TagDevID, m.DevID))
	return sealed(f, c, rand, TLVs{{TagNonce, m.Nonce}})
}

// DecodeApplyCfm opens 0x9 with c.
// A frame of another type, or with a field missing or of the wrong size,
// is ErrMalformed; one that does not open with c, ErrDecrypt.
func DecodeApplyCfm(f *Frame, c *Cipher) (ApplyCfm, error) {
	var m ApplyCfm
	var err error
	if m.DevID, err = RequiredID(f, TagDevID); err != nil {
		return m, err
	}
	app, err := openRequest(f, MsgApplyDevIDCfm, c)
	if err != nil {
		return m, err
	}
	m.Nonce, err = required(f.Type, app, TagNonce, NonceSize)
	return m, err
}

// Encode builds 0xA, sealed with c (the session key).
// It fails only when rand fails or a value makes the frame too large
// (ErrFrameTooLarge over MaxFrameSize).
func (m AccessReq) Encode(seq uint16, c *Cipher, rand io.Reader) ([]byte, error) {
	f := NewFrame(MsgAccessReq, SuiteSet(c.Suite()), seq, tlvString(TagDevID, m.DevID))
	return sealed(f, c, rand, TLVs{{TagNonce, m.Nonce}})
}

// DecodeAccessReq opens 0xA with c.
// A frame of another type, or with a field missing or of the wrong size,
// is ErrMalformed; one that does not open with c, ErrDecrypt.
func DecodeAccessReq(f *Frame, c *Cipher) (AccessReq, error) {
	var m AccessReq
	var err error
	if m.DevID, err = RequiredID(f, TagDevID); err != nil {
		return m, err
	}
	app, err := openRequest(f, MsgAccessReq, c)
	if err != nil {
		return m, err
	}
	m.Nonce, err = required(f.Type, app, TagNonce, NonceSize)
	return m, err
}

// Encode builds a successful 0xB, sealed with c (the session key).
// It fails only when rand fails or a value makes the frame too large
// (ErrFrameTooLarge over MaxFrameSize).
func (m AccessRsp) Encode(seq uint16, c *Cipher, rand io.Reader) ([]byte, error) {
	f := NewFrame(MsgAccessRsp, SuiteSet(c.Suite()), seq, statusOK())
	app := TLVs{tlvString(TagDASAddress, m.DASAddress), {TagNonce, m.Nonce}}
	if m.PictureURL != "" {
		app = append(app, tlvString(TagPictureURL, m.PictureURL))
	}
	return sealed(f, c, rand, app)
}

// DecodeAccessRsp checks 0xB's status and opens it with c.
// A status other than 0 is a *StatusError; a frame of another type, or
// with a field missing or of the wrong size, ErrMalformed; one that does
// not open with c, ErrDecrypt.
func DecodeAccessRsp(f *Frame, c *Cipher) (AccessRsp, error) {
	var m AccessRsp
	app, err := openResponse(f, MsgAccessRsp, c)
	if err != nil {
		return m, err
	}
	addr, err := required(f.Type, app, TagDASAddress, -1)
	if err != nil {
		return m, err
	}
	if len(addr) == 0 || !utf8.Valid(addr) {
		return m, fmt.Errorf("%w: %v: DAS address is not a URL", ErrMalformed, f.Type)
	}
	m.DASAddress = string(addr)
	if m.Nonce, err = required(f.Type, app, TagNonce, NonceSize); err != nil {
		return m, err
	}
	if pu, ok := app.Get(TagPictureURL); ok {
		if len(pu) == 0 || !utf8.Valid(pu) {
			return m, fmt.Errorf("%w: %v: picture service URL is not a URL", ErrMalformed, f.Type)
		}
		m.PictureURL = string(pu)
	}
	return m, nil
}
