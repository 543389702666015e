package osap

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MsgType is the control message type of an LBS frame: the high nibble of
// its first byte.
type MsgType uint8

// The LBS messages of the binding (0x3 and 0x5 stay reserved).
const (
	MsgAuthReq       MsgType = 0x1 // Authentication ECDH Req, device → LBS
	MsgAuthRsp       MsgType = 0x2 // Authentication ECDH Rsp, LBS → device
	MsgRefreshReq    MsgType = 0x4 // Refresh SessionKey Req, device → LBS
	MsgRefreshRsp    MsgType = 0x6 // Refresh SessionKey Rsp, LBS → device
	MsgApplyDevIDReq MsgType = 0x7 // Apply DevID Req, device → LBS
	MsgApplyDevIDRsp MsgType = 0x8 // Apply DevID Rsp, LBS → device
	MsgApplyDevIDCfm MsgType = 0x9 // Apply DevID Cfm, device → LBS; no response
	MsgAccessReq     MsgType = 0xA // Get Access Service Req, device → LBS
	MsgAccessRsp     MsgType = 0xB // Get Access Service Rsp, LBS → device
)

// String returns the type's number and its name in the specification
// ("0x1 Authentication ECDH Req"), or "type(0x…)" for an unknown type.
func (t MsgType) String() string {
	switch t {
	case MsgAuthReq:
		return "0x1 Authentication ECDH Req"
	case MsgAuthRsp:
		return "0x2 Authentication ECDH Rsp"
	case MsgRefreshReq:
		return "0x4 Refresh SessionKey Req"
	case MsgRefreshRsp:
		return "0x6 Refresh SessionKey Rsp"
	case MsgApplyDevIDReq:
		return "0x7 Apply DevID Req"
	case MsgApplyDevIDRsp:
		return "0x8 Apply DevID Rsp"
	case MsgApplyDevIDCfm:
		return "0x9 Apply DevID Cfm"
	case MsgAccessReq:
		return "0xA Get Access Service Req"
	case MsgAccessRsp:
		return "0xB Get Access Service Rsp"
	}
	return fmt.Sprintf("type(%#x)", uint8(t))
}

// Response returns the type answering request type t, and false when t is
// not a request that has a response (0x9 has none).
func (t MsgType) Response() (MsgType, bool) {
	switch t {
	case MsgAuthReq:
		return MsgAuthRsp, true
	case MsgRefreshReq:
		return MsgRefreshRsp, true
	case MsgApplyDevIDReq:
		return MsgApplyDevIDRsp, true
	case MsgAccessReq:
		return MsgAccessRsp, true
	}
	return 0, false
}

// FlagECDH is control flag bit 0 ("Bit1" in the draft's counting): ECDH
// mode. Every frame of this binding sets it.
const FlagECDH = 0x1

// ProtocolType is the protocol type of this binding.
const ProtocolType = 1

// ProtocolVersion is the PROTOCOL-VERSION that opens every general
// payload: FORM_VERSION 1, HIGH_TYPE_VERSION 0, LOW_TYPE_VERSION 6.
var ProtocolVersion = [3]byte{1, 0, 6}

// MaxFrameSize is the largest LBS frame, fixed header included, that
// either side sends or accepts.
const MaxFrameSize = 64 << 10

// Sizes of the fixed parts of a frame.
const (
	varHeaderSize   = 4 // protocol type, protocol group, sequence
	lenSize         = 2 // LEN of the general payload
	versionSize     = 3 // PROTOCOL-VERSION
	maxRemLenBytes  = 4
	minRemainingLen = varHeaderSize + lenSize + versionSize
)

// Errors of the fixed header, allocated once so that decoding it allocates
// nothing.
var (
	// ErrShortHeader is returned by DecodeFixedHeader when b ends before
	// the remaining length does; more bytes may complete it.
	ErrShortHeader   = fmt.Errorf("%w: fixed header truncated", ErrMalformed)
	errRemLenTooLong = fmt.Errorf("%w: remaining length longer than 4 bytes", ErrMalformed)
	errRemLenPadded  = fmt.Errorf("%w: remaining length not in its shortest form", ErrMalformed)
)

// FixedHeader is the first byte of a frame and its remaining length.
type FixedHeader struct {
	Type      MsgType
	Flags     uint8
	Remaining int // bytes after the fixed header
	Size      int // bytes of the fixed header itself (2..5)
}

// FrameSize returns the size of the whole frame the header announces.
func (h FixedHeader) FrameSize() int { return h.Size + h.Remaining }

// AppendRemainingLength appends n as an MQTT variable-length integer
// (1 to 4 bytes, 7 bits each, least significant first, bit 7 =
// continuation). n must be below 2^28.
func AppendRemainingLength(dst []byte, n int) []byte {
	for {
		b := byte(n & 0x7f)
		n >>= 7
		if n == 0 {
			return append(dst, b)
		}
		dst = append(dst, b|0x80)
	}
}

