package store

import (
	"bytes"
	"errors"
	"fmt"
	"sort"

	bolt "go.etcd.io/bbolt"

	"github.com/osapgw/osapgw/model"
)

// PutValues records the latest values of attributes of a resource of a
// sub-device and marks them pending (not yet sent). For each attribute only
// the newest value by capture time is kept: a value captured before the
// stored one is ignored. It returns once the write is durable, an error
// wrapping ErrInvalid for an empty or NUL-containing name or a value it
// cannot encode, and one wrapping ErrNoSpace if the disk is full.
func (s *Store) PutValues(dev, resource string, values map[string]model.Value) error {
	if err := validName("device", dev); err != nil {
		return fmt.Errorf("store: put values: %w", err)
	}
	if err := validName("resource", resource); err != nil {
		return fmt.Errorf("store: put values: device %q: %w", dev, err)
	}
	type kv struct {
		k, v []byte
		at   int64
	}
	enc := make([]kv, 0, len(values))
	for name, v := range values {
		if err := validName("attribute", name); err != nil {
			return fmt.Errorf("store: put values: device %q: %w", dev, err)
		}
		b, err := encodeValue(v, flagPending)
		if err != nil {
			return fmt.Errorf("store: put values: device %q: attribute %q: %w", dev, name, err)
		}
		enc = append(enc, kv{valueKey(dev, resource, name), b, unixNano(v.At)})
	}
	if len(enc) == 0 {
		return nil
	}
	err := s.write("put values", func(tx *bolt.Tx, _ *state) error {
		b := tx.Bucket(bucketValues)
		for _, e := range enc {
			if old := b.Get(e.k); old != nil {
				if ov, _, err := decodeValue(old); err == nil && unixNano(ov.At) > e.at {
					continue
				}
			}
			if err := b.Put(e.k, e.v); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, ErrClosed) {
		return fmt.Errorf("store: put values: %w", err)
	}
	return err
}

// DrainValues calls fn once per (device, resource) with the values still
// pending, and marks the values of each call that returns nil as sent (a
// value replaced meanwhile by a newer one stays pending). It stops at the
// first error of fn and returns it; what was accepted before is marked. fn
// runs outside any transaction and may take its time.
func (s *Store) DrainValues(fn func(dev, resource string, values map[string]model.Value) error) error {
	type group struct {
		dev, resource string
		values        map[string]model.Value
		raw           map[string][]byte
	}
	var groups []*group
	byKey := map[string]*group{}
	var bad [][]byte
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketValues).ForEach(func(k, v []byte) error {
			dev, res, attr, ok := splitValueKey(k)
			val, flags, err := decodeValue(v)
			if !ok || err != nil {
				s.log.Error("removing a damaged value record", "key", fmt.Sprintf("%q", k), "err", err)
				bad = append(bad, append([]byte(nil), k...))
				return nil
			}
			if flags&flagPending == 0 {
				return nil
			}
			gk := dev + "\x00" + res
			g := byKey[gk]
			if g == nil {
				g = &group{dev: dev, resource: res, values: map[string]model.Value{}, raw: map[string][]byte{}}
				byKey[gk] = g
				groups = append(groups, g)
			}
			g.values[attr] = val
			g.raw[attr] = append([]byte(nil), v...)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("store: drain values: %w", err)
	}
	if len(bad) > 0 {
		if err := s.write("remove damaged values", func(tx *bolt.Tx, st *state) error {
			b := tx.Bucket(bucketValues)
			for _, k := range bad {
				if err := b.Delete(k); err != nil {
					return err
				}
				st.corruptions++
			}
			return nil
		}); err != nil {
			return err
		}
	}
	sort.Slice(groups, func(i, j int) bool {
		if groups[i].dev != groups[j].dev {
			return groups[i].dev < groups[j].dev
		}
		return groups[i].resource < groups[j].resource
	})
	var fnErr error
	var accepted []*group
	for _, g := range groups {
		if fnErr = fn(g.dev, g.resource, g.values); fnErr != nil {
			break
		}
		accepted = append(accepted, g)
	}
	if len(accepted) > 0 {
		err := s.write("mark values sent", func(tx *bolt.Tx, _ *state) error {
			b := tx.Bucket(bucketValues)
			for _, g := range accepted {
				for attr, raw := range g.raw {
					k := valueKey(g.dev, g.resource, attr)
					cur := b.Get(k)
					if !bytes.Equal(cur, raw) {
						continue // replaced since: stays pending
					}
					v := append([]byte(nil), cur...)
					v[1] &^= flagPending
					if err := b.Put(k, v); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return errors.Join(fnErr, err)
		}
	}
	return fnErr
}

// LastValues returns the last stored value of every attribute of device
// dev, sent or not, by resource then attribute name. A record that cannot
// be decoded is left out. The error wraps ErrClosed after Close.
func (s *Store) LastValues(dev string) (map[string]map[string]model.Value, error) {
	out := map[string]map[string]model.Value{}
	prefix := []byte(dev + "\x00")
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketValues).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			_, res, attr, ok := splitValueKey(k)
			val, _, err := decodeValue(v)
			if !ok || err != nil {
				continue
			}
			if out[res] == nil {
				out[res] = map[string]model.Value{}
			}
			out[res][attr] = val
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: last values of %q: %w", dev, err)
	}
	return out, nil
}
