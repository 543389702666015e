package osap

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"testing"
)

// goldenSeeds returns the frames and sealed business messages of the
// golden file, the fuzzers' seeds.
func goldenSeeds(f *testing.F) (frames, sealed [][]byte) {
	raw, err := os.ReadFile(goldenFile)
	if err != nil {
		f.Fatal(err)
	}
	var g goldenFileT
	if err := json.Unmarshal(raw, &g); err != nil {
		f.Fatal(err)
	}
	for _, e := range g.Frames {
		frames = append(frames, mustHex(f, e.Hex))
	}
	for _, e := range g.Sealed {
		sealed = append(sealed, mustHex(f, e.Hex))
	}
	return frames, sealed
}

func FuzzDecodeFrame(f *testing.F) {
	frames, _ := goldenSeeds(f)
	for _, b := range frames {
		f.Add(b)
	}
	f.Add([]byte{0x11, 0xff, 0xff, 0xff, 0x7f})
	f.Add([]byte{0x10, 0x09, 1, 8, 0, 1, 0, 3, 1, 0, 6})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := DecodeFrame(b)
		if fr == nil != (err != nil && !errors.Is(err, ErrUnsupported)) {
			t.Fatalf("DecodeFrame(%x) = %v, %v: a frame with an error other than ErrUnsupported", b, fr, err)
		}
		if fr != nil {
			// Decoding loses nothing: encoding gives the same bytes back.
			out, eerr := fr.Encode()
			if eerr != nil || !bytes.Equal(out, b) {
				t.Fatalf("Encode(DecodeFrame(%x)) = %x, %v", b, out, eerr)
			}
			if _, aerr := fr.AAD(); aerr != nil {
				t.Fatalf("AAD of a decoded frame: %v", aerr)
			}
			if fr.Type == MsgAuthReq {
				_ = VerifyAuthReqMAC(b, make([]byte, KeySize))
			}
			_ = ResponseError(fr)
			_, _ = DecodeAuthReq(fr)
		}
		// The reader agrees with the decoder on where the frame ends.
		rb, rerr := ReadFrame(bufio.NewReader(bytes.NewReader(b)))
		if err == nil && (rerr != nil || !bytes.Equal(rb, b)) {
			t.Fatalf("ReadFrame(%x) = %x, %v, but DecodeFrame accepts it", b, rb, rerr)
		}
		if len(rb) > MaxFrameSize {
			t.Fatalf("ReadFrame returned %d bytes", len(rb))
		}
	})
}

func FuzzDecodeTLV(f *testing.F) {
	frames, _ := goldenSeeds(f)
	for _, b := range frames {
		if fr, err := DecodeFrame(b); err == nil {
			g, _ := AppendTLVs(nil, fr.General)
			f.Add(g)
		}
	}
	f.Add([]byte{1, 0, 2, 'G', '1', 0x7f, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := DecodeTLVs(b)
		if err != nil {
			return
		}
		if len(ts) > len(b)/tlvHeaderSize {
			t.Fatalf("DecodeTLVs(%x): %d items from %d bytes", b, len(ts), len(b))
		}
		out, err := AppendTLVs(nil, ts)
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("AppendTLVs(DecodeTLVs(%x)) = %x, %v", b, out, err)
		}
		for _, tv := range ts {
			if off := tlvValueOffset(b, tv.Tag); off < 0 {
				t.Fatalf("tlvValueOffset(%x, %v) = %d", b, tv.Tag, off)
			}
		}
	})
}

var fuzzSuites = []Suite{SuiteAESGCM, SuiteAESCBCHMAC, SuiteAESCBC, SuiteAESECB}

func FuzzOpen(f *testing.F) {
	frames, sealed := goldenSeeds(f)
	for i, b := range sealed {
		f.Add(uint8(i), []byte("osap/v1/d1c3a5e7f9b2d4f6/up/attribute"), b)
	}
	for _, b := range frames {
		if fr, err := DecodeFrame(b); err == nil && len(fr.App) > 0 {
			aad, _ := fr.AAD()
			f.Add(uint8(0), aad, fr.App)
		}
	}
	key := mustHex(f, goldenSession)
	ciphers := make([]*Cipher, len(fuzzSuites))
	for i, s := range fuzzSuites {
		ciphers[i] = mustCipher(f, s, key)
	}
	f.Fuzz(func(t *testing.T, suite uint8, aad, sealed []byte) {
		c := ciphers[int(suite)%len(ciphers)]
		pt, err := c.Open(nil, aad, sealed)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("%v: Open = %v, want ErrDecrypt", c.Suite(), err)
			}
			return
		}
		if len(pt) > len(sealed) {
			t.Fatalf("%v: Open gave %d bytes from %d", c.Suite(), len(pt), len(sealed))
		}
		_, _ = c.OpenMessage(string(aad), sealed)
	})
}

func FuzzDecodeMessage(f *testing.F) {
	_, sealed := goldenSeeds(f)
	c := mustCipher(f, SuiteAESGCM, mustHex(f, goldenSession))
	topic, _, _ := goldenBusiness()
	if pt, err := c.Open(nil, []byte(topic), sealed[0]); err == nil {
		f.Add(pt)
	}
	for _, body := range []string{`{"devices":["cam1"]}`, `{"values":{"t":{"v":1}}}`, `{"resource":"ptz/1","operation":"goto","input":{"preset":"3"}}`, `[`, ``} {
		gen := []byte(`{"id":"1","ts":1,"type":"reply","dev":"","code":404,"msg":"no such"}`)
		b := binary.BigEndian.AppendUint16(nil, uint16(len(gen)))
		f.Add(append(append(b, gen...), body...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeMessage(%q) = %v, want ErrMalformed", b, err)
			}
			if ue := (*UnreadableError)(nil); errors.As(err, &ue) && ue.Header.ID == "" {
				t.Fatalf("DecodeMessage(%q) = %v, an UnreadableError without an id", b, err)
			}
			return
		}
		if m.Type == "" {
			t.Fatalf("DecodeMessage(%q) has no type", b)
		}
		var r ReplyBody
		_ = m.DecodeBody(&r)
		var d DeviceList
		_ = m.DecodeBody(&d)
		var a AttributeReport
		_ = m.DecodeBody(&a)
		// Whatever decodes encodes again and decodes to the same header.
		var body any
		if len(m.Body) > 0 {
			body = m.Body
		}
		out, err := EncodeMessage(m.Header, body)
		if err != nil {
			return // a header grown by escaping may not fit; that is the encoder's refusal
		}
		m2, err := DecodeMessage(out)
		if err != nil || m2.Header != m.Header {
			t.Fatalf("DecodeMessage(EncodeMessage(%+v)) = %+v, %v", m.Header, m2.Header, err)
		}
	})
}
