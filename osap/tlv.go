package osap

import (
	"encoding/binary"
	"fmt"
)

// Tag identifies a TLV of an LBS frame (binding 2.2).
type Tag uint8

// The tags of the binding.
const (
	TagSerial     Tag = 0x01 // device serial (UTF-8)
	TagPublicKey  Tag = 0x02 // uncompressed P-384 point, 97 bytes
	TagNonce      Tag = 0x03 // 16 bytes
	TagDevID      Tag = 0x04 // DevID (UTF-8)
	TagSessionKey Tag = 0x05 // 16 bytes
	TagLifetime   Tag = 0x06 // 4 bytes, seconds, big endian
	TagStatus     Tag = 0x07 // 1 byte
	TagMessage    Tag = 0x08 // UTF-8
	TagDASAddress Tag = 0x09 // URL: mqtts://host:port or mqtt://host:port
	TagMAC        Tag = 0x0A // 32 bytes
	TagDeviceInfo Tag = 0x0B // JSON: model, firmware, kind
	TagRetryAfter Tag = 0x0C // 2 bytes, seconds, big endian
	TagPictureURL Tag = 0x0D // URL of the picture service (binding 2.7), optional in 0xB
)

// String returns the tag's name ("session key"), or "tag(0x…)" for an
// unknown tag.
func (t Tag) String() string {
	switch t {
	case TagSerial:
		return "serial"
	case TagPublicKey:
		return "public key"
	case TagNonce:
		return "nonce"
	case TagDevID:
		return "DevID"
	case TagSessionKey:
		return "session key"
	case TagLifetime:
		return "lifetime"
	case TagStatus:
		return "status"
	case TagMessage:
		return "message"
	case TagDASAddress:
		return "DAS address"
	case TagMAC:
		return "MAC"
	case TagDeviceInfo:
		return "device info"
	case TagRetryAfter:
		return "retry after"
	case TagPictureURL:
		return "picture service URL"
	}
	return fmt.Sprintf("tag(%#02x)", uint8(t))
}

// TLV is one tag-length-value item: tag (1 byte) | length (2 bytes, big
// endian) | value.
type TLV struct {
	Tag   Tag
	Value []byte
}

// TLVs is a sequence of TLV items in wire order.
type TLVs []TLV

// Get returns the value of the first item with tag t.
func (ts TLVs) Get(t Tag) ([]byte, bool) {
	for _, tv := range ts {
		if tv.Tag == t {
			return tv.Value, true
		}
	}
	return nil, false
}

// tlvHeaderSize is the size of a TLV's tag and length.
const tlvHeaderSize = 3

// EncodedLen returns the size of ts on the wire.
func (ts TLVs) EncodedLen() int {
	n := 0
	for _, tv := range ts {
		n += tlvHeaderSize + len(tv.Value)
	}
	return n
}

// AppendTLVs appends the encoding of ts to dst. It fails when a value is
// longer than 65535 bytes.
func AppendTLVs(dst []byte, ts TLVs) ([]byte, error) {
	for _, tv := range ts {
		if len(tv.Value) > 0xffff {
			return nil, fmt.Errorf("encode %v: value of %d bytes, over 65535", tv.Tag, len(tv.Value))
		}
		dst = append(dst, byte(tv.Tag))
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(tv.Value)))
		dst = append(dst, tv.Value...)
	}
	return dst, nil
}

// DecodeTLVs parses a sequence of TLV items that fills b exactly. Values
// alias b. Unknown tags are kept (callers skip them); a truncated item is
// ErrMalformed.
func DecodeTLVs(b []byte) (TLVs, error) {
	// Count first so that the result is allocated once, at its exact size.
	n := 0
	for off := 0; off < len(b); n++ {
		if len(b)-off < tlvHeaderSize {
			return nil, fmt.Errorf("%w: TLV header truncated at offset %d", ErrMalformed, off)
		}
		l := int(binary.BigEndian.Uint16(b[off+1:]))
		if len(b)-off-tlvHeaderSize < l {
			return nil, fmt.Errorf("%w: %v at offset %d has length %d, only %d bytes left", ErrMalformed, Tag(b[off]), off, l, len(b)-off-tlvHeaderSize)
		}
		off += tlvHeaderSize + l
	}
	if n == 0 {
		return nil, nil
	}
	ts := make(TLVs, 0, n)
	for off := 0; off < len(b); {
		l := int(binary.BigEndian.Uint16(b[off+1:]))
		ts = append(ts, TLV{Tag: Tag(b[off]), Value: b[off+tlvHeaderSize : off+tlvHeaderSize+l : off+tlvHeaderSize+l]})
		off += tlvHeaderSize + l
	}
	return ts, nil
}

// tlvValueOffset returns the offset in b (a TLV sequence) of the value of
// the first item with tag t, or -1.
func tlvValueOffset(b []byte, t Tag) int {
	for off := 0; off+tlvHeaderSize <= len(b); {
		l := int(binary.BigEndian.Uint16(b[off+1:]))
		if Tag(b[off]) == t {
			if off+tlvHeaderSize+l > len(b) {
				return -1
			}
			return off + tlvHeaderSize
		}
		off += tlvHeaderSize + l
	}
	return -1
}
