package upstream

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osapgw/osapgw/internal/leaktest"
	"github.com/osapgw/osapgw/osap"
	emulator "github.com/osapgw/osapgw/osap/platform"
)

// emulatorSession runs the platform emulator (LBS, DAS, picture service on
// its API) and a session that authenticates with it, until the test ends;
// it returns once the session holds credentials.
func emulatorSession(t *testing.T, cfg emulator.EmulatorConfig) (*emulator.Emulator, *Session) {
	t.Helper()
	cfg.StateDir = t.TempDir()
	cfg.HTTPListen = "127.0.0.1:0"
	cfg.Logger = testLogger(t)
	e, err := emulator.NewEmulator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.Registry.Add("GW-PIC-1", "PIC-CODE-1")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("emulator Run = %v", err)
		}
	})
	c, err := osap.NewClient(osap.ClientConfig{Addr: e.LBSAddr(), Serial: "GW-PIC-1", VerificationCode: "PIC-CODE-1",
		DeviceInfo: osap.DeviceInfo{Model: "test", Firmware: "0"}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{BackoffMin: 20 * time.Millisecond, BackoffMax: 2 * time.Second, Logger: testLogger(t)}, c, &memStore{}, newRecorder())
	runSession(t, s)
	waitUntil(t, "the session's credentials", func() bool { return s.DevID() != "" && s.Connected() })
	return e, s
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting %v for %s", waitFor, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func picture(s string) ([]byte, [32]byte) {
	b := append([]byte{0xff, 0xd8}, s...)
	return b, sha256.Sum256(b)
}

// TestUploadPictureToEmulator uploads to the emulator's picture service
// over HTTP: stored, retried through 503s with fresh tokens, refused for
// good on 401 and 413.
func TestUploadPictureToEmulator(t *testing.T) {
	leaktest.Check(t)
	e, s := emulatorSession(t, emulator.EmulatorConfig{})
	if got, want := s.PictureService(), e.PictureURL(); got != want || want == "" {
		t.Fatalf("PictureService() = %q, want the emulator's %q", got, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	body, sum := picture("first")
	id, err := s.UploadPicture(ctx, "cam-1", bytes.NewReader(body), int64(len(body)), sum)
	if err != nil || id != osap.PictureID(sum) {
		t.Fatalf("UploadPicture = %q, %v, want %q", id, err, osap.PictureID(sum))
	}
	pics := e.Pictures.Pictures(s.DevID())
	if len(pics) != 1 || pics[0].ID != id || pics[0].Dev != "cam-1" || pics[0].Size != int64(len(body)) {
		t.Fatalf("emulator holds %+v, want %s of cam-1", pics, id)
	}

	t.Run("503 then stored", func(t *testing.T) {
		e.Pictures.SetFault(emulator.PictureFault{Status: 503, RetryAfter: time.Second, Count: 2})
		body, sum := picture("after 503")
		start := time.Now()
		id, err := s.UploadPicture(ctx, "cam-1", bytes.NewReader(body), int64(len(body)), sum)
		if err != nil || id != osap.PictureID(sum) {
			t.Fatalf("UploadPicture = %q, %v", id, err)
		}
		if n := e.Pictures.Answered(503); n != 2 {
			t.Errorf("the service answered 503 %d times, want 2", n)
		}
		if d := time.Since(start); d < 2*time.Second {
			t.Errorf("UploadPicture took %v through two Retry-After: 1, want 2s or more", d)
		}
	})
	for _, status := range []int{401, 400, 413} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			e.Pictures.SetFault(emulator.PictureFault{Status: status})
			defer e.Pictures.SetFault(emulator.PictureFault{})
			before := e.Pictures.Answered(status)
			body, sum := picture("refused")
			_, err := s.UploadPicture(ctx, "cam-1", bytes.NewReader(body), int64(len(body)), sum)
			var pe *PictureError
			if !errors.Is(err, ErrPictureRefused) || !errors.As(err, &pe) || pe.Status != status {
				t.Fatalf("UploadPicture = %v, want a PictureError %d", err, status)
			}
			if n := e.Pictures.Answered(status) - before; n != 1 {
				t.Errorf("%d tries, want 1", n)
			}
		})
	}
	t.Run("over the limit", func(t *testing.T) {
		before := e.Pictures.Answered(413)
		_, err := s.UploadPicture(ctx, "cam-1", bytes.NewReader(nil), osap.PictureMaxSize+1, sum)
		if !errors.Is(err, ErrPictureRefused) || e.Pictures.Answered(413) != before {
			t.Fatalf("UploadPicture of 8 MiB + 1 = %v (the service answered 413 %d times), want ErrPictureRefused without a try",
				err, e.Pictures.Answered(413)-before)
		}
	})
}

