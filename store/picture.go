package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Picture is the state of the picture of an event that asked for one
// (Event.Picture). Exactly one of these holds: it is Pending; it is in the
// spool (Size > 0, and possibly uploaded: ID); it was uploaded (ID); there
// is none, and Err says why.
type Picture struct {
	// Pending means the picture was asked for and has not been attached
	// nor given up yet.
	Pending bool
	// Size and Sum (SHA-256) describe the picture kept in the spool, when
	// Size > 0. OpenPicture reads it.
	Size int64
	Sum  [sha256.Size]byte
	// ID is the picture service's id, once uploaded (SetPictureID).
	ID string
	// Err says why the event has no picture (FailPicture, the spool's
	// bound, a restart).
	Err string
}

// Reasons the store gives for an event without its picture.
const (
	// PictureDropped is the reason of a picture dropped from the spool
	// to keep within MaxBytes.
	PictureDropped = "dropped: spool full"
	// PictureRestarted is the reason of a picture still pending when the
	// gateway stopped: it will never be attached.
	PictureRestarted = "gateway restarted before the picture was taken"
)

// Defaults for the picture spool.
const (
	// DefaultMaxPictureBytes bounds one picture: the picture service's
	// limit (8 MiB).
	DefaultMaxPictureBytes = 8 << 20
	// maxPictureReason bounds the reason stored for a missing picture.
	maxPictureReason = 256
)

// spoolSuffix names the directory of pictures beside the store file.
const spoolSuffix = ".pictures"

// spoolDir returns the directory of the picture spool.
func (s *Store) spoolDir() string { return s.path + spoolSuffix }

// pictureFile returns the spool file of event id's picture.
func (s *Store) pictureFile(id uint64) string {
	return filepath.Join(s.spoolDir(), fmt.Sprintf("%016x.jpg", id))
}

// spoolEntry is a picture in the spool.
type spoolEntry struct {
	id   uint64
	size int64
}

