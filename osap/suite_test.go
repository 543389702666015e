package osap

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
	"time"
)

func TestSealOpenRoundTrip(t *testing.T) {
	key := bytes.Repeat([]byte{7}, KeySize)
	for _, s := range []Suite{SuiteAESGCM, SuiteAESCBCHMAC, SuiteAESCBC, SuiteAESECB} {
		for _, n := range []int{0, 1, 15, 16, 17, 256, 4096} {
			c, err := NewCipher(s, key)
			if err != nil {
				t.Fatal(err)
			}
			pt := bytes.Repeat([]byte{0xa5}, n)
			sealed, err := c.Seal(nil, rand.Reader, []byte("aad"), pt)
			if err != nil {
				t.Fatalf("%v: Seal(%d bytes): %v", s, n, err)
			}
			if len(sealed) > n+c.Overhead() {
				t.Errorf("%v: sealed %d bytes into %d, over the overhead %d", s, n, len(sealed), c.Overhead())
			}
			got, err := c.Open(nil, []byte("aad"), sealed)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("%v: Open(Seal(%d bytes)) = %x, %v", s, n, got, err)
			}
			if s.Legacy() {
				continue
			}
			if _, err := c.Open(nil, []byte("other"), sealed); !errors.Is(err, ErrDecrypt) {
				t.Errorf("%v: Open with another AAD = %v, want ErrDecrypt", s, err)
			}
			sealed[len(sealed)/2] ^= 1
			if _, err := c.Open(nil, []byte("aad"), sealed); !errors.Is(err, ErrDecrypt) {
				t.Errorf("%v: Open of a flipped bit = %v, want ErrDecrypt", s, err)
			}
		}
	}
}

func TestSuiteSetBest(t *testing.T) {
	tests := []struct {
		set  SuiteSet
		want Suite
		ok   bool
	}{
		{DefaultSuites, SuiteAESGCM, true},
		{SuiteSet(SuiteAESCBC | SuiteAESECB), SuiteAESCBC, true},
		{SuiteSet(0x30), 0, false},
		{0, 0, false},
	}
	for _, tt := range tests {
		got, ok := tt.set.Best()
		if got != tt.want || ok != tt.ok {
			t.Errorf("%v.Best() = %v, %v, want %v, %v", tt.set, got, ok, tt.want, tt.ok)
		}
	}
}

func TestBusinessMessageRoundTrip(t *testing.T) {
	c, err := NewCipher(SuiteAESGCM, bytes.Repeat([]byte{1}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	topic := Topic("D1", DirUp, KindEvent)
	h := Header{ID: "42", TS: 1764150000000, Type: TypeEventReport, Dev: "cam1"}
	payload, err := c.SealMessage(rand.Reader, topic, h, map[string]any{"event": "motion"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.OpenMessage(topic, payload)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header != h || string(m.Body) != `{"event":"motion"}` {
		t.Fatalf("OpenMessage = %+v %s, want %+v", m.Header, m.Body, h)
	}
	if _, err := c.OpenMessage(Topic("D2", DirUp, KindEvent), payload); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("OpenMessage on another DevID's topic = %v, want ErrDecrypt", err)
	}
	dev, dir, kind, err := ParseTopic(topic)
	if err != nil || dev != "D1" || dir != DirUp || kind != KindEvent {
		t.Fatalf("ParseTopic(%q) = %q %q %q %v", topic, dev, dir, kind, err)
	}
}

func TestLoginPassword(t *testing.T) {
	c, err := NewCipher(SuiteAESCBCHMAC, bytes.Repeat([]byte{2}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1764150000, 0)
	pw, err := c.LoginPassword(rand.Reader, "D1", now)
	if err != nil {
		t.Fatal(err)
	}
	at, _, err := c.OpenLoginPassword("D1", pw)
	if err != nil || !at.Equal(now) {
		t.Fatalf("OpenLoginPassword = %v, %v, want %v", at, err, now)
	}
	if _, _, err := c.OpenLoginPassword("D2", pw); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("OpenLoginPassword for another DevID = %v, want ErrDecrypt", err)
	}
}
