package store

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// keyAnnounced holds, in the meta bucket, the sub-device ids last announced
// to the platform (topo.add), so that devices taken out of the
// configuration while the daemon was stopped are removed from the platform
// (topo.remove) at the next start.
var keyAnnounced = []byte("announced")

// Announced returns the sub-device ids recorded by SetAnnounced, or none.
// It returns an error wrapping ErrCorrupt if the record cannot be decoded,
// or ErrClosed after Close.
func (s *Store) Announced() ([]string, error) {
	var ids []string
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMeta).Get(keyAnnounced)
		if v == nil {
			return nil
		}
		if err := json.Unmarshal(v, &ids); err != nil {
			return fmt.Errorf("announced devices: %v: %w", err, ErrCorrupt)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: announced devices: %w", err)
	}
	return ids, nil
}

// SetAnnounced records the sub-device ids the platform knows, and returns
// once that is durable. On error (wrapping ErrNoSpace, or ErrClosed after
// Close) the ids recorded before are kept.
func (s *Store) SetAnnounced(ids []string) error {
	b, err := json.Marshal(ids)
	if err != nil {
		return fmt.Errorf("store: set announced devices: %w", err)
	}
	return s.write("set announced devices", func(tx *bolt.Tx, _ *state) error {
		return tx.Bucket(bucketMeta).Put(keyAnnounced, b)
	})
}