// DecodeFixedHeader decodes the fixed header at the start of b without
// allocating. It returns ErrShortHeader when b ends inside it,
// ErrFrameTooLarge when the frame would exceed MaxFrameSize and
// ErrMalformed for a remaining length longer than 4 bytes or not in its
// shortest form.
func DecodeFixedHeader(b []byte) (FixedHeader, error) {
	if len(b) < 2 {
		return FixedHeader{}, ErrShortHeader
	}
	h := FixedHeader{Type: MsgType(b[0] >> 4), Flags: b[0] & 0x0f}
	n, shift := 0, 0
	for i := 1; ; i++ {
		if i > maxRemLenBytes {
			return FixedHeader{}, errRemLenTooLong
		}
		if i >= len(b) {
			return FixedHeader{}, ErrShortHeader
		}
		c := b[i]
		n |= int(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if c == 0 && i > 1 {
				return FixedHeader{}, errRemLenPadded
			}
			h.Size = i + 1
			break
		}
	}
	h.Remaining = n
	if h.FrameSize() > MaxFrameSize {
		return FixedHeader{}, ErrFrameTooLarge
	}
	return h, nil
}

// Frame is an LBS frame (binding 2.2). App holds the application payload
// as on the wire (sealed); Seal and Open convert it from and to TLVs.
type Frame struct {
	Type     MsgType
	Flags    uint8    // FlagECDH in every frame of this binding
	Protocol uint8    // ProtocolType
	Group    SuiteSet // offered suites in 0x1, the chosen one after
	Seq      uint16
	Version  [3]byte // ProtocolVersion
	General  TLVs    // general payload after PROTOCOL-VERSION, in clear
	App      []byte  // application payload, sealed; empty in error responses
}

// NewFrame returns a frame of type t with this binding's flags, protocol
// type and version.
func NewFrame(t MsgType, group SuiteSet, seq uint16, general ...TLV) *Frame {
	return &Frame{Type: t, Flags: FlagECDH, Protocol: ProtocolType, Group: group, Seq: seq, Version: ProtocolVersion, General: general}
}

func (f *Frame) byte0() byte { return byte(f.Type)<<4 | f.Flags&0x0f }

// appendGeneral appends PROTOCOL-VERSION and the general TLVs.
func (f *Frame) appendGeneral(dst []byte) ([]byte, error) {
	dst = append(dst, f.Version[:]...)
	return AppendTLVs(dst, f.General)
}

// AAD returns the additional data that seals the application payload:
// byte 0, the variable header and the general payload (not the remaining
// length and not LEN). It fails when a TLV value of the general payload
// is over 65535 bytes.
func (f *Frame) AAD() ([]byte, error) {
	aad := make([]byte, 0, 1+varHeaderSize+versionSize+f.General.EncodedLen())
	aad = append(aad, f.byte0(), f.Protocol, byte(f.Group))
	aad = binary.BigEndian.AppendUint16(aad, f.Seq)
	return f.appendGeneral(aad)
}

// Encode returns the frame's bytes. It fails when a TLV value or the
// general payload is over 65535 bytes or the frame over MaxFrameSize.
func (f *Frame) Encode() ([]byte, error) {
	gl := versionSize + f.General.EncodedLen()
	if gl > 0xffff {
		return nil, fmt.Errorf("encode %v: general payload of %d bytes, over 65535", f.Type, gl)
	}
	rem := varHeaderSize + lenSize + gl + len(f.App)
	if 1+len(AppendRemainingLength(nil, rem))+rem > MaxFrameSize {
		return nil, fmt.Errorf("encode %v: %w", f.Type, ErrFrameTooLarge)
	}
	out := make([]byte, 0, 1+maxRemLenBytes+rem)
	out = append(out, f.byte0())
	out = AppendRemainingLength(out, rem)
	out = append(out, f.Protocol, byte(f.Group))
	out = binary.BigEndian.AppendUint16(out, f.Seq)
	out = binary.BigEndian.AppendUint16(out, uint16(gl))
	out, err := f.appendGeneral(out)
	if err != nil {
		return nil, fmt.Errorf("encode %v: %w", f.Type, err)
	}
	return append(out, f.App...), nil
}

// Seal encodes app and seals it into f.App with c, the frame's AAD and
// nonces or IVs read from rand. Set every other field first. It fails
// when a TLV value is over 65535 bytes or rand fails.
func (f *Frame) Seal(c *Cipher, rand io.Reader, app TLVs) error {
	aad, err := f.AAD()
	if err != nil {
		return fmt.Errorf("seal %v: %w", f.Type, err)
	}
	pt, err := AppendTLVs(make([]byte, 0, app.EncodedLen()), app)
	if err != nil {
		return fmt.Errorf("seal %v: %w", f.Type, err)
	}
	if f.App, err = c.Seal(nil, rand, aad, pt); err != nil {
		return fmt.Errorf("seal %v: %w", f.Type, err)
	}
	return nil
}

