package onvif

import (
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

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/delivery"
	"github.com/osapgw/osapgw/model"
	"github.com/osapgw/osapgw/osap"
	sim "github.com/osapgw/osapgw/sim/onvif"
	"github.com/osapgw/osapgw/sim/onvif/onviftest"
	"github.com/osapgw/osapgw/store"
)

func TestSnapshotOnConfig(t *testing.T) {
	tests := []struct {
		name    string
		conf    string
		wantErr string
	}{
		{name: "motion and input", conf: `snapshot_on = ["motion", "digital_input"]`},
		{name: "every event", conf: `snapshot_on = ["motion", "tamper", "video_loss", "digital_input", "onvif.event"]`},
		{name: "unknown event", conf: `snapshot_on = ["motion", "smoke"]`, wantErr: `device "cam": snapshot_on: "smoke" is not an event of the camera`},
		{name: "twice", conf: `snapshot_on = ["motion", "motion"]`, wantErr: `device "cam": snapshot_on: "motion" named twice`},
		{name: "not a list", conf: `snapshot_on = "motion"`, wantErr: "snapshot_on"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New("cam", adapters.TOMLDecoder("url = \"http://127.0.0.1:1/onvif/device_service\"\n"+tt.conf), adapters.Env{})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New = %v, want success", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New = %v, want an error containing %q", err, tt.wantErr)
			}
			var fe *adapters.FieldError
			if tt.name != "not a list" && (!errors.As(err, &fe) || fe.Key != "snapshot_on") {
				t.Errorf("New = %#v, want a FieldError on snapshot_on", err)
			}
		})
	}
}

// TestSnapshotOnMotion: motion becoming true carries a picture function
// that fetches the camera's snapshot; motion ending carries none; an
// event snapshot_on does not name carries none.
func TestSnapshotOnMotion(t *testing.T) {
	cam := onviftest.Start(t, sim.Config{User: "admin", Password: "secret", Profiles: 1})
	a := newAdapter(t, "cam1", cam.URL(), `snapshot_on = ["motion"]`)
	rec := newRecorder()
	runAdapter(t, a, rec)
	rec.waitFor(t, "subscription", func() bool { return cam.Subscriptions() > 0 })
	cam.SetMotion(true)
	cam.SetInput(true)
	rec.waitFor(t, "motion and input", func() bool {
		return countEvents(rec.events, "video/1", EventMotion, true) == 1 && countEvents(rec.events, "device", EventDigitalInput, true) == 1
	})
	cam.SetMotion(false)
	rec.waitFor(t, "motion ended", func() bool { return countEvents(rec.events, "video/1", EventMotion, false) == 1 })
	rec.mu.Lock()
	evs := append([]model.EventOccurrence(nil), rec.events...)
	rec.mu.Unlock()
	for _, ev := range evs {
		want := ev.Event == EventMotion && ev.Params["state"] == true
		if (ev.Picture != nil) != want {
			t.Errorf("event %s %v: picture asked = %v, want %v", ev.Event, ev.Params, ev.Picture != nil, want)
		}
		if ev.Picture == nil {
			continue
		}
		rc, err := ev.Picture(context.Background())
		if err != nil {
			t.Fatalf("Picture() = %v", err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != string(cam.Snapshot()) {
			t.Errorf("picture of %d bytes, want the camera's snapshot of %d", len(b), len(cam.Snapshot()))
		}
	}
}

// uploader is a fake picture service.
type uploader struct {
	mu    sync.Mutex
	calls int
	err   error
}

func (u *uploader) UploadPicture(ctx context.Context, dev string, body io.ReadSeeker, size int64, sum [sha256.Size]byte) (string, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return "", err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.calls++
	if u.err != nil {
		return "", u.err
	}
	if int64(len(b)) != size || sha256.Sum256(b) != sum {
		return "", fmt.Errorf("%w: body does not match", delivery.ErrPictureRefused)
	}
	return osap.PictureID(sum), nil
}

// uploadingRecorder is a sink that can upload pictures, as the bridge is.
type uploadingRecorder struct {
	*recorder
	up *uploader
}

func (r uploadingRecorder) UploadPicture(ctx context.Context, dev string, body io.ReadSeeker, size int64, sum [sha256.Size]byte) (string, error) {
	id, err := r.up.UploadPicture(ctx, dev, body, size, sum)
	if errors.Is(err, delivery.ErrNoPictureService) {
		return "", adapters.ErrNoPictureService
	}
	return id, err
}

func TestSnapshotOperationUploads(t *testing.T) {
	cam := onviftest.Start(t, sim.Config{User: "admin", Password: "secret", Profiles: 1})
	sum := sha256.Sum256(cam.Snapshot())
	tests := []struct {
		name      string
		uploadErr error
		want      map[string]any // besides size and sha256
	}{
		{name: "uploaded", want: map[string]any{"picture": osap.PictureID(sum)}},
		{name: "no picture service", uploadErr: delivery.ErrNoPictureService, want: map[string]any{}},
		{name: "refused", uploadErr: fmt.Errorf("%w: 401", delivery.ErrPictureRefused), want: map[string]any{"picture_error": "picture refused: 401"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAdapter(t, "cam1", cam.URL(), "")
			sink := uploadingRecorder{newRecorder(), &uploader{err: tt.uploadErr}}
			runAdapter(t, a, sink)
			sink.waitFor(t, "online", func() bool { return len(sink.status) > 0 && sink.status[len(sink.status)-1].online })
			out, err := a.Invoke(context.Background(), "video/1", OpSnapshot, nil)
			if err != nil {
				t.Fatalf("snapshot: %v", err)
			}
			if out["size"] != int64(len(cam.Snapshot())) || out["sha256"] != fmt.Sprintf("%x", sum) {
				t.Errorf("snapshot = %v, want size and sha256 kept", out)
			}
			delete(out, "size")
			delete(out, "sha256")
			if fmt.Sprint(out) != fmt.Sprint(tt.want) {
				t.Errorf("snapshot output = %v, want %v", out, tt.want)
			}
		})
	}
}

// streamSink hands events to the event stream as the bridge does
// (Bridge.Events: Stream.Append), and keeps the rest.
type streamSink struct {
	*recorder
	s *delivery.Stream
}

func (k streamSink) Event(dev string, ev model.EventOccurrence) {
	k.s.Append(dev, []model.EventOccurrence{ev})
}

// session is the upstream as the event stream sees it.
type session struct {
	mu     sync.Mutex
	bodies []osap.EventReport
}

func (s *session) Publish(kind string, h osap.Header, body any, qos byte, done func(error)) error {
	r, ok := body.(osap.EventReport)
	if !ok {
		return fmt.Errorf("unexpected body %T", body)
	}
	b, _ := json.Marshal(r)
	var back osap.EventReport
	_ = json.Unmarshal(b, &back)
	s.mu.Lock()
	s.bodies = append(s.bodies, back)
	s.mu.Unlock()
	done(nil)
	return nil
}

func (s *session) Connected() bool { return true }

func (s *session) sent() []osap.EventReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]osap.EventReport(nil), s.bodies...)
}

