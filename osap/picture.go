package osap

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"time"
)

// The picture service of binding 2.7.
const (
	// PictureMaxSize is the largest picture the service accepts (8 MiB;
	// exactly 8 MiB is accepted).
	PictureMaxSize = 8 << 20
	// PictureTokenMaxAge bounds how far a token's time may be from the
	// platform's clock, either way.
	PictureTokenMaxAge = 300 * time.Second
	// PictureContentType is the only content type an upload may carry.
	PictureContentType = "image/jpeg"
	// PictureDevHeader names the sub-device a picture belongs to (an
	// empty value means the gateway itself).
	PictureDevHeader = "X-OSAP-Dev"
	// PictureAuthScheme is the scheme of the upload's Authorization
	// header: "OSAP <token>".
	PictureAuthScheme = "OSAP"
)

const picturePrefix = "osap-picture"

// PictureID is the id the picture service gives a picture: the first 16
// bytes of the SHA-256 of its bytes, in lowercase hex. The same image
// always gets the same id, so uploads are idempotent.
func PictureID(sum [sha256.Size]byte) string { return hex.EncodeToString(sum[:16]) }

// PicturePath is the upload path of a gateway under the service's base
// URL: /v1/{DevID}/pictures.
func PicturePath(devID string) string { return "/v1/" + devID + "/pictures" }

// PictureToken builds the token of an upload's "Authorization: OSAP
// <token>" header: base64 (standard, padded) of seal("osap-picture" ‖
// unix seconds (8 bytes BE) ‖ nonce (16) ‖ SHA-256 of the body (32)) with
// the DevID as AAD. rand gives the 16-byte nonce first, then the suite's
// IV or GCM nonce. It fails only when rand fails.
func (c *Cipher) PictureToken(rand io.Reader, devID string, now time.Time, bodySum [sha256.Size]byte) (string, error) {
	pt := make([]byte, 0, len(picturePrefix)+8+NonceSize+sha256.Size)
	pt = append(pt, picturePrefix...)
	pt = binary.BigEndian.AppendUint64(pt, uint64(now.Unix()))
	var nonce [NonceSize]byte
	if _, err := io.ReadFull(rand, nonce[:]); err != nil {
		return "", fmt.Errorf("read picture token nonce: %w", err)
	}
	pt = append(pt, nonce[:]...)
	pt = append(pt, bodySum[:]...)
	sealed, err := c.Seal(nil, rand, []byte(devID), pt)
	if err != nil {
		return "", fmt.Errorf("seal picture token: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sealed), nil
}

// PictureClaim is what an opened picture token says.
type PictureClaim struct {
	Time    time.Time
	Nonce   [NonceSize]byte
	BodySum [sha256.Size]byte
}

// OpenPictureToken opens a picture token. Checking its age, the nonce and
// the body's hash is the caller's. A token that is not base64 of a sealed
// picture claim of the right form is ErrMalformed; one that does not open
// with c, ErrDecrypt.
func (c *Cipher) OpenPictureToken(devID, token string) (PictureClaim, error) {
	var pc PictureClaim
	if len(token) > 512 {
		return pc, fmt.Errorf("%w: picture token of %d bytes", ErrMalformed, len(token))
	}
	raw, err := base64.StdEncoding.DecodeString(token)
	if err != nil {
		return pc, fmt.Errorf("%w: picture token is not base64", ErrMalformed)
	}
	pt, err := c.Open(nil, []byte(devID), raw)
	if err != nil {
		return pc, fmt.Errorf("picture token: %w", err)
	}
	n := len(picturePrefix)
	if len(pt) != n+8+NonceSize+sha256.Size || string(pt[:n]) != picturePrefix {
		return pc, fmt.Errorf("%w: picture token has the wrong form", ErrMalformed)
	}
	pc.Time = time.Unix(int64(binary.BigEndian.Uint64(pt[n:])), 0)
	copy(pc.Nonce[:], pt[n+8:])
	copy(pc.BodySum[:], pt[n+8+NonceSize:])
	return pc, nil
}