// openSpool creates the spool directory if needed, removes what no record
// holds (temporary files of an attach cut short, pictures of events that
// are gone or not marked attached) and fills s.spool. It runs in Open,
// before the committer starts.
func (s *Store) openSpool() error {
	dir := s.spoolDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("store: create picture spool %q: %w", dir, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("store: read picture spool %q: %w", dir, err)
	}
	s.spool = map[uint64]int64{}
	removed := 0
	err = s.view(func(tx *bolt.Tx) error {
		ob := tx.Bucket(bucketOutbox)
		for _, e := range ents {
			name := e.Name()
			hex, ok := strings.CutSuffix(name, ".jpg")
			id, perr := strconv.ParseUint(hex, 16, 64)
			if ok && perr == nil && len(hex) == 16 && e.Type().IsRegular() {
				if size, keep := s.spoolKeeps(ob, id, filepath.Join(dir, name)); keep {
					s.spool[id] = size
					continue
				}
			}
			if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				return fmt.Errorf("remove %q: %w", name, err)
			}
			removed++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: clean picture spool %q: %w", dir, err)
	}
	if removed > 0 {
		_ = syncDir(dir)
		s.log.Info("removed pictures no event holds from the spool", "files", removed)
	}
	for _, size := range s.spool {
		s.state.pictures++
		s.state.picBytes += size
	}
	return nil
}

// spoolKeeps reports whether the spool file of event id belongs to a
// stored event whose record says its picture is attached with the file's
// size, and returns that size.
func (s *Store) spoolKeeps(ob *bolt.Bucket, id uint64, path string) (int64, bool) {
	v := ob.Get(idKey(id))
	if v == nil {
		return 0, false
	}
	rec, err := decodeEvent(id, v)
	if err != nil || rec.Picture == nil || rec.Picture.Size == 0 {
		return 0, false
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Size() != rec.Picture.Size {
		return 0, false
	}
	return rec.Picture.Size, true
}

// AttachPicture stores the picture of event id, read from r to its end,
// and returns once the picture and the record saying so are durable: the
// bytes go to a temporary file in the spool, which is fsync'd, renamed
// and its directory fsync'd, and only then does the record change from
// pending to attached. If that makes the spool and the outbox together
// exceed MaxBytes, the oldest pictures (possibly this one) are dropped:
// their events stay, with Err PictureDropped. Memory use is a copy
// buffer, whatever the picture's size.
//
// It returns an error wrapping ErrNotPending when the event is no longer
// stored or its picture is no longer pending (given up, attached, or
// asked for before a restart), and r is not read; ErrTooLarge for a
// picture over MaxPictureBytes and ErrInvalid for an empty one (the
// picture is then still pending); ErrNoSpace when the disk is full;
// r's error when reading fails; ErrClosed after Close.
func (s *Store) AttachPicture(ctx context.Context, id uint64, r io.Reader) (err error) {
	if err := s.checkPending(id, false); err != nil {
		return fmt.Errorf("store: attach picture: %w", err)
	}
	final := s.pictureFile(id)
	tmp := strings.TrimSuffix(final, ".jpg") + ".tmp"
	size, sum, err := s.writeSpoolFile(ctx, tmp, r)
	if errors.Is(err, ErrNoSpace) {
		s.noteWrite(err, false)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("store: attach picture of event %d: %w", id, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		s.noteWrite(err, false)
		return wrapWrite("attach picture", err)
	}
	if err := syncDir(s.spoolDir()); err != nil {
		os.Remove(final)
		s.noteWrite(err, false)
		return wrapWrite("attach picture", err)
	}
	var gone bool
	err = s.write("attach picture", func(tx *bolt.Tx, st *state) error {
		gone = false
		ok, err := s.updatePicture(tx, st, id, func(p *Picture) bool {
			if !p.Pending {
				return false
			}
			*p = Picture{Size: size, Sum: sum}
			return true
		})
		if err != nil || !ok {
			gone = !ok
			return err
		}
		st.added = append(st.added, spoolEntry{id, size})
		st.pictures++
		st.picBytes += size
		return nil
	})
	if err != nil || gone {
		os.Remove(final)
	}
	if err != nil {
		return err
	}
	if gone {
		return fmt.Errorf("store: attach picture of event %d: %w", id, ErrNotPending)
	}
	return nil
}

// writeSpoolFile copies r to a new file at path, fsync'd, and returns its
// size and SHA-256.
func (s *Store) writeSpoolFile(ctx context.Context, path string, r io.Reader) (int64, [sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, sum, noSpace(err)
	}
	defer f.Close()
	h := sha256.New()
	limit := s.opts.MaxPictureBytes
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(ctxReader{ctx, r}, limit+1))
	switch {
	case err != nil:
		return 0, sum, noSpace(err)
	case n > limit:
		return 0, sum, fmt.Errorf("picture over %d bytes: %w", limit, ErrTooLarge)
	case n == 0:
		return 0, sum, fmt.Errorf("empty picture: %w", ErrInvalid)
	}
	if !s.opts.NoSync {
		if err := f.Sync(); err != nil {
			return 0, sum, noSpace(err)
		}
	}
	if err := f.Close(); err != nil {
		return 0, sum, noSpace(err)
	}
	copy(sum[:], h.Sum(nil))
	return n, sum, nil
}

// noSpace adds ErrNoSpace to an error of a full disk.
func noSpace(err error) error {
	if isNoSpace(err) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}

// ctxReader stops reading when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// FailPicture records why event id gets no picture: one pending, or
// attached and not uploaded (its spool file is removed then). It returns
// once that is durable, and an error wrapping ErrNotPending when the
// event is no longer stored, asked for no picture, or its picture was
// already uploaded or given up; ErrClosed after Close.
func (s *Store) FailPicture(id uint64, reason string) error {
	if reason == "" {
		reason = "no picture"
	}
	if len(reason) > maxPictureReason {
		reason = reason[:maxPictureReason]
	}
	var gone bool
	err := s.write("fail picture", func(tx *bolt.Tx, st *state) error {
		gone = false
		ok, err := s.updatePicture(tx, st, id, func(p *Picture) bool {
			if p.ID != "" || p.Err != "" || (!p.Pending && p.Size == 0) || (p.Pending && id <= s.bootSeq) {
				return false
			}
			*p = Picture{Err: reason}
			return true
		})
		if ok {
			s.unspool(st, id)
		}
		gone = !ok
		return err
	})
	if err == nil && gone {
		err = ErrNotPending
	}
	if err != nil {
		return fmt.Errorf("store: fail picture of event %d: %w", id, err)
	}
	return nil
}

// SetPictureID records the picture service's id of event id's attached
// picture, once uploaded, and returns once that is durable: after a
// restart the event goes with that id, without a second upload. The
// spool file stays until the event is acknowledged. It returns an error
// wrapping ErrNotPending when the event is no longer stored or has no
// picture in the spool; ErrClosed after Close.
func (s *Store) SetPictureID(id uint64, pictureID string) error {
	if pictureID == "" || strings.IndexByte(pictureID, 0) >= 0 || len(pictureID) > maxPictureReason {
		return fmt.Errorf("store: set picture id %q: %w", pictureID, ErrInvalid)
	}
	var gone bool
	err := s.write("set picture id", func(tx *bolt.Tx, st *state) error {
		gone = false
		ok, err := s.updatePicture(tx, st, id, func(p *Picture) bool {
			if p.Size == 0 && p.ID == "" {
				return false
			}
			p.ID, p.Err = pictureID, ""
			return true
		})
		gone = !ok
		return err
	})
	if err == nil && gone {
		err = ErrNotPending
	}
	if err != nil {
		return fmt.Errorf("store: set picture id of event %d: %w", id, err)
	}
	return nil
}

// OpenPicture opens the spool file of event id's attached picture, to
// stream it to the picture service. The caller closes it. It returns an
// error wrapping fs.ErrNotExist when there is none (never attached,
// dropped, acknowledged, or removed by hand).
func (s *Store) OpenPicture(id uint64) (io.ReadSeekCloser, error) {
	f, err := os.Open(s.pictureFile(id))
	if err != nil {
		return nil, fmt.Errorf("store: open picture of event %d: %w", id, err)
	}
	return f, nil
}

// checkPending reports, with an error wrapping ErrNotPending, an event
// that is not stored or whose picture is not pending; attached accepts a
// picture in the spool too.
func (s *Store) checkPending(id uint64, attached bool) error {
	if id <= s.bootSeq {
		return fmt.Errorf("event %d stored before the restart: %w", id, ErrNotPending)
	}
	return s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketOutbox).Get(idKey(id))
		if v == nil {
			return fmt.Errorf("event %d not stored: %w", id, ErrNotPending)
		}
		rec, err := decodeEvent(id, v)
		if err != nil {
			return err
		}
		if p := rec.Picture; p == nil || !(p.Pending || attached && p.Size > 0) {
			return fmt.Errorf("event %d: %w", id, ErrNotPending)
		}
		return nil
	})
}

