package upstream

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/osapgw/osapgw/internal/backoff"
	"github.com/osapgw/osapgw/osap"
)

// uploadTimeout bounds one upload attempt (connect, send, answer); a
// stalled attempt is abandoned and tried again.
const uploadTimeout = 2 * time.Minute

// PictureError is a picture upload the picture service refused for good
// (a 4xx answer, or an answer the session cannot accept). It matches
// ErrPictureRefused.
type PictureError struct {
	// Status is the HTTP status of the answer; 0 when the session refused
	// the picture itself (too large, empty) or the answer made no sense.
	Status int
	// Msg is the service's {"error"} text or what is wrong.
	Msg string
}

func (e *PictureError) Error() string {
	if e.Status == 0 {
		return "picture refused: " + e.Msg
	}
	return fmt.Sprintf("picture service answered %d: %s", e.Status, e.Msg)
}

// Is makes a PictureError match ErrPictureRefused.
func (e *PictureError) Is(target error) bool { return target == ErrPictureRefused }

// picturePeer is what an upload needs of the session: the newest session
// key, the DevID and the picture service's URL from the same 0xB.
type picturePeer struct {
	devID  string
	cipher *osap.Cipher
	url    string
}

// picturePeer returns the newest credentials, false before the first.
func (s *Session) picturePeer() (picturePeer, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.keys) == 0 {
		return picturePeer{}, false
	}
	k := s.keys[0]
	return picturePeer{devID: k.devID, cipher: k.cipher, url: k.pictureURL}, true
}

// PictureService returns the base URL of the picture service the LBS
// announced with the current session key, "" when it offered none or the
// session has no credentials yet.
func (s *Session) PictureService() string {
	p, _ := s.picturePeer()
	return p.url
}

// UploadPicture uploads a JPEG picture of sub-device dev ("" for the
// gateway itself) to the picture service (binding 2.7) and returns the id
// the service gave it, osap.PictureID(sum).
//
// body is read from its start on every try and streamed, never read whole;
// size is its length and sum its SHA-256, both known to the caller (its
// spool). Each try carries a fresh token sealed with the newest session
// key. Answers 5xx and network errors are tried again after a backoff
// (Config.BackoffMin doubling to Config.BackoffMax, or the Retry-After the
// service asks for, at most Config.BackoffMax) until ctx ends; before the
// session has credentials, it waits for them the same way.
//
// It returns ErrNoPictureService when the platform offers no picture
// service (the caller drops the picture); an error matching
// ErrPictureRefused (a *PictureError) when the service answers 4xx, the
// answer's id is not the picture's, or the picture is empty or over
// osap.PictureMaxSize, none of which a retry can mend; and, when ctx ends
// first, an error wrapping ctx.Err() that names the last failure.
func (s *Session) UploadPicture(ctx context.Context, dev string, body io.ReadSeeker, size int64, sum [sha256.Size]byte) (string, error) {
	want := osap.PictureID(sum)
	switch {
	case size <= 0:
		return "", fmt.Errorf("upstream: upload picture %s: %w", want, &PictureError{Msg: "empty picture"})
	case size > osap.PictureMaxSize:
		return "", fmt.Errorf("upstream: upload picture %s: %w", want,
			&PictureError{Status: 0, Msg: fmt.Sprintf("%d bytes, over the limit of %d", size, osap.PictureMaxSize)})
	}
	log := s.log.With("dev", dev, "picture", want, "size", size)
	var last error
	for n := 0; ; n++ {
		if n > 0 {
			if !backoff.Sleep(ctx, s.retryDelay(n-1, last)) {
				return "", fmt.Errorf("upstream: upload picture %s: %w (last try: %v)", want, ctx.Err(), last)
			}
		}
		if err := ctx.Err(); err != nil {
			if last == nil {
				return "", fmt.Errorf("upstream: upload picture %s: %w", want, err)
			}
			return "", fmt.Errorf("upstream: upload picture %s: %w (last try: %v)", want, err, last)
		}
		peer, ok := s.picturePeer()
		if !ok {
			last = errors.New("no session key yet")
			continue
		}
		if peer.url == "" {
			return "", fmt.Errorf("upstream: upload picture %s: %w", want, ErrNoPictureService)
		}
		id, err := s.tryUpload(ctx, peer, dev, body, size, sum)
		if err == nil {
			if n > 0 {
				log.Info("picture uploaded after retries", "tries", n+1)
			} else {
				log.Debug("picture uploaded")
			}
			return id, nil
		}
		if errors.Is(err, ErrPictureRefused) {
			return "", fmt.Errorf("upstream: upload picture %s to %s: %w", want, peer.url, err)
		}
		last = err
		log.Debug("picture upload failed; trying again", "try", n+1, "err", err)
	}
}

