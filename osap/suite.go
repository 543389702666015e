package osap

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"math/bits"
	"strings"
)

// Suite is one cipher suite, identified by its bit in the protocol group
// (binding 2.3).
type Suite uint8

// The cipher suites, most secure first.
const (
	SuiteAESGCM     Suite = 8 // AES-128-GCM
	SuiteAESCBCHMAC Suite = 4 // AES-128-CBC + HMAC-SHA256, encrypt-then-MAC
	SuiteAESCBC     Suite = 2 // AES-128-CBC, legacy, no integrity
	SuiteAESECB     Suite = 1 // AES-128-ECB, legacy, no integrity
)

// SuiteSet is a protocol group: a bitmask of suites.
type SuiteSet uint8

// DefaultSuites is what the gateway offers unless legacy suites are allowed.
const DefaultSuites = SuiteSet(SuiteAESGCM | SuiteAESCBCHMAC)

// AllSuites is every suite of the binding.
const AllSuites = SuiteSet(SuiteAESGCM | SuiteAESCBCHMAC | SuiteAESCBC | SuiteAESECB)

// Legacy reports whether s has no integrity protection.
func (s Suite) Legacy() bool { return s == SuiteAESCBC || s == SuiteAESECB }

// Valid reports whether s is exactly one known suite.
func (s Suite) Valid() bool {
	return s == SuiteAESGCM || s == SuiteAESCBCHMAC || s == SuiteAESCBC || s == SuiteAESECB
}

// String returns the suite's name as ParseSuite accepts it
// ("aes-128-gcm"), or "suite(0x…)" for an unknown suite.
func (s Suite) String() string {
	switch s {
	case SuiteAESGCM:
		return "aes-128-gcm"
	case SuiteAESCBCHMAC:
		return "aes-128-cbc-hmac-sha256"
	case SuiteAESCBC:
		return "aes-128-cbc"
	case SuiteAESECB:
		return "aes-128-ecb"
	}
	return fmt.Sprintf("suite(%#x)", uint8(s))
}

// ParseSuite returns the suite named by String. Any other name is an
// error that lists the known ones.
func ParseSuite(name string) (Suite, error) {
	for _, s := range []Suite{SuiteAESGCM, SuiteAESCBCHMAC, SuiteAESCBC, SuiteAESECB} {
		if s.String() == name {
			return s, nil
		}
	}
	return 0, fmt.Errorf("unknown cipher suite %q (want aes-128-gcm, aes-128-cbc-hmac-sha256, aes-128-cbc or aes-128-ecb)", name)
}

// Has reports whether s is in the set.
func (ss SuiteSet) Has(s Suite) bool { return uint8(ss)&uint8(s) != 0 }

// Best returns the most secure suite of the set (its highest bit), and false
// when the set holds no known suite.
func (ss SuiteSet) Best() (Suite, bool) {
	m := uint8(ss & AllSuites)
	if m == 0 {
		return 0, false
	}
	return Suite(1 << (7 - bits.LeadingZeros8(m))), true
}

// String returns the set's bit mask and the names of its suites, best
// first ("0xc[aes-128-gcm,aes-128-cbc-hmac-sha256]").
func (ss SuiteSet) String() string {
	var names []string
	for _, s := range []Suite{SuiteAESGCM, SuiteAESCBCHMAC, SuiteAESCBC, SuiteAESECB} {
		if ss.Has(s) {
			names = append(names, s.String())
		}
	}
	return fmt.Sprintf("%#02x[%s]", uint8(ss), strings.Join(names, ","))
}

// Cipher seals and opens payloads with one suite and one key. It is safe for
// concurrent use.
type Cipher struct {
	suite  Suite
	block  cipher.Block // AES with the key (CBC, ECB) or the enc key (CBC+HMAC)
	aead   cipher.AEAD
	macKey []byte
}

// NewCipher prepares suite s with a 16-byte key. A key of another length
// is an error; a suite of no binding, ErrUnsupportedSuite.
func NewCipher(s Suite, key []byte) (*Cipher, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("%v: key is %d bytes, want %d", s, len(key), KeySize)
	}
	c := &Cipher{suite: s}
	var err error
	switch s {
	case SuiteAESGCM:
		var b cipher.Block
		if b, err = aes.NewCipher(key); err == nil {
			c.aead, err = cipher.NewGCM(b)
		}
	case SuiteAESCBCHMAC:
		var enc []byte
		if enc, err = hkdf.Key(sha256.New, key, nil, "osap enc", 16); err != nil {
			break
		}
		if c.macKey, err = hkdf.Key(sha256.New, key, nil, "osap mac", 32); err != nil {
			break
		}
		c.block, err = aes.NewCipher(enc)
	case SuiteAESCBC, SuiteAESECB:
		c.block, err = aes.NewCipher(key)
	default:
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedSuite, s)
	}
	if err != nil {
		return nil, fmt.Errorf("%v: %w", s, err)
	}
	return c, nil
}

// Suite returns the cipher's suite.
func (c *Cipher) Suite() Suite { return c.suite }

// Overhead returns how many bytes sealing adds at most to a plaintext.
func (c *Cipher) Overhead() int {
	switch c.suite {
	case SuiteAESGCM:
		return 12 + 16
	case SuiteAESCBCHMAC:
		return 16 + 16 + 32
	case SuiteAESCBC:
		return 16 + 16
	}
	return 16
}

