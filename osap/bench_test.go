package osap

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"testing"
)

func BenchmarkSeal(b *testing.B) {
	for _, s := range fuzzSuites {
		for _, n := range []int{256, 4096} {
			b.Run(fmt.Sprintf("%v/%d", s, n), func(b *testing.B) {
				c := mustCipher(b, s, bytes.Repeat([]byte{7}, KeySize))
				pt, aad := make([]byte, n), []byte("osap/v1/d1c3a5e7f9b2d4f6/up/event")
				dst := make([]byte, 0, n+c.Overhead())
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := c.Seal(dst[:0], rand.Reader, aad, pt); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, s := range fuzzSuites {
		for _, n := range []int{256, 4096} {
			b.Run(fmt.Sprintf("%v/%d", s, n), func(b *testing.B) {
				c := mustCipher(b, s, bytes.Repeat([]byte{7}, KeySize))
				aad := []byte("osap/v1/d1c3a5e7f9b2d4f6/up/event")
				sealed, err := c.Seal(nil, rand.Reader, aad, make([]byte, n))
				if err != nil {
					b.Fatal(err)
				}
				dst := make([]byte, 0, len(sealed))
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := c.Open(dst[:0], aad, sealed); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkDecodeFrameHeader(b *testing.B) {
	frame := mustHex(b, "11b101010c000100ab01000601000b4757323032364130303031")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeFixedHeader(frame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeFrame(b *testing.B) {
	_, _, _, master, _ := goldenKeys(b)
	frame, err := ApplyRsp{DevID: goldenDevID, SessionKey: master, Nonce: master}.Encode(2, mustCipher(b, SuiteAESGCM, master), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeFrame(frame); err != nil {
			b.Fatal(err)
		}
	}
}