// retryAfterError is a 5xx answer, with the delay it asked for (0: none).
type retryAfterError struct {
	status int
	msg    string
	after  time.Duration
}

func (e *retryAfterError) Error() string {
	return fmt.Sprintf("picture service answered %d: %s", e.status, e.msg)
}

// retryDelay is the wait after n+1 failed tries, the last failing with
// err: the backoff, or longer when the service asked for it, at most
// Config.BackoffMax.
func (s *Session) retryDelay(n int, err error) time.Duration {
	d := backoff.Delay(n, s.cfg.BackoffMin, s.cfg.BackoffMax)
	var ra *retryAfterError
	if errors.As(err, &ra) && ra.after > d {
		d = min(ra.after, s.cfg.BackoffMax)
	}
	return d
}

// tryUpload makes one attempt.
func (s *Session) tryUpload(ctx context.Context, peer picturePeer, dev string, body io.ReadSeeker, size int64, sum [sha256.Size]byte) (string, error) {
	if _, err := body.Seek(0, io.SeekStart); err != nil {
		return "", &PictureError{Msg: "rewind the picture: " + err.Error()}
	}
	tok, err := peer.cipher.PictureToken(s.cfg.Rand, peer.devID, s.cfg.Now(), sum)
	if err != nil {
		return "", fmt.Errorf("picture token: %w", err)
	}
	actx, cancel := context.WithTimeout(ctx, uploadTimeout)
	defer cancel()
	url := strings.TrimSuffix(peer.url, "/") + osap.PicturePath(peer.devID)
	// NopCloser: the caller owns body; LimitReader: never more than size.
	req, err := http.NewRequestWithContext(actx, http.MethodPost, url, io.NopCloser(io.LimitReader(body, size)))
	if err != nil {
		return "", &PictureError{Msg: fmt.Sprintf("picture service URL %q: %v", peer.url, err)}
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", osap.PictureContentType)
	req.Header.Set("Authorization", osap.PictureAuthScheme+" "+tok)
	req.Header.Set(osap.PictureDevHeader, dev)
	resp, err := s.http.Do(req)
	if err != nil {
		return "", err // names the URL
	}
	defer resp.Body.Close()
	var ans struct {
		Picture string `json:"picture"`
		SHA256  string `json:"sha256"`
		Size    int64  `json:"size"`
		Error   string `json:"error"`
	}
	decErr := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&ans)
	switch {
	case resp.StatusCode == http.StatusCreated:
		if decErr != nil {
			return "", &PictureError{Status: resp.StatusCode, Msg: "answer is not JSON: " + decErr.Error()}
		}
		if want := osap.PictureID(sum); ans.Picture != want {
			return "", &PictureError{Status: resp.StatusCode, Msg: fmt.Sprintf("picture id %q, want %q", ans.Picture, want)}
		}
		return ans.Picture, nil
	case resp.StatusCode >= 500:
		return "", &retryAfterError{status: resp.StatusCode, msg: answerText(ans.Error, resp), after: retryAfter(resp.Header.Get("Retry-After"), s.cfg.Now())}
	default:
		return "", &PictureError{Status: resp.StatusCode, Msg: answerText(ans.Error, resp)}
	}
}

func answerText(msg string, resp *http.Response) string {
	if msg != "" {
		return msg
	}
	return http.StatusText(resp.StatusCode)
}

// retryAfter parses a Retry-After value: seconds, or an HTTP date. It
// returns 0 for none or nonsense.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// newPictureClient returns the session's HTTP client for the picture
// service: https with Config.TLS (the CA the DAS is checked with), TLS 1.2
// at least.
func newPictureClient(c Config) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	cfg := &tls.Config{}
	if c.TLS != nil {
		cfg = c.TLS.Clone()
	}
	cfg.MinVersion = max(cfg.MinVersion, tls.VersionTLS12)
	tr.TLSClientConfig = cfg
	return &http.Client{Transport: tr}
}