// TestSnapshotOnThroughDelivery: a motion of the simulated camera reaches
// the platform with the id of its snapshot, uploaded before the event,
// and the event that follows it keeps its place.
func TestSnapshotOnThroughDelivery(t *testing.T) {
	cam := onviftest.Start(t, sim.Config{User: "admin", Password: "secret", Profiles: 1})
	st, err := store.Open(filepath.Join(t.TempDir(), "state", "osapgw.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	up := &uploader{}
	stream := delivery.New(delivery.Config{Pictures: up, PictureWait: 10 * time.Second}, st)
	sess := &session{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- stream.Run(ctx, sess) }()
	defer func() { cancel(); <-done }()
	stream.Connected()

	a := newAdapter(t, "cam1", cam.URL(), `snapshot_on = ["motion"]`)
	sink := streamSink{newRecorder(), stream}
	runAdapter(t, a, sink)
	sink.waitFor(t, "subscription", func() bool { return cam.Subscriptions() > 0 })
	cam.SetMotion(true)
	cam.SetMotion(false)
	// The camera first sends its current state (motion false, input
	// false), then the two changes.
	find := func(evs []osap.EventReport, state string) int {
		for i, r := range evs {
			if r.Event == EventMotion && strings.Contains(string(r.Params), state) {
				return i
			}
		}
		return -1
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := sess.sent()
		if i := find(got, "true"); i >= 0 && len(got) > i+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for motion and its end; got %+v", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
	got := sess.sent()
	i := find(got, "true")
	want := osap.PictureID(sha256.Sum256(cam.Snapshot()))
	if strings.Join(got[i].Pictures, ",") != want || got[i].PictureError != "" {
		t.Errorf("motion report = %+v, want picture %s", got[i], want)
	}
	if next := got[i+1]; next.Event != EventMotion || next.Pictures != nil || next.PictureError != "" || !strings.Contains(string(next.Params), "false") {
		t.Errorf("report after it = %+v, want motion ended, without picture, in its place", next)
	}
	for j, r := range got {
		if j != i && (r.Pictures != nil || r.PictureError != "") {
			t.Errorf("report %+v carries picture fields, want none", r)
		}
	}
	up.mu.Lock()
	calls := up.calls
	up.mu.Unlock()
	if calls != 1 {
		t.Errorf("%d uploads, want 1", calls)
	}
}
