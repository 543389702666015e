package delivery

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osapgw/osapgw/model"
	"github.com/osapgw/osapgw/osap"
	"github.com/osapgw/osapgw/store"
)

// fakeUploader is the picture service: it returns errs in turn, then ids
// made as the service makes them.
type fakeUploader struct {
	mu     sync.Mutex
	errs   []error
	calls  int
	bodies [][]byte
}

func (u *fakeUploader) UploadPicture(ctx context.Context, dev string, body io.ReadSeeker, size int64, sum [sha256.Size]byte) (string, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return "", err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.calls++
	if len(u.errs) > 0 {
		err := u.errs[0]
		u.errs = u.errs[1:]
		return "", err
	}
	if int64(len(b)) != size || sha256.Sum256(b) != sum {
		return "", fmt.Errorf("%w: body of %d bytes does not match size %d or hash", ErrPictureRefused, len(b), size)
	}
	u.bodies = append(u.bodies, b)
	return osap.PictureID(sum), nil
}

func (u *fakeUploader) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.calls
}

// reports decodes the bodies published.
func reports(t *testing.T, ps []published) []osap.EventReport {
	t.Helper()
	var out []osap.EventReport
	for _, p := range ps {
		var r osap.EventReport
		if err := json.Unmarshal(p.body, &r); err != nil {
			t.Fatalf("body %s: %v", p.body, err)
		}
		out = append(out, r)
	}
	return out
}

var img = bytes.Repeat([]byte("\xff\xd8jpeg"), 3000)

// picture returns a capture function that signals started, then waits
// for release (nil: at once) and returns data or err.
func picture(data []byte, err error, started chan<- struct{}, release <-chan struct{}) model.PictureFunc {
	return func(ctx context.Context) (io.ReadCloser, error) {
		if started != nil {
			close(started)
		}
		if release != nil {
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(data)), nil
	}
}

func motion(at time.Time, pic model.PictureFunc) model.EventOccurrence {
	return model.EventOccurrence{Resource: "video/1", Event: "motion", Params: map[string]any{"state": true}, At: at, Picture: pic}
}

func TestPictureKeepsOrder(t *testing.T) {
	st := openStore(t, store.Options{})
	up := &fakeUploader{}
	h := newHarness(t, Config{Pictures: up, PictureWait: time.Minute}, st, nil)
	h.run()
	h.up.set(true, false)
	h.s.Connected()
	started, release := make(chan struct{}), make(chan struct{})
	now := time.Now()
	if n, err := h.s.Append("cam-1", []model.EventOccurrence{motion(now, picture(img, nil, started, release))}); n != 1 || err != nil {
		t.Fatalf("Append = %d, %v", n, err)
	}
	h.s.Append("cam-1", []model.EventOccurrence{tick(1, now)})
	<-started
	if got := len(h.up.sent()); got != 0 {
		t.Fatalf("%d events sent while the first one's picture is being taken, want 0", got)
	}
	close(release)
	waitFor(t, "2 events", func() bool { return len(h.up.sent()) >= 2 })
	got := reports(t, h.up.sent())
	want := osap.PictureID(sha256.Sum256(img))
	if got[0].Event != "motion" || len(got[0].Pictures) != 1 || got[0].Pictures[0] != want || got[0].PictureError != "" {
		t.Errorf("first report = %+v, want motion with picture %s", got[0], want)
	}
	if got[1].Event != "overheat" || got[1].Pictures != nil || got[1].PictureError != "" {
		t.Errorf("second report = %+v, want overheat without picture", got[1])
	}
	if len(up.bodies) != 1 || !bytes.Equal(up.bodies[0], img) {
		t.Errorf("uploaded %d pictures, want the one taken", len(up.bodies))
	}
	waitFor(t, "the outbox and spool to empty", func() bool {
		s := st.Stats()
		return s.Count == 0 && s.Pictures == 0
	})
}

func TestPictureErrors(t *testing.T) {
	tests := []struct {
		name     string
		pic      model.PictureFunc
		uploader *fakeUploader // nil: no picture service
		want     string        // picture_error, or "" for a picture
		calls    int
	}{
		{name: "camera slow", pic: picture(img, nil, nil, make(chan struct{})), uploader: &fakeUploader{}, want: "timeout"},
		{name: "camera fails", pic: picture(nil, errors.New("GET snapshot: HTTP 500"), nil, nil), uploader: &fakeUploader{}, want: "take picture: GET snapshot: HTTP 500"},
		{name: "no picture service configured", pic: picture(img, nil, nil, nil), want: "no picture service"},
		{name: "no picture service offered", pic: picture(img, nil, nil, nil), uploader: &fakeUploader{errs: []error{fmt.Errorf("upload: %w", ErrNoPictureService)}}, want: "no picture service", calls: 1},
		{name: "refused for good", pic: picture(img, nil, nil, nil), uploader: &fakeUploader{errs: []error{fmt.Errorf("%w: 413 too large", ErrPictureRefused)}}, want: "upload: picture refused: 413 too large", calls: 1},
		{name: "passing errors retried", pic: picture(img, nil, nil, nil), uploader: &fakeUploader{errs: []error{errors.New("503 busy"), errors.New("connection reset")}}, calls: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := openStore(t, store.Options{})
			cfg := Config{PictureWait: 300 * time.Millisecond, uploadRetry: time.Millisecond}
			if tt.uploader != nil {
				cfg.Pictures = tt.uploader
			}
			h := newHarness(t, cfg, st, nil)
			h.run()
			h.up.set(true, false)
			h.s.Connected()
			now := time.Now()
			h.s.Append("cam-1", []model.EventOccurrence{motion(now, tt.pic), tick(1, now)})
			waitFor(t, "2 events", func() bool { return len(h.up.sent()) >= 2 })
			got := reports(t, h.up.sent())
			if got[0].Event != "motion" || got[1].Event != "overheat" {
				t.Fatalf("sent %s then %s, want motion then overheat", got[0].Event, got[1].Event)
			}
			if got[0].PictureError != tt.want || (tt.want == "") != (len(got[0].Pictures) == 1) {
				t.Errorf("report = %+v, want picture_error %q", got[0], tt.want)
			}
			if tt.uploader != nil && tt.uploader.count() != tt.calls {
				t.Errorf("uploads tried %d times, want %d", tt.uploader.count(), tt.calls)
			}
		})
	}
}

