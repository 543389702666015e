package store

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Credentials are what the OSAP client keeps between runs: the identity
// the LBS assigned and the keys negotiated with it.
type Credentials struct {
	// DevID is the gateway's id, assigned by the LBS at first authentication.
	DevID string
	// MasterKey is the key derived by ECDH at first authentication.
	MasterKey []byte
	// Suite is the cipher suite bit negotiated at first authentication.
	Suite uint8
	// SessionKey is the current session key, if any.
	SessionKey []byte
	// SessionExpiry is when SessionKey stops being valid.
	SessionExpiry time.Time
	// Lifetime is the lifetime SessionKey was issued with.
	Lifetime time.Duration
	// DASAddress is the DAS address from the last Get Access Service.
	DASAddress string
	// PictureURL is the picture service URL from the last Get Access
	// Service; empty when none was offered.
	PictureURL string
}

// LoadCredentials returns the stored credentials and true, or false if none
// are stored. A stored record that cannot be decoded is an error wrapping
// ErrCorrupt; ClearCredentials (or SaveCredentials) replaces it.
func (s *Store) LoadCredentials() (Credentials, bool, error) {
	var c Credentials
	var found bool
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketCreds).Get(keyCreds)
		if v == nil {
			return nil
		}
		var err error
		c, err = decodeCredentials(v)
		found = err == nil
		return err
	})
	if err != nil {
		return Credentials{}, false, fmt.Errorf("store: load credentials: %w", err)
	}
	return c, found, nil
}

// SaveCredentials stores c in place of the stored credentials and returns
// once that is durable. On error (wrapping ErrNoSpace, or ErrClosed after
// Close) the credentials stored before are kept.
func (s *Store) SaveCredentials(c Credentials) error {
	enc, err := encodeCredentials(c)
	if err != nil {
		return fmt.Errorf("store: save credentials: %w", err)
	}
	err = s.write("save credentials", func(tx *bolt.Tx, _ *state) error {
		return tx.Bucket(bucketCreds).Put(keyCreds, enc)
	})
	if errors.Is(err, ErrClosed) {
		return fmt.Errorf("store: save credentials: %w", err)
	}
	return err
}

// ClearCredentials removes the stored credentials (for a new first
// authentication) and returns once that is durable. On error (wrapping
// ErrNoSpace, or ErrClosed after Close) they are still stored.
func (s *Store) ClearCredentials() error {
	err := s.write("clear credentials", func(tx *bolt.Tx, _ *state) error {
		return tx.Bucket(bucketCreds).Delete(keyCreds)
	})
	if errors.Is(err, ErrClosed) {
		return fmt.Errorf("store: clear credentials: %w", err)
	}
	return err
}
