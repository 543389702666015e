package platform

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/osapgw/osapgw/osap"
)

// A device proves itself to the DAS (login password, binding 2.4) and to
// the picture service (picture token, binding 2.7) the same way: it seals
// a time and a fresh nonce with its session key. The checks below are
// shared by both, so that they cannot drift apart: open with the current
// or the previous session key, the time within 300 s of the platform's
// clock either way, the nonce not seen before.

// errNoSessionKey is returned by sessionCiphers when the DevID is unknown
// or has no session key.
var errNoSessionKey = errors.New("no session key")

// sessionCiphers returns the suite of devID and a cipher for each of its
// session keys, the current one first. The error wraps errNoSessionKey
// when there is none.
func sessionCiphers(keys KeySource, devID string) (osap.Suite, []*osap.Cipher, error) {
	suite, ks, err := keys.SessionKeys(devID)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %w", errNoSessionKey, err)
	}
	if len(ks) == 0 {
		return 0, nil, errNoSessionKey
	}
	cs := make([]*osap.Cipher, 0, len(ks))
	for _, k := range ks {
		c, err := osap.NewCipher(suite, k)
		if err != nil {
			return 0, nil, fmt.Errorf("%w: %w", errNoSessionKey, err)
		}
		cs = append(cs, c)
	}
	return suite, cs, nil
}

// openProof opens a sealed proof with each cipher in turn. It returns what
// the first one that opens it gives and that cipher's index, or the last
// error with index -1.
func openProof[T any](ciphers []*osap.Cipher, open func(*osap.Cipher) (T, error)) (T, int, error) {
	var (
		v   T
		err error
	)
	for i, c := range ciphers {
		if v, err = open(c); err == nil {
			return v, i, nil
		}
	}
	return v, -1, err
}

// checkProofTime refuses a proof dated more than maxAge before or after
// now, saying which.
func checkProofTime(at, now time.Time, maxAge time.Duration) error {
	switch {
	case at.Before(now.Add(-maxAge)):
		return fmt.Errorf("stale: %.0f s old, over %.0f s", now.Sub(at).Seconds(), maxAge.Seconds())
	case at.After(now.Add(maxAge)):
		return fmt.Errorf("dated %.0f s in the future", at.Sub(now).Seconds())
	}
	return nil
}

// replayKey is a nonce of a device.
type replayKey struct {
	devID string
	nonce [osap.NonceSize]byte
}

// replayCache remembers the nonces of accepted proofs for as long as a
// proof carrying them could still pass the time check. It is safe for
// concurrent use; the zero value is ready.
type replayCache struct {
	maxAge time.Duration // 0: osap.LoginMaxAge

	mu     sync.Mutex
	seen   map[replayKey]time.Time // nonce → until when it is kept
	pruned time.Time               // last pruning of seen
}

// fresh records the nonce of a proof dated at and reports whether it was
// new. An entry is kept until the proof it came with is stale, so a
// replay is refused either as seen or as stale; older entries are pruned
// (at most once a second).
func (r *replayCache) fresh(devID string, nonce [osap.NonceSize]byte, at, now time.Time) bool {
	maxAge := r.maxAge
	if maxAge <= 0 {
		maxAge = osap.LoginMaxAge
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[replayKey]time.Time{}
	}
	if now.Sub(r.pruned) >= time.Second || now.Before(r.pruned) {
		for k, until := range r.seen {
			if now.After(until) {
				delete(r.seen, k)
			}
		}
		r.pruned = now
	}
	key := replayKey{devID, nonce}
	if _, seen := r.seen[key]; seen {
		return false
	}
	until := at.Add(maxAge)
	if n := now.Add(maxAge); n.After(until) {
		until = n
	}
	r.seen[key] = until
	return true
}

// kept reports whether the cache holds the nonce (for tests).
func (r *replayCache) kept(devID string, nonce [osap.NonceSize]byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.seen[replayKey{devID, nonce}]
	return ok
}
