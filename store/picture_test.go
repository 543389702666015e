package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// jpeg returns n bytes of a fake picture, different for each seed.
func jpeg(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

func appendPictureEvent(t testing.TB, s *Store) uint64 {
	t.Helper()
	id, err := s.Append(context.Background(), Event{Dev: "cam-1", Resource: "video/1", Name: "motion", Params: map[string]any{"state": true}, Picture: true})
	if err != nil {
		t.Fatalf("Append = %v", err)
	}
	return id
}

func record(t testing.TB, s *Store, id uint64) Record {
	t.Helper()
	recs, err := s.Pending(id-1, 1)
	if err != nil || len(recs) != 1 || recs[0].ID != id {
		t.Fatalf("Pending(%d, 1) = %+v, %v; want event %d", id-1, recs, err, id)
	}
	return recs[0]
}

func reopen(t testing.TB, s *Store, path string, opts Options) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if opts.Logger == nil {
		opts.Logger = quietLogger(t)
	}
	s2, err := Open(path, opts)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	t.Cleanup(func() { s2.Close() })
	return s2
}

func TestPictureLifecycle(t *testing.T) {
	s, path := mustOpen(t, Options{})
	plain := appendN(t, s, "d", 1)[0]
	id := appendPictureEvent(t, s)
	if got := record(t, s, plain).Picture; got != nil {
		t.Errorf("event without a picture: Picture = %+v, want nil", got)
	}
	if got := record(t, s, id).Picture; !cmp.Equal(got, &Picture{Pending: true}) {
		t.Fatalf("after Append: Picture = %+v, want pending", got)
	}
	img := jpeg(100_000, 1)
	if err := s.AttachPicture(context.Background(), id, bytes.NewReader(img)); err != nil {
		t.Fatalf("AttachPicture = %v", err)
	}
	want := &Picture{Size: int64(len(img)), Sum: sha256.Sum256(img)}
	if got := record(t, s, id).Picture; !cmp.Equal(got, want) {
		t.Fatalf("after AttachPicture: Picture = %+v, want %+v", got, want)
	}
	if st := s.Stats(); st.Pictures != 1 || st.PictureBytes != int64(len(img)) {
		t.Errorf("Stats() = %+v, want 1 picture of %d bytes", st, len(img))
	}
	if err := s.AttachPicture(context.Background(), id, bytes.NewReader(img)); !errors.Is(err, ErrNotPending) {
		t.Errorf("second AttachPicture = %v, want ErrNotPending", err)
	}
	f, err := s.OpenPicture(id)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if !bytes.Equal(got, img) {
		t.Errorf("OpenPicture read %d bytes, want the %d attached", len(got), len(img))
	}
	if err := s.SetPictureID(id, "abc"); err != nil {
		t.Fatalf("SetPictureID = %v", err)
	}
	want.ID = "abc"
	if got := record(t, s, id).Picture; !cmp.Equal(got, want) {
		t.Fatalf("after SetPictureID: Picture = %+v, want %+v", got, want)
	}
	if err := s.Ack(plain, id); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.pictureFile(id)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("picture file after Ack: stat = %v, want it gone", err)
	}
	if st := s.Stats(); st.Pictures != 0 || st.PictureBytes != 0 || st.Count != 0 {
		t.Errorf("Stats() after Ack = %+v, want empty", st)
	}
	if err := s.SetPictureID(id, "abc"); !errors.Is(err, ErrNotPending) {
		t.Errorf("SetPictureID after Ack = %v, want ErrNotPending", err)
	}
	_ = path
}