// Seal encrypts plaintext, authenticating aad where the suite can, with
// nonces and IVs read from rand. The result is appended to dst. It fails
// only when rand fails.
func (c *Cipher) Seal(dst []byte, rand io.Reader, aad, plaintext []byte) ([]byte, error) {
	switch c.suite {
	case SuiteAESGCM:
		var nonce [12]byte
		if _, err := io.ReadFull(rand, nonce[:]); err != nil {
			return nil, fmt.Errorf("read nonce: %w", err)
		}
		dst = append(dst, nonce[:]...)
		return c.aead.Seal(dst, nonce[:], plaintext, aad), nil
	case SuiteAESCBCHMAC, SuiteAESCBC:
		start := len(dst)
		var iv [16]byte
		if _, err := io.ReadFull(rand, iv[:]); err != nil {
			return nil, fmt.Errorf("read iv: %w", err)
		}
		dst = append(dst, iv[:]...)
		dst = c.cbcEncrypt(dst, iv[:], plaintext)
		if c.suite == SuiteAESCBCHMAC {
			dst = c.mac(dst, aad, dst[start:])
		}
		return dst, nil
	case SuiteAESECB:
		return c.ecbEncrypt(dst, plaintext), nil
	}
	return nil, fmt.Errorf("%w: %v", ErrUnsupportedSuite, c.suite)
}

// Open decrypts and verifies sealed, appending the plaintext to dst. Every
// failure (short input, bad tag, bad MAC, bad padding) is ErrDecrypt, so
// that nothing is learnt from which check failed.
func (c *Cipher) Open(dst []byte, aad, sealed []byte) ([]byte, error) {
	switch c.suite {
	case SuiteAESGCM:
		if len(sealed) < 12+16 {
			return nil, ErrDecrypt
		}
		out, err := c.aead.Open(dst, sealed[:12], sealed[12:], aad)
		if err != nil {
			return nil, ErrDecrypt
		}
		return out, nil
	case SuiteAESCBCHMAC:
		if len(sealed) < 16+16+32 || (len(sealed)-32)%16 != 0 {
			return nil, ErrDecrypt
		}
		body, tag := sealed[:len(sealed)-32], sealed[len(sealed)-32:]
		var buf [32]byte
		if subtle.ConstantTimeCompare(c.mac(buf[:0], aad, body), tag) != 1 {
			return nil, ErrDecrypt
		}
		return c.cbcDecrypt(dst, body[:16], body[16:])
	case SuiteAESCBC:
		if len(sealed) < 32 || len(sealed)%16 != 0 {
			return nil, ErrDecrypt
		}
		return c.cbcDecrypt(dst, sealed[:16], sealed[16:])
	case SuiteAESECB:
		if len(sealed) < 16 || len(sealed)%16 != 0 {
			return nil, ErrDecrypt
		}
		return c.ecbDecrypt(dst, sealed)
	}
	return nil, fmt.Errorf("%w: %v", ErrUnsupportedSuite, c.suite)
}

func (c *Cipher) mac(dst, aad, ivAndCiphertext []byte) []byte {
	h := hmac.New(sha256.New, c.macKey)
	h.Write(aad)
	h.Write(ivAndCiphertext)
	return h.Sum(dst)
}

// pad appends plaintext with PKCS#7 padding to dst and returns the padded
// region's start.
func pad(dst, plaintext []byte) ([]byte, int) {
	start := len(dst)
	n := 16 - len(plaintext)%16
	dst = append(dst, plaintext...)
	for range n {
		dst = append(dst, byte(n))
	}
	return dst, start
}

func unpad(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, ErrDecrypt
	}
	n := int(b[len(b)-1])
	if n == 0 || n > 16 || n > len(b) {
		return nil, ErrDecrypt
	}
	for _, x := range b[len(b)-n:] {
		if int(x) != n {
			return nil, ErrDecrypt
		}
	}
	return b[:len(b)-n], nil
}

func (c *Cipher) cbcEncrypt(dst, iv, plaintext []byte) []byte {
	dst, start := pad(dst, plaintext)
	cipher.NewCBCEncrypter(c.block, iv).CryptBlocks(dst[start:], dst[start:])
	return dst
}

func (c *Cipher) cbcDecrypt(dst, iv, ciphertext []byte) ([]byte, error) {
	start := len(dst)
	dst = append(dst, ciphertext...)
	cipher.NewCBCDecrypter(c.block, iv).CryptBlocks(dst[start:], dst[start:])
	pt, err := unpad(dst[start:])
	if err != nil {
		return nil, err
	}
	return dst[:start+len(pt)], nil
}

func (c *Cipher) ecbEncrypt(dst, plaintext []byte) []byte {
	dst, start := pad(dst, plaintext)
	for i := start; i < len(dst); i += 16 {
		c.block.Encrypt(dst[i:i+16], dst[i:i+16])
	}
	return dst
}

func (c *Cipher) ecbDecrypt(dst, ciphertext []byte) ([]byte, error) {
	start := len(dst)
	dst = append(dst, ciphertext...)
	for i := start; i < len(dst); i += 16 {
		c.block.Decrypt(dst[i:i+16], dst[i:i+16])
	}
	pt, err := unpad(dst[start:])
	if err != nil {
		return nil, err
	}
	return dst[:start+len(pt)], nil
}
