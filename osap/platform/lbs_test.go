package platform

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/osapgw/osapgw/internal/leaktest"
	"github.com/osapgw/osapgw/osap"
)

// logRecorder is a slog handler that keeps every record for assertions.
type logRecorder struct {
	mu   sync.Mutex
	recs []map[string]any
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithGroup(string) slog.Handler            { return h }
func (h *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &attrHandler{h: h, attrs: as}
}
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	return h.handle(r, nil)
}
func (h *logRecorder) handle(r slog.Record, attrs []slog.Attr) error {
	m := map[string]any{"msg": r.Message, "level": r.Level.String()}
	for _, a := range attrs {
		m[a.Key] = a.Value.Any()
	}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.Any(); return true })
	h.mu.Lock()
	h.recs = append(h.recs, m)
	h.mu.Unlock()
	return nil
}

type attrHandler struct {
	h     *logRecorder
	attrs []slog.Attr
}

func (a *attrHandler) Enabled(context.Context, slog.Level) bool { return true }
func (a *attrHandler) WithGroup(string) slog.Handler            { return a }
func (a *attrHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &attrHandler{h: a.h, attrs: append(append([]slog.Attr(nil), a.attrs...), as...)}
}
func (a *attrHandler) Handle(_ context.Context, r slog.Record) error { return a.h.handle(r, a.attrs) }

// find returns the records with message msg.
func (h *logRecorder) find(msg string) []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]any
	for _, r := range h.recs {
		if r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

// waitLog waits until a record with msg and the given status is logged;
// the server logs after it answers, so the client may return first.
func (h *logRecorder) waitLog(t *testing.T, msg string, status int) map[string]any {
	t.Helper()
	for range 500 {
		for _, r := range h.find(msg) {
			if status < 0 || fmt.Sprint(r["status"]) == fmt.Sprint(status) {
				return r
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no log %q with status %d; have %v", msg, status, h.recs)
	return nil
}

type fakeDAS struct {
	url string
	n   int
}

func (d *fakeDAS) URL() string     { return d.url }
func (d *fakeDAS) Registered() int { return d.n }

type testLBS struct {
	addr string
	reg  *Registry
	logs *logRecorder
	lbs  *LBS
}

// startLBS runs an LBS on 127.0.0.1 until the test ends, and checks that
// Serve returned and no goroutine was left behind.
func startLBS(t *testing.T, cfg LBSConfig) *testLBS {
	t.Helper()
	leaktest.Check(t)
	if cfg.Registry == nil {
		reg, err := NewRegistry(filepath.Join(t.TempDir(), "state.json"))
		if err != nil {
			t.Fatal(err)
		}
		reg.Add("GW1", "ABCDEF")
		cfg.Registry = reg
	}
	logs := &logRecorder{}
	cfg.Logger = slog.New(logs)
	if cfg.DAS == nil {
		cfg.DAS = []AccessService{&fakeDAS{url: "mqtt://127.0.0.1:1883"}}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	lbs := NewLBS(cfg)
	done := make(chan error, 1)
	go func() { done <- lbs.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve = %v", err)
		}
	})
	return &testLBS{addr: ln.Addr().String(), reg: cfg.Registry, logs: logs, lbs: lbs}
}

func newClient(t *testing.T, addr string, mod func(*osap.ClientConfig)) (*osap.Client, *logRecorder) {
	t.Helper()
	logs := &logRecorder{}
	cfg := osap.ClientConfig{Addr: addr, Serial: "GW1", VerificationCode: "ABCDEF", Logger: slog.New(logs),
		DeviceInfo: osap.DeviceInfo{Model: "test", Firmware: "0"}}
	if mod != nil {
		mod(&cfg)
	}
	c, err := osap.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, logs
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestFirstAuthThenReauth(t *testing.T) {
	s := startLBS(t, LBSConfig{SessionLifetime: time.Hour})
	c, _ := newClient(t, s.addr, nil)
	ctx := testCtx(t)
	cr, err := c.Authenticate(ctx, nil)
	if err != nil {
		t.Fatalf("first Authenticate = %v", err)
	}
	if cr.DevID == "" || len(cr.MasterKey) != osap.KeySize || cr.Suite != osap.SuiteAESGCM || cr.Lifetime != time.Hour || cr.DASAddress != "mqtt://127.0.0.1:1883" {
		t.Fatalf("first Authenticate = %+v", cr)
	}
	s.logs.waitLog(t, "device authenticated", 0)
	suite, keys, err := s.reg.SessionKeys(cr.DevID)
	if err != nil || suite != cr.Suite || len(keys) != 1 || !bytes.Equal(keys[0], cr.SessionKey) {
		t.Fatalf("SessionKeys = %v %x %v, want %v [%x]", suite, keys, err, cr.Suite, cr.SessionKey)
	}
	if serial, ok := s.reg.DeviceSerial(cr.DevID); !ok || serial != "GW1" {
		t.Errorf("DeviceSerial = %q, %v", serial, ok)
	}
	if ds := s.reg.Devices(); len(ds) != 1 || ds[0].DevID != cr.DevID || ds[0].Info.Model != "test" || ds[0].Info.Kind != "gateway" || ds[0].Suite != cr.Suite {
		t.Errorf("Devices = %+v, want GW1 as %q with the device info of 0x7", ds, cr.DevID)
	}
	cr2, err := c.Authenticate(ctx, &cr)
	if err != nil {
		t.Fatalf("re-Authenticate = %v", err)
	}
	if cr2.DevID != cr.DevID || !bytes.Equal(cr2.MasterKey, cr.MasterKey) || bytes.Equal(cr2.SessionKey, cr.SessionKey) {
		t.Fatalf("re-Authenticate = %+v, want the same DevID and master key and a new session key", cr2)
	}
	_, keys, err = s.reg.SessionKeys(cr.DevID)
	if err != nil || len(keys) != 2 || !bytes.Equal(keys[0], cr2.SessionKey) || !bytes.Equal(keys[1], cr.SessionKey) {
		t.Fatalf("SessionKeys after refresh = %x, %v, want [new, previous]", keys, err)
	}
	// The registry survives a restart.
	reg2, err := NewRegistry(s.reg.statePath)
	if err != nil {
		t.Fatal(err)
	}
	_, keys, err = reg2.SessionKeys(cr.DevID)
	if err != nil || len(keys) != 2 || !bytes.Equal(keys[0], cr2.SessionKey) {
		t.Fatalf("SessionKeys after reload = %x, %v", keys, err)
	}
	fi, err := os.Stat(s.reg.statePath)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode = %v, %v, want 0600", fi.Mode(), err)
	}
}