func TestPictureDurableAcrossReopen(t *testing.T) {
	s, path := mustOpen(t, Options{})
	a, b := appendPictureEvent(t, s), appendPictureEvent(t, s)
	imgA, imgB := jpeg(5000, 1), jpeg(7000, 2)
	for _, x := range []struct {
		id  uint64
		img []byte
	}{{a, imgA}, {b, imgB}} {
		if err := s.AttachPicture(context.Background(), x.id, bytes.NewReader(x.img)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetPictureID(b, "id-b"); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, path, Options{})
	if got, want := record(t, s, a).Picture, (&Picture{Size: 5000, Sum: sha256.Sum256(imgA)}); !cmp.Equal(got, want) {
		t.Errorf("after reopen: Picture of a = %+v, want %+v", got, want)
	}
	if got, want := record(t, s, b).Picture, (&Picture{Size: 7000, Sum: sha256.Sum256(imgB), ID: "id-b"}); !cmp.Equal(got, want) {
		t.Errorf("after reopen: Picture of b = %+v, want %+v (no second upload)", got, want)
	}
	if st := s.Stats(); st.Pictures != 2 || st.PictureBytes != 12000 {
		t.Errorf("Stats() after reopen = %+v, want 2 pictures, 12000 bytes", st)
	}
	f, err := s.OpenPicture(a)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if !bytes.Equal(got, imgA) {
		t.Error("picture of a changed across reopen")
	}
}

func TestPicturePendingAtRestart(t *testing.T) {
	s, path := mustOpen(t, Options{})
	id := appendPictureEvent(t, s)
	s = reopen(t, s, path, Options{})
	if got, want := record(t, s, id).Picture, (&Picture{Err: PictureRestarted}); !cmp.Equal(got, want) {
		t.Errorf("after restart: Picture = %+v, want %+v", got, want)
	}
	if err := s.AttachPicture(context.Background(), id, bytes.NewReader(jpeg(10, 1))); !errors.Is(err, ErrNotPending) {
		t.Errorf("AttachPicture after restart = %v, want ErrNotPending", err)
	}
	// A new event of this run still takes its picture.
	id2 := appendPictureEvent(t, s)
	if err := s.AttachPicture(context.Background(), id2, bytes.NewReader(jpeg(10, 1))); err != nil {
		t.Errorf("AttachPicture of this run's event = %v", err)
	}
}

func TestFailPicture(t *testing.T) {
	s, _ := mustOpen(t, Options{})
	pending, attached := appendPictureEvent(t, s), appendPictureEvent(t, s)
	if err := s.AttachPicture(context.Background(), attached, bytes.NewReader(jpeg(10, 1))); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		id      uint64
		reason  string
		wantErr error
		want    *Picture
	}{
		{"pending", pending, "timeout", nil, &Picture{Err: "timeout"}},
		{"given up already", pending, "again", ErrNotPending, &Picture{Err: "timeout"}},
		{"attached, upload refused", attached, "upload refused: 413", nil, &Picture{Err: "upload refused: 413"}},
		{"unknown event", attached + 100, "x", ErrNotPending, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.FailPicture(tt.id, tt.reason)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("FailPicture = %v, want %v", err, tt.wantErr)
			}
			if tt.want == nil {
				return
			}
			if got := record(t, s, tt.id).Picture; !cmp.Equal(got, tt.want) {
				t.Errorf("Picture = %+v, want %+v", got, tt.want)
			}
		})
	}
	if _, err := os.Stat(s.pictureFile(attached)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("file of a failed picture: stat = %v, want it removed", err)
	}
	if st := s.Stats(); st.Pictures != 0 || st.PictureBytes != 0 {
		t.Errorf("Stats() = %+v, want an empty spool", st)
	}
}

func TestAttachPictureRefused(t *testing.T) {
	s, _ := mustOpen(t, Options{MaxPictureBytes: 1000})
	id := appendPictureEvent(t, s)
	tests := []struct {
		name string
		r    io.Reader
		want error
	}{
		{"too large", bytes.NewReader(jpeg(1001, 1)), ErrTooLarge},
		{"empty", bytes.NewReader(nil), ErrInvalid},
		{"read fails", io.MultiReader(bytes.NewReader(jpeg(10, 1)), errReader{}), errRead},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.AttachPicture(context.Background(), id, tt.r); !errors.Is(err, tt.want) {
				t.Fatalf("AttachPicture = %v, want %v", err, tt.want)
			}
			if got := record(t, s, id).Picture; !cmp.Equal(got, &Picture{Pending: true}) {
				t.Errorf("Picture = %+v, want still pending", got)
			}
			ents, _ := os.ReadDir(s.spoolDir())
			if len(ents) != 0 {
				t.Errorf("spool holds %d files, want none", len(ents))
			}
		})
	}
	if err := s.AttachPicture(context.Background(), id, bytes.NewReader(jpeg(1000, 1))); err != nil {
		t.Errorf("AttachPicture of exactly MaxPictureBytes = %v", err)
	}
}

var errRead = errors.New("camera hung up")

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errRead }

