package osap

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestRemainingLengthCheckValues(t *testing.T) {
	tests := []struct {
		n    int
		want string
	}{
		{0, "00"}, {127, "7f"}, {128, "8001"}, {16383, "ff7f"}, {16384, "808001"},
		{2097151, "ffff7f"}, {2097152, "80808001"}, {268435455, "ffffff7f"},
	}
	for _, tt := range tests {
		got := hex.EncodeToString(AppendRemainingLength(nil, tt.n))
		if got != tt.want {
			t.Errorf("AppendRemainingLength(%d) = %s, want %s", tt.n, got, tt.want)
		}
		if tt.n+1+len(tt.want)/2 > MaxFrameSize {
			continue
		}
		h, err := DecodeFixedHeader(append([]byte{0x11}, mustHex(t, tt.want)...))
		if err != nil || h.Remaining != tt.n || h.Size != 1+len(tt.want)/2 || h.Type != MsgAuthReq || h.Flags != FlagECDH {
			t.Errorf("DecodeFixedHeader(11%s) = %+v, %v, want remaining %d", tt.want, h, err, tt.n)
		}
	}
}

func TestDecodeFixedHeaderErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{name: "empty", in: "", want: ErrShortHeader},
		{name: "one byte", in: "11", want: ErrShortHeader},
		{name: "continuation without end", in: "1180", want: ErrShortHeader},
		{name: "five length bytes", in: "118080808001", want: ErrMalformed},
		{name: "padded length", in: "118000", want: ErrMalformed},
		{name: "over 64 KiB", in: "11fdff03", want: ErrFrameTooLarge},
		{name: "huge", in: "11ffffff7f", want: ErrFrameTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeFixedHeader(mustHex(t, tt.in))
			if !errors.Is(err, tt.want) {
				t.Errorf("DecodeFixedHeader(%s) = %v, want %v", tt.in, err, tt.want)
			}
		})
	}
	// The largest frame allowed: 1 + 3 + 65532 bytes.
	if _, err := DecodeFixedHeader([]byte{0x11, 0xfd, 0xff, 0x03}); err == nil {
		t.Errorf("frame of 65537 bytes accepted")
	}
	if h, err := DecodeFixedHeader(append([]byte{0x11}, AppendRemainingLength(nil, MaxFrameSize-4)...)); err != nil || h.FrameSize() != MaxFrameSize {
		t.Errorf("frame of exactly MaxFrameSize: %+v, %v", h, err)
	}
}

func TestDecodeFixedHeaderAllocs(t *testing.T) {
	b := mustHex(t, "11b101010c0001")
	if n := testing.AllocsPerRun(100, func() { _, _ = DecodeFixedHeader(b) }); n != 0 {
		t.Errorf("DecodeFixedHeader allocates %v times, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = DecodeFixedHeader(b[:1]) }); n != 0 {
		t.Errorf("DecodeFixedHeader of a short header allocates %v times, want 0", n)
	}
}

func validFrame(t testing.TB) []byte {
	t.Helper()
	b, err := NewFrame(MsgAccessReq, SuiteSet(SuiteAESGCM), 4, tlvString(TagDevID, "D1")).Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeFrameErrors(t *testing.T) {
	good := validFrame(t)
	set := func(i int, v byte) []byte { b := bytes.Clone(good); b[i] = v; return b }
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{name: "truncated", in: good[:len(good)-1], want: ErrMalformed},
		{name: "trailing byte", in: append(bytes.Clone(good), 0), want: ErrMalformed},
		{name: "ECDH flag clear", in: set(0, byte(MsgAccessReq)<<4), want: ErrUnsupported},
		{name: "FORM_VERSION 2", in: set(8, 2), want: ErrUnsupported},
		{name: "protocol type 2", in: set(2, 2), want: ErrUnsupported},
		{name: "LEN past the end", in: set(7, 0xff), want: ErrMalformed},
		{name: "LEN under the version", in: set(7, 2), want: ErrMalformed},
		{name: "TLV past the general payload", in: set(12, 0x40), want: ErrMalformed},
		{name: "too short", in: mustHex(t, "a1020108"), want: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeFrame(tt.in)
			if !errors.Is(err, tt.want) {
				t.Errorf("DecodeFrame(%x) = %v, want %v", tt.in, err, tt.want)
			}
		})
	}
	f, err := DecodeFrame(set(0, byte(MsgAccessReq)<<4))
	if f == nil || f.Seq != 4 || StatusOf(err) != StatusUnsupported {
		t.Errorf("DecodeFrame with the flag clear = %+v, %v (status %v), want the frame and status 1", f, err, StatusOf(err))
	}
}

