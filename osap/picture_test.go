package osap

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
	"time"
)

// TestPictureTokenCheckValue reproduces the picture-token check value of
// design 2.6.
func TestPictureTokenCheckValue(t *testing.T) {
	const (
		wantToken = "oKGio6SlpqeoqaqrxfVZy1P5Wmn+DcdlRhKwYDrI6fiTBi+8MQVnjFqUlbOGvlsuB1cJvl7QzcX8qhLmP+BT20xtEsmerbAAkNHfv3STwunLHxb/UnP+hzPA7BWHXAbl"
		wantID    = "08bde5d3210e2f0153711b3683b41f92"
		devID     = "d487060bbc2fe796"
	)
	c, err := NewCipher(SuiteAESGCM, mustHex(t, "000102030405060708090a0b0c0d0e0f"))
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("osapgw picture check")
	sum := sha256.Sum256(body)
	if got := PictureID(sum); got != wantID {
		t.Errorf("PictureID = %s, want %s", got, wantID)
	}
	rnd := bytes.NewReader(append(mustHex(t, "101112131415161718191a1b1c1d1e1f"), mustHex(t, "a0a1a2a3a4a5a6a7a8a9aaab")...))
	now := time.Unix(1764150000, 0)
	tok, err := c.PictureToken(rnd, devID, now, sum)
	if err != nil {
		t.Fatal(err)
	}
	if tok != wantToken {
		t.Fatalf("PictureToken =\n%s\nwant\n%s", tok, wantToken)
	}
	pc, err := c.OpenPictureToken(devID, wantToken)
	if err != nil {
		t.Fatal(err)
	}
	if !pc.Time.Equal(now) || pc.BodySum != sum || hex.EncodeToString(pc.Nonce[:]) != "101112131415161718191a1b1c1d1e1f" {
		t.Fatalf("OpenPictureToken = %+v", pc)
	}
}

func TestOpenPictureTokenRefuses(t *testing.T) {
	c, err := NewCipher(SuiteAESCBCHMAC, bytes.Repeat([]byte{2}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("x"))
	tok, err := c.PictureToken(rand.Reader, "D1", time.Now(), sum)
	if err != nil {
		t.Fatal(err)
	}
	login, err := c.LoginPassword(rand.Reader, "D1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewCipher(SuiteAESCBCHMAC, bytes.Repeat([]byte{3}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		c     *Cipher
		dev   string
		token string
		want  error
	}{
		{"other DevID", c, "D2", tok, ErrDecrypt},
		{"other key", other, "D1", tok, ErrDecrypt},
		{"not base64", c, "D1", "!!!", ErrMalformed},
		{"login password", c, "D1", login, ErrMalformed},
		{"too long", c, "D1", string(bytes.Repeat([]byte{'A'}, 600)), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.c.OpenPictureToken(tt.dev, tt.token); !errors.Is(err, tt.want) {
				t.Fatalf("OpenPictureToken = %v, want %v", err, tt.want)
			}
		})
	}
}