func TestPictureSpoolBound(t *testing.T) {
	const maxBytes = 64 << 10
	s, _ := mustOpen(t, Options{MaxBytes: maxBytes})
	var ids []uint64
	for i := range 5 {
		id := appendPictureEvent(t, s)
		ids = append(ids, id)
		if err := s.AttachPicture(context.Background(), id, bytes.NewReader(jpeg(20<<10, byte(i)))); err != nil {
			t.Fatalf("AttachPicture #%d = %v", i, err)
		}
		if st := s.Stats(); st.Bytes+st.PictureBytes > maxBytes {
			t.Fatalf("after picture #%d: outbox %d + spool %d bytes, over %d", i, st.Bytes, st.PictureBytes, maxBytes)
		}
	}
	// 5 × 20 KiB in 64 KiB: the two oldest went, their events stay.
	st := s.Stats()
	if st.Count != 5 || st.Pictures != 3 || st.PicturesDropped != 2 || st.Dropped != 0 {
		t.Errorf("Stats() = %+v, want 5 events, 3 pictures, 2 dropped, no event dropped", st)
	}
	for i, id := range ids {
		p := record(t, s, id).Picture
		_, statErr := os.Stat(s.pictureFile(id))
		if i < 2 {
			if !cmp.Equal(p, &Picture{Err: PictureDropped}) || !errors.Is(statErr, fs.ErrNotExist) {
				t.Errorf("picture #%d = %+v (file: %v), want dropped and removed", i, p, statErr)
			}
		} else if p.Size != 20<<10 || statErr != nil {
			t.Errorf("picture #%d = %+v (file: %v), want kept", i, p, statErr)
		}
	}
	// A picture larger than the room left goes at once, alone.
	big := appendPictureEvent(t, s)
	if err := s.AttachPicture(context.Background(), big, bytes.NewReader(jpeg(maxBytes, 9))); err != nil {
		t.Fatal(err)
	}
	if p := record(t, s, big).Picture; !cmp.Equal(p, &Picture{Err: PictureDropped}) {
		t.Errorf("picture larger than the bound = %+v, want dropped", p)
	}
}

// TestSpoolCleanedAtOpen covers a crash at each step of AttachPicture:
// before the rename (a temporary file), between the rename and the commit
// (a file whose record is still pending), and files that no event holds.
func TestSpoolCleanedAtOpen(t *testing.T) {
	s, path := mustOpen(t, Options{})
	kept, cut := appendPictureEvent(t, s), appendPictureEvent(t, s)
	if err := s.AttachPicture(context.Background(), kept, bytes.NewReader(jpeg(10, 1))); err != nil {
		t.Fatal(err)
	}
	dir := s.spoolDir()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	leftovers := []string{
		strings.TrimSuffix(filepath.Base(s.pictureFile(cut)), ".jpg") + ".tmp", // crash while writing
		filepath.Base(s.pictureFile(cut)),                                      // crash before the commit
		filepath.Base(s.pictureFile(cut + 1000)),                               // no such event
		"stray.txt",
	}
	for _, name := range leftovers {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s2, err := Open(path, Options{Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if want := []string{filepath.Base(s.pictureFile(kept))}; !cmp.Equal(names, want) {
		t.Errorf("spool after Open = %v, want %v", names, want)
	}
	if got := record(t, s2, cut).Picture; !cmp.Equal(got, &Picture{Err: PictureRestarted}) {
		t.Errorf("event whose attach was cut short: Picture = %+v, want %q", got, PictureRestarted)
	}
	if st := s2.Stats(); st.Pictures != 1 || st.PictureBytes != 10 {
		t.Errorf("Stats() = %+v, want 1 picture of 10 bytes", st)
	}
}

func TestPictureRecordFormats(t *testing.T) {
	at := time.Unix(1764150000, 5)
	params := []byte(`{"state":true}`)
	tests := []struct {
		name string
		pic  *Picture
	}{
		{"none (format 2)", nil},
		{"pending", &Picture{Pending: true}},
		{"attached", &Picture{Size: 123456, Sum: sha256.Sum256([]byte("x"))}},
		{"uploaded", &Picture{Size: 1, Sum: sha256.Sum256([]byte("y")), ID: "0123456789abcdef"}},
		{"failed", &Picture{Err: "timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := appendEvent(nil, "cam-1", "video/1", "motion", at, tt.pic, params)
			wantFormat := byte(outboxFormat3)
			if tt.pic == nil {
				wantFormat = outboxFormat2
			}
			if b[0] != wantFormat {
				t.Errorf("format = %d, want %d", b[0], wantFormat)
			}
			rec, err := decodeEvent(1, b)
			if err != nil {
				t.Fatal(err)
			}
			want := Record{ID: 1, Dev: "cam-1", Resource: "video/1", Name: "motion", Params: params, At: at, Picture: tt.pic}
			if diff := cmp.Diff(want, rec); diff != "" {
				t.Errorf("decodeEvent mismatch (-want +got):\n%s", diff)
			}
		})
	}
	for _, bad := range [][]byte{
		{picPending | picErr, 1, 'x'},
		{0x80},
		{picAttached, 0},
		{picID, 0},
	} {
		b := appendEvent(nil, "", "r", "n", at, nil, nil)
		b[0] = outboxFormat3
		b = append(b, bad...)
		if _, err := decodeEvent(1, b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("decodeEvent with picture state %x = %v, want ErrCorrupt", bad, err)
		}
	}
}