func TestDecodeTLVs(t *testing.T) {
	ts, err := DecodeTLVs(mustHex(t, "0100024731"+"7f0000"+"040001ff"))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := ts.Get(TagSerial); !ok || string(v) != "G1" {
		t.Errorf("Get(serial) = %q, %v", v, ok)
	}
	if v, ok := ts.Get(TagDevID); !ok || !bytes.Equal(v, []byte{0xff}) {
		t.Errorf("Get(DevID) after an unknown tag = %x, %v", v, ok)
	}
	for _, in := range []string{"01", "0100", "010002ff"} {
		if _, err := DecodeTLVs(mustHex(t, in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeTLVs(%s) = %v, want ErrMalformed", in, err)
		}
	}
}

func TestRequiredTagMissingIsStatus6(t *testing.T) {
	b, err := NewFrame(MsgAccessReq, SuiteSet(SuiteAESGCM), 1).Encode()
	if err != nil {
		t.Fatal(err)
	}
	f, err := DecodeFrame(b)
	if err != nil {
		t.Fatal(err)
	}
	c := mustCipher(t, SuiteAESGCM, make([]byte, KeySize))
	if _, err := DecodeAccessReq(f, c); StatusOf(err) != StatusMalformed {
		t.Errorf("DecodeAccessReq without DevID = %v (status %v), want status 6", err, StatusOf(err))
	}
}

func TestEncodeRefusesOver64KiB(t *testing.T) {
	f := NewFrame(MsgAccessReq, SuiteSet(SuiteAESGCM), 1)
	f.App = make([]byte, MaxFrameSize)
	if _, err := f.Encode(); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("Encode of a 64 KiB application payload = %v, want ErrFrameTooLarge", err)
	}
}

func TestReadFrame(t *testing.T) {
	good := validFrame(t)
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{name: "empty", in: nil, want: io.EOF},
		{name: "truncated header", in: good[:1], want: io.ErrUnexpectedEOF},
		{name: "truncated body", in: good[:len(good)-2], want: io.ErrUnexpectedEOF},
		{name: "over 64 KiB", in: mustHex(t, "11ffff7f"), want: ErrFrameTooLarge},
		{name: "too short to hold the variable header", in: mustHex(t, "a10101"), want: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadFrame(bufio.NewReader(bytes.NewReader(tt.in)))
			if !errors.Is(err, tt.want) {
				t.Errorf("ReadFrame(%x) = %v, want %v", tt.in, err, tt.want)
			}
		})
	}
	r := bufio.NewReader(strings.NewReader(string(good) + string(good)))
	for i := range 2 {
		b, err := ReadFrame(r)
		if err != nil || !bytes.Equal(b, good) {
			t.Fatalf("ReadFrame #%d = %x, %v, want %x", i, b, err, good)
		}
	}
}

func TestAuthReqMAC(t *testing.T) {
	_, _, share, _, _ := goldenKeys(t)
	dev, _, _, _, _ := goldenKeys(t)
	b, err := AuthReq{Serial: "S1", PublicKey: dev.PublicKey().Bytes(), Nonce: make([]byte, NonceSize)}.Encode(1, DefaultSuites, share)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyAuthReqMAC(b, share); err != nil {
		t.Fatalf("VerifyAuthReqMAC = %v", err)
	}
	if err := VerifyAuthReqMAC(b, ShareKey("other", "S1", "")); StatusOf(err) != StatusAuthFailed {
		t.Errorf("VerifyAuthReqMAC with another code = %v, want status 2", err)
	}
	b[4] ^= 1 // the offered group is covered too
	if err := VerifyAuthReqMAC(b, share); StatusOf(err) != StatusAuthFailed {
		t.Errorf("VerifyAuthReqMAC after changing the group = %v, want status 2", err)
	}
}
