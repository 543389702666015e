package osap

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
)

// DefaultShareKeyDomain is the constant string mixed into the share key, as
// the draft gives it.
const DefaultShareKeyDomain = "www.88075998.com"

// KeySize is the size in bytes of every AES key of the binding (share key,
// master key, session key).
const KeySize = 16

// NonceSize is the size of the nonces exchanged in LBS messages.
const NonceSize = 16

// PublicKeySize is the size of an uncompressed P-384 point.
const PublicKeySize = 97

const shareKeyIterations = 10000

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// ShareKey derives the share key from the device's verification code and
// serial (binding 2.1): PBKDF2-HMAC-SHA256(md5hex(md5hex(md5hex(code‖serial)
// ‖domain)), serial, 10000, 16). An empty domain means DefaultShareKeyDomain.
func ShareKey(verificationCode, serial, domain string) []byte {
	if domain == "" {
		domain = DefaultShareKeyDomain
	}
	h1 := md5hex(verificationCode + serial)
	h2 := md5hex(h1 + domain)
	h3 := md5hex(h2)
	k, err := pbkdf2.Key(sha256.New, h3, []byte(serial), shareKeyIterations, KeySize)
	if err != nil {
		// Only FIPS-only mode refuses these parameters; nothing to recover.
		panic(fmt.Sprintf("osap: pbkdf2: %v", err))
	}
	return k
}

// GenerateKey returns a fresh P-384 key pair read from rand. It fails only
// when rand fails.
func GenerateKey(rand io.Reader) (*ecdh.PrivateKey, error) {
	k, err := ecdh.P384().GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("generate P-384 key: %w", err)
	}
	return k, nil
}

// ParsePublicKey parses an uncompressed P-384 point (97 bytes). It returns
// an error for bytes that are not a point of the curve.
func ParsePublicKey(b []byte) (*ecdh.PublicKey, error) {
	k, err := ecdh.P384().NewPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("parse P-384 public key: %w", err)
	}
	return k, nil
}

// MasterKey derives the master key from our private key and the peer's
// public key: HKDF-SHA256(ECDH x-coordinate, nonceDev‖nonceLBS,
// "osap master key", 16). Both sides pass the nonces in the same order.
// It fails when the key exchange does (the peer's key is the point at
// infinity).
func MasterKey(priv *ecdh.PrivateKey, peer *ecdh.PublicKey, nonceDev, nonceLBS []byte) ([]byte, error) {
	secret, err := priv.ECDH(peer)
	if err != nil {
		return nil, fmt.Errorf("ecdh: %w", err)
	}
	salt := make([]byte, 0, len(nonceDev)+len(nonceLBS))
	salt = append(append(salt, nonceDev...), nonceLBS...)
	k, err := hkdf.Key(sha256.New, secret, salt, "osap master key", KeySize)
	if err != nil {
		return nil, fmt.Errorf("hkdf: %w", err)
	}
	return k, nil
}