// updatePicture rewrites the picture state of event id with fn, inside a
// write, and keeps the outbox's byte count. It returns false (and writes
// nothing) when the event is not stored, asked for no picture, or fn
// returns false.
func (s *Store) updatePicture(tx *bolt.Tx, st *state, id uint64, fn func(p *Picture) bool) (bool, error) {
	ob := tx.Bucket(bucketOutbox)
	k := idKey(id)
	v := ob.Get(k)
	if v == nil {
		return false, nil
	}
	rec, err := decodeEvent(id, v)
	if err != nil || rec.Picture == nil {
		return false, nil
	}
	if !fn(rec.Picture) {
		return false, nil
	}
	enc := appendEvent(nil, rec.Dev, rec.Resource, rec.Name, rec.At, rec.Picture, rec.Params)
	if err := ob.Put(k, enc); err != nil {
		return false, err
	}
	st.bytes += int64(len(enc) - len(v))
	return true, nil
}

// unspool forgets event id's picture file in this write, if it has one:
// the file is removed once the write is committed.
func (s *Store) unspool(st *state, id uint64) {
	size, ok := s.spooled(st, id)
	if !ok {
		return
	}
	st.unlink = append(st.unlink, id)
	st.pictures--
	st.picBytes -= size
}

// spooled returns the size of event id's picture file as this write sees
// the spool.
func (s *Store) spooled(st *state, id uint64) (int64, bool) {
	if slices.Contains(st.unlink, id) {
		return 0, false
	}
	for _, e := range st.added {
		if e.id == id {
			return e.size, true
		}
	}
	s.stmu.Lock()
	size, ok := s.spool[id]
	s.stmu.Unlock()
	return size, ok
}

// dropPictures drops the oldest pictures of the spool while the outbox and
// the spool together exceed MaxBytes; their events stay, with Err
// PictureDropped (or with their id, if uploaded already).
func (s *Store) dropPictures(ob *bolt.Bucket, st *state) error {
	if st.bytes+st.picBytes <= s.opts.MaxBytes || st.pictures == 0 {
		return nil
	}
	s.stmu.Lock()
	ids := make([]uint64, 0, len(s.spool)+len(st.added))
	for id := range s.spool {
		ids = append(ids, id)
	}
	s.stmu.Unlock()
	for _, e := range st.added {
		ids = append(ids, e.id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if st.bytes+st.picBytes <= s.opts.MaxBytes {
			break
		}
		if _, ok := s.spooled(st, id); !ok {
			continue
		}
		lost := false
		k := idKey(id)
		if v := ob.Get(k); v != nil {
			if rec, err := decodeEvent(id, v); err == nil && rec.Picture != nil {
				if rec.Picture.ID == "" {
					rec.Picture = &Picture{Err: PictureDropped}
					lost = true
				} else {
					rec.Picture = &Picture{ID: rec.Picture.ID}
				}
				enc := appendEvent(nil, rec.Dev, rec.Resource, rec.Name, rec.At, rec.Picture, rec.Params)
				if err := ob.Put(k, enc); err != nil {
					return err
				}
				st.bytes += int64(len(enc) - len(v))
			}
		}
		s.unspool(st, id)
		if lost {
			st.picDropped++
		}
	}
	return nil
}

// applySpool makes a committed write's spool changes: removes the files
// it dropped and records those it added. The committer calls it.
func (s *Store) applySpool(st state) {
	if len(st.added) == 0 && len(st.unlink) == 0 {
		return
	}
	s.stmu.Lock()
	for _, e := range st.added {
		s.spool[e.id] = e.size
	}
	for _, id := range st.unlink {
		delete(s.spool, id)
	}
	s.stmu.Unlock()
	for _, id := range st.unlink {
		if err := os.Remove(s.pictureFile(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			// Open removes it next time: no record holds it any more.
			s.log.Warn("remove a picture from the spool", "id", id, "err", err)
		}
	}
}