func TestUploadPictureNoService(t *testing.T) {
	leaktest.Check(t)
	_, s := emulatorSession(t, emulator.EmulatorConfig{NoPictures: true})
	body, sum := picture("x")
	_, err := s.UploadPicture(context.Background(), "", bytes.NewReader(body), int64(len(body)), sum)
	if !errors.Is(err, ErrNoPictureService) {
		t.Fatalf("UploadPicture = %v, want ErrNoPictureService", err)
	}
}

// fakePictures is a picture service that answers with the statuses it is
// given, in turn (the last repeats), and records what it receives.
type fakePictures struct {
	mu       sync.Mutex
	statuses []int
	id       string // answered with 201; empty: the id of the body
	tokens   []string
	bodies   [][]byte
	lengths  []int64
}

func (f *fakePictures) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.tokens = append(f.tokens, r.Header.Get("Authorization"))
	f.bodies = append(f.bodies, b)
	f.lengths = append(f.lengths, r.ContentLength)
	status := f.statuses[min(len(f.tokens)-1, len(f.statuses)-1)]
	id := f.id
	f.mu.Unlock()
	if id == "" {
		id = osap.PictureID(sha256.Sum256(b))
	}
	switch status {
	case 201:
		w.WriteHeader(201)
		fmt.Fprintf(w, `{"picture":%q,"sha256":"","size":%d}`, id, len(b))
	case 503:
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(503)
		fmt.Fprint(w, `{"error":"busy"}`)
	default:
		w.WriteHeader(status)
		fmt.Fprint(w, `{"error":"no"}`)
	}
}

func fakeSession(t *testing.T, pictures string) *Session {
	t.Helper()
	a := &fakeAuth{das: "mqtt://127.0.0.1:1", pictures: pictures}
	s := newSession(t, a, &memStore{}, newRecorder(), time.Second)
	runSession(t, s)
	return s
}

// TestUploadPictureRetries: 5xx answers are tried again, each try with a
// fresh token and the whole body from its start.
func TestUploadPictureRetries(t *testing.T) {
	leaktest.Check(t)
	f := &fakePictures{statuses: []int{503, 500, 502, 201}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	s := fakeSession(t, srv.URL+"/base/")
	body, sum := picture("retried")
	r := bytes.NewReader(body)
	r.Seek(3, io.SeekStart) // the session rewinds it
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	id, err := s.UploadPicture(ctx, "cam-9", r, int64(len(body)), sum)
	if err != nil || id != osap.PictureID(sum) {
		t.Fatalf("UploadPicture = %q, %v", id, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.tokens) != 4 {
		t.Fatalf("%d tries, want 4", len(f.tokens))
	}
	seen := map[string]bool{}
	for i, tok := range f.tokens {
		if seen[tok] || !strings.HasPrefix(tok, "OSAP ") {
			t.Errorf("try %d: Authorization %q repeated or not OSAP", i, tok)
		}
		seen[tok] = true
		if !bytes.Equal(f.bodies[i], body) || f.lengths[i] != int64(len(body)) {
			t.Errorf("try %d sent %q (Content-Length %d), want %q", i, f.bodies[i], f.lengths[i], body)
		}
	}
}

func TestUploadPictureBadAnswers(t *testing.T) {
	leaktest.Check(t)
	tests := []struct {
		name string
		f    *fakePictures
	}{
		{"other id", &fakePictures{statuses: []int{201}, id: "00000000000000000000000000000000"}},
		{"404", &fakePictures{statuses: []int{404}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.f)
			defer srv.Close()
			s := fakeSession(t, srv.URL)
			body, sum := picture("x")
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			if _, err := s.UploadPicture(ctx, "", bytes.NewReader(body), int64(len(body)), sum); !errors.Is(err, ErrPictureRefused) {
				t.Fatalf("UploadPicture = %v, want ErrPictureRefused", err)
			}
		})
	}
}

// TestUploadPictureUnreachable: network errors are tried again until ctx
// ends; the error then says both.
func TestUploadPictureUnreachable(t *testing.T) {
	leaktest.Check(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	s := fakeSession(t, "http://"+addr+"/osap")
	body, sum := picture("x")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err = s.UploadPicture(ctx, "", bytes.NewReader(body), int64(len(body)), sum)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("UploadPicture = %v, want the deadline and the connection refused", err)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		v    string
		want time.Duration
	}{
		{"", 0}, {"0", 0}, {"7", 7 * time.Second}, {"-1", 0}, {"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.v, now); got != tt.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tt.v, got, tt.want)
		}
	}
}
