package store

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/osapgw/osapgw/internal/tmpfs"
)

// The full-disk tests run the store on a real size-limited tmpfs
// (internal/tmpfs: they need root, skip without it, and fail under
// CI=true). A ballast file holds part of the file system, so that removing
// it gives space back while the store is open.

// tmpfsSize is the size of the file system the full-disk tests fill.
const tmpfsSize = 4 << 20

// TestNoSpace fills the file system with events until appends fail, and
// checks that the error says so and where, that Stats counts it, that
// every event whose append returned nil is kept in order (bbolt's
// consistency check passing), that the store keeps working once space is
// back without a restart, and that it reopens on a full disk.
func TestNoSpace(t *testing.T) {
	tests := []struct {
		name       string
		paramBytes int // size of each event's one parameter
		writers    int // concurrent appenders (group commit)
	}{
		{name: "small events", paramBytes: 100, writers: 4},
		{name: "4 KB events", paramBytes: 4000, writers: 1},
		{name: "concurrent writers", paramBytes: 1000, writers: 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tmpfs.Mount(t, tmpfsSize)
			ballast := filepath.Join(dir, "ballast")
			writeFile(t, ballast, make([]byte, 1<<20))
			path := filepath.Join(dir, "state", "osapgw.db")
			s, err := Open(path, Options{Logger: quietLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { s.Close() }()
			ev := Event{Dev: "d", Resource: "main", Name: "tick", Params: map[string]any{"text": strings.Repeat("x", tt.paramBytes)}}

			stored, failure := appendUntilFull(t, s, ev, tt.writers)
			t.Logf("%d events of %d-byte parameters stored in a %d-byte tmpfs (1 MiB ballast) before: %v",
				len(stored), tt.paramBytes, tmpfsSize, failure)
			checkNoSpaceErr(t, "Append on a full disk", failure)
			if _, err := s.Append(context.Background(), ev); !errors.Is(err, ErrNoSpace) {
				t.Errorf("second Append on a full disk = %v, want ErrNoSpace", err)
			}
			st := s.Stats()
			if st.Count != len(stored) || st.NoSpace < 2 || !st.DiskFull {
				t.Errorf("Stats() = Count %d, NoSpace %d, DiskFull %v; want Count %d, NoSpace >= 2, DiskFull true",
					st.Count, st.NoSpace, st.DiskFull, len(stored))
			}
			checkIDs(t, s, stored)

			// Space comes back: the same store appends again.
			if err := os.Remove(ballast); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			id, err := s.Append(context.Background(), ev)
			if err != nil {
				t.Fatalf("Append once space is back = %v, want nil", err)
			}
			t.Logf("first append once space was back took %v", time.Since(start))
			if id <= stored[len(stored)-1] {
				t.Errorf("id after recovery %d, want above %d", id, stored[len(stored)-1])
			}
			stored = append(stored, id)
			if st := s.Stats(); st.DiskFull {
				t.Errorf("Stats().DiskFull = true after a successful append, want false")
			}

			// Full again, then a restart on the full disk.
			tmpfs.Fill(t, ballast)
			more, failure := appendUntilFull(t, s, ev, tt.writers)
			checkNoSpaceErr(t, "Append on a disk full again", failure)
			stored = append(stored, more...)
			if err := s.Close(); err != nil {
				t.Fatalf("Close() on a full disk = %v", err)
			}
			checkFile(t, path)
			s, err = Open(path, Options{Logger: quietLogger(t)})
			if err != nil {
				t.Fatalf("Open() on a full disk = %v, want the store as it was", err)
			}
			checkIDs(t, s, stored)
			if err := s.Ack(stored[:len(stored)/2]...); err != nil {
				// Ack frees pages; it may still need one more than the
				// full disk has.
				checkNoSpaceErr(t, "Ack on a full disk", err)
				t.Logf("Ack on a full disk: %v", err)
			} else {
				stored = stored[len(stored)/2:]
			}
			if err := os.Remove(ballast); err != nil {
				t.Fatal(err)
			}
			id, err = s.Append(context.Background(), ev)
			if err != nil {
				t.Fatalf("Append once space is back after a restart = %v, want nil", err)
			}
			stored = append(stored, id)
			checkIDs(t, s, stored)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			checkFile(t, path)
		})
	}
}

// appendUntilFull appends ev from writers goroutines until each has
// failed once, and returns the ids of the events stored, in id order, and
// one of the errors.
func appendUntilFull(t *testing.T, s *Store, ev Event, writers int) ([]uint64, error) {
	t.Helper()
	var (
		mu      sync.Mutex
		ids     []uint64
		failure error
		wg      sync.WaitGroup
	)
	for range writers {
		wg.Go(func() {
			for range 200000 {
				id, err := s.Append(context.Background(), ev)
				mu.Lock()
				if err != nil {
					failure = err
					mu.Unlock()
					return
				}
				ids = append(ids, id)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(ids)
	return ids, failure
}

// checkNoSpaceErr asserts that err wraps ErrNoSpace and names the store
// and the operation.
func checkNoSpaceErr(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("%s = %v, want an error wrapping ErrNoSpace", what, err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "store: ") || !strings.Contains(msg, "no space left on device") {
		t.Errorf("%s = %q, want it to start with \"store: <operation>\" and give the cause", what, msg)
	}
}

// TestNoSpaceMaxBytes: with MaxBytes well below the file system's size,
// the outbox drops its oldest events and appends never fail; the newest
// events are kept, in order.
func TestNoSpaceMaxBytes(t *testing.T) {
	dir := tmpfs.Mount(t, tmpfsSize)
	path := filepath.Join(dir, "state", "osapgw.db")
	const maxBytes = 1 << 20
	s, err := Open(path, Options{Logger: quietLogger(t), MaxBytes: maxBytes})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	ev := Event{Dev: "d", Resource: "main", Name: "tick", Params: map[string]any{"text": strings.Repeat("x", 1000)}}
	// Five times the file system in events.
	const n = 5 * tmpfsSize / 1000
	const batch = 20 // a burst of events per commit: the test is about space, not fsyncs
	var ids []uint64
	var largest int64
	for i := 0; i < n; i += batch {
		got, err := s.AppendBatch(context.Background(), slices.Repeat([]Event{ev}, min(batch, n-i)))
		if err != nil {
			t.Fatalf("AppendBatch after %d events = %v, want nil: MaxBytes keeps the outbox below the disk", i, err)
		}
		ids = append(ids, got...)
		if i%500 == 0 {
			largest = max(largest, allocated(t, path))
		}
	}
	st := s.Stats()
	t.Logf("%d appends into MaxBytes %d on a %d-byte tmpfs: %d kept, %d dropped, file at most %d bytes allocated",
		n, maxBytes, tmpfsSize, st.Count, st.Dropped, largest)
	if st.Dropped == 0 || st.Count+int(st.Dropped) != n || st.Bytes > maxBytes || st.NoSpace != 0 {
		t.Errorf("Stats() = %+v, want Count + Dropped = %d, Dropped > 0, Bytes <= %d, NoSpace 0", st, n, maxBytes)
	}
	checkIDs(t, s, ids[n-st.Count:])
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path)
}

// TestNoSpacePicture: a picture that cannot be spooled fails with
// ErrNoSpace and leaves no file behind; its event stays stored with the
// picture pending, and FailPicture records why; once space is back,
// pictures are spooled again.
func TestNoSpacePicture(t *testing.T) {
	dir := tmpfs.Mount(t, tmpfsSize)
	path := filepath.Join(dir, "state", "osapgw.db")
	s, err := Open(path, Options{Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	ctx := context.Background()
	ev := Event{Dev: "cam", Resource: "video", Name: "motion", Picture: true}
	// Room for the events, none for a picture.
	ballast := filepath.Join(dir, "ballast")
	tmpfs.Fill(t, ballast)
	var id uint64
	for range 100 {
		// The fill leaves a page or so; the file may need a page more.
		if id, err = s.Append(ctx, ev); err == nil || !errors.Is(err, ErrNoSpace) {
			break
		}
		shrink(t, ballast, 64<<10)
	}
	if err != nil {
		t.Fatalf("Append of an event with a picture = %v", err)
	}
	tmpfs.Fill(t, filepath.Join(dir, "ballast2"))
	err = s.AttachPicture(ctx, id, strings.NewReader(strings.Repeat("j", 256<<10)))
	checkNoSpaceErr(t, "AttachPicture on a full disk", err)
	if !strings.Contains(err.Error(), "attach picture") {
		t.Errorf("AttachPicture on a full disk = %q, want it to name the operation", err)
	}
	ents, rerr := os.ReadDir(path + spoolSuffix)
	if rerr != nil || len(ents) != 0 {
		t.Errorf("spool after a failed attach holds %v (%v), want nothing", ents, rerr)
	}
	if st := s.Stats(); st.NoSpace == 0 || st.Pictures != 0 {
		t.Errorf("Stats() = %+v, want NoSpace > 0, no pictures", st)
	}
	recs, err := s.Pending(0, 10)
	if err != nil || len(recs) != 1 || recs[0].ID != id || recs[0].Picture == nil || !recs[0].Picture.Pending {
		t.Fatalf("Pending = %+v, %v; want event %d with its picture pending", recs, err, id)
	}
	if err := s.FailPicture(id, "no space"); err != nil {
		// Rewriting a record may need a page the disk does not have.
		checkNoSpaceErr(t, "FailPicture on a full disk", err)
		t.Logf("FailPicture on a full disk: %v", err)
	} else if recs, _ := s.Pending(0, 10); len(recs) != 1 || recs[0].Picture.Err != "no space" {
		t.Errorf("Pending after FailPicture = %+v, want picture error \"no space\"", recs)
	}

	// Space is back: the next event's picture is spooled.
	for _, f := range []string{ballast, filepath.Join(dir, "ballast2")} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	id2, err := s.Append(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AttachPicture(ctx, id2, strings.NewReader(strings.Repeat("j", 256<<10))); err != nil {
		t.Fatalf("AttachPicture once space is back = %v", err)
	}
	if st := s.Stats(); st.Pictures != 1 || st.DiskFull {
		t.Errorf("Stats() = %+v, want 1 picture, DiskFull false", st)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path)
}

// allocated returns the bytes the file at path takes on its file system
// (bbolt grows its file sparsely: its size says little).
func allocated(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fi.Size()
	}
	return st.Blocks * 512
}

// shrink cuts n bytes off the end of the file at path.
func shrink(t *testing.T, path string, n int64) {
	t.Helper()
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, max(fi.Size()-n, 0)); err != nil {
		t.Fatal(err)
	}
}

// checkIDs asserts that the outbox holds exactly ids, in order.
func checkIDs(t *testing.T, s *Store, ids []uint64) {
	t.Helper()
	recs, err := s.Pending(0, len(ids)+10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(ids) {
		t.Fatalf("Pending = %d records, want %d", len(recs), len(ids))
	}
	for i, r := range recs {
		if r.ID != ids[i] {
			t.Fatalf("record %d has id %d, want %d", i, r.ID, ids[i])
		}
	}
}