func TestPictureAfterRestart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state", "osapgw.db")
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now()
	ids, err := st.AppendBatch(ctx, []store.Event{
		{Dev: "cam-1", Resource: "video/1", Name: "motion", At: now, Picture: true}, // never taken
		{Dev: "cam-1", Resource: "video/1", Name: "motion", At: now, Picture: true}, // uploaded
		{Dev: "cam-1", Resource: "video/1", Name: "motion", At: now, Picture: true}, // taken, not uploaded
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids[1:] {
		if err := st.AttachPicture(ctx, id, bytes.NewReader(img)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.SetPictureID(ids[1], "before-restart"); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st = openStoreAt(t, path)
	up := &fakeUploader{}
	h := newHarness(t, Config{Pictures: up}, st, nil)
	h.run()
	h.up.set(true, false)
	h.s.Connected()
	waitFor(t, "3 events", func() bool { return len(h.up.sent()) >= 3 })
	got := reports(t, h.up.sent())
	if got[0].PictureError != store.PictureRestarted {
		t.Errorf("pending at restart: report = %+v, want picture_error %q", got[0], store.PictureRestarted)
	}
	if strings.Join(got[1].Pictures, ",") != "before-restart" {
		t.Errorf("uploaded before restart: report = %+v, want its stored id", got[1])
	}
	if want := osap.PictureID(sha256.Sum256(img)); strings.Join(got[2].Pictures, ",") != want {
		t.Errorf("taken before restart: report = %+v, want picture %s", got[2], want)
	}
	if up.count() != 1 {
		t.Errorf("%d uploads, want 1 (the picture uploaded before the restart is not uploaded again)", up.count())
	}
	waitFor(t, "the spool to empty", func() bool { return st.Stats().Pictures == 0 })
}

func openStoreAt(t *testing.T, path string) *store.Store {
	t.Helper()
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestPictureUploadWaitsForTheSession: an upload that fails because the
// session went down is tried again once it is back, not given up.
func TestPictureUploadWaitsForTheSession(t *testing.T) {
	st := openStore(t, store.Options{})
	down := &downUploader{up: &fakeUploader{}}
	h := newHarness(t, Config{Pictures: down, uploadRetry: time.Millisecond}, st, nil)
	down.h = h
	h.run()
	h.up.set(true, false)
	h.s.Connected()
	h.s.Append("cam-1", []model.EventOccurrence{motion(time.Now(), picture(img, nil, nil, nil))})
	waitFor(t, "the session to drop during the upload", func() bool { return down.dropped() })
	h.up.set(true, false)
	h.s.Connected()
	waitFor(t, "1 event", func() bool { return len(h.up.sent()) >= 1 })
	if got := reports(t, h.up.sent())[0]; len(got.Pictures) != 1 || got.PictureError != "" {
		t.Errorf("report = %+v, want the picture", got)
	}
}

// downUploader drops the session at its first upload and fails it.
type downUploader struct {
	up   *fakeUploader
	h    *harness
	mu   sync.Mutex
	done bool
}

func (d *downUploader) UploadPicture(ctx context.Context, dev string, body io.ReadSeeker, size int64, sum [sha256.Size]byte) (string, error) {
	d.mu.Lock()
	first := !d.done
	d.done = true
	d.mu.Unlock()
	if first {
		d.h.up.set(false, false)
		d.h.s.Disconnected()
		return "", errors.New("session closed")
	}
	return d.up.UploadPicture(ctx, dev, body, size, sum)
}

func (d *downUploader) dropped() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.done
}

// TestPicturesOfCamerasFiringAtOnce: more cameras fire at once than
// pictures are taken at once; the others wait their turn, and every
// event goes with its picture.
func TestPicturesOfCamerasFiringAtOnce(t *testing.T) {
	st := openStore(t, store.Options{})
	up := &fakeUploader{}
	h := newHarness(t, Config{Pictures: up, PictureWait: time.Minute, MaxCaptures: 2}, st, nil)
	h.run()
	h.up.set(true, false)
	h.s.Connected()
	release := make(chan struct{})
	now := time.Now()
	const cameras = 12
	for i := range cameras {
		data := append([]byte(fmt.Sprintf("camera %d ", i)), img...)
		if n, err := h.s.Append(fmt.Sprintf("cam-%d", i), []model.EventOccurrence{motion(now, picture(data, nil, nil, release))}); n != 1 || err != nil {
			t.Fatalf("Append = %d, %v", n, err)
		}
	}
	close(release)
	waitFor(t, "every camera's event", func() bool { return len(h.up.sent()) >= cameras })
	for i, r := range reports(t, h.up.sent()) {
		if len(r.Pictures) != 1 || r.PictureError != "" {
			t.Errorf("report %d = %+v, want one picture and no error", i, r)
		}
	}
}