// Open opens f.App with c and decodes its TLVs. A payload that does not
// open is ErrDecrypt; one that opens but does not parse, ErrMalformed.
func (f *Frame) Open(c *Cipher) (TLVs, error) {
	aad, err := f.AAD()
	if err != nil {
		return nil, fmt.Errorf("open %v: %w", f.Type, err)
	}
	pt, err := c.Open(nil, aad, f.App)
	if err != nil {
		return nil, fmt.Errorf("open %v: %w", f.Type, err)
	}
	ts, err := DecodeTLVs(pt)
	if err != nil {
		return nil, fmt.Errorf("open %v: application payload: %w", f.Type, err)
	}
	return ts, nil
}

// DecodeFrame parses one whole frame. TLV values and App alias b. A frame
// that is cut short, longer than its header says, or whose payload does not
// parse is ErrMalformed. A well-formed frame that is not of this binding
// (ECDH flag clear, FORM_VERSION not 1, protocol type not 1) is returned
// with ErrUnsupported, so that the answer can name its sequence.
func DecodeFrame(b []byte) (*Frame, error) {
	h, err := DecodeFixedHeader(b)
	if err != nil {
		return nil, err
	}
	if len(b) != h.FrameSize() {
		return nil, fmt.Errorf("%w: frame of %d bytes, header says %d", ErrMalformed, len(b), h.FrameSize())
	}
	if h.Remaining < minRemainingLen {
		return nil, fmt.Errorf("%w: remaining length %d, under %d", ErrMalformed, h.Remaining, minRemainingLen)
	}
	p := b[h.Size:]
	f := &Frame{Type: h.Type, Flags: h.Flags, Protocol: p[0], Group: SuiteSet(p[1]), Seq: binary.BigEndian.Uint16(p[2:])}
	p = p[varHeaderSize:]
	gl := int(binary.BigEndian.Uint16(p))
	p = p[lenSize:]
	if gl < versionSize || gl > len(p) {
		return nil, fmt.Errorf("%w: %v: general payload LEN %d, %d bytes left", ErrMalformed, f.Type, gl, len(p))
	}
	copy(f.Version[:], p)
	if f.General, err = DecodeTLVs(p[versionSize:gl]); err != nil {
		return nil, fmt.Errorf("%v: general payload: %w", f.Type, err)
	}
	if app := p[gl:]; len(app) > 0 {
		f.App = app
	}
	switch {
	case f.Flags&FlagECDH == 0:
		return f, fmt.Errorf("%w: %v: control flags %#x, ECDH bit clear", ErrUnsupported, f.Type, f.Flags)
	case f.Version[0] != ProtocolVersion[0]:
		return f, fmt.Errorf("%w: %v: FORM_VERSION %d", ErrUnsupported, f.Type, f.Version[0])
	case f.Protocol != ProtocolType:
		return f, fmt.Errorf("%w: %v: protocol type %d", ErrUnsupported, f.Type, f.Protocol)
	}
	return f, nil
}

// ReadFrame reads one frame from r and returns its bytes. It checks the
// size the fixed header announces against MaxFrameSize before allocating
// (ErrFrameTooLarge, with nothing more read). It returns io.EOF when r ends
// before the first byte, and an ErrMalformed wrapping io.ErrUnexpectedEOF
// when it ends inside the frame.
func ReadFrame(r *bufio.Reader) ([]byte, error) {
	var hdr [1 + maxRemLenBytes]byte
	n := 0
	for {
		c, err := r.ReadByte()
		if err != nil {
			if n > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			if n > 0 || !errors.Is(err, io.EOF) {
				return nil, wrapRead(err)
			}
			return nil, err
		}
		hdr[n] = c
		n++
		if n >= 2 && c&0x80 == 0 || n == len(hdr) {
			break
		}
	}
	h, err := DecodeFixedHeader(hdr[:n])
	if err != nil {
		return nil, err
	}
	if h.Remaining < minRemainingLen {
		return nil, fmt.Errorf("%w: remaining length %d, under %d", ErrMalformed, h.Remaining, minRemainingLen)
	}
	out := make([]byte, h.FrameSize())
	copy(out, hdr[:n])
	if _, err := io.ReadFull(r, out[n:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, wrapRead(err)
	}
	return out, nil
}

func wrapRead(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: frame truncated: %w", ErrMalformed, err)
	}
	return fmt.Errorf("read LBS frame: %w", err)
}
