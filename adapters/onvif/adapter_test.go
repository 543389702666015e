package onvif

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io/fs"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/classes"
	"github.com/osapgw/osapgw/model"
	sim "github.com/osapgw/osapgw/sim/onvif"
	"github.com/osapgw/osapgw/sim/onvif/onviftest"
)

func TestSampleConf(t *testing.T) {
	text := strings.Replace(sampleConf, "\n[[device]]\n", "\n", 1)
	var cfg Config
	if err := adapters.TOMLDecoder(text).Decode(&cfg); err != nil {
		t.Fatalf("sample.conf does not decode: %v", err)
	}
	if err := cfg.validate("cam"); err != nil {
		t.Fatalf("sample.conf does not validate: %v", err)
	}
	if cfg.URL == "" || cfg.Username == "" || cfg.Timeout != 10*time.Second || !cfg.events() || !cfg.hostRewrite() {
		t.Errorf("sample.conf decoded to %+v", cfg)
	}
	k, ok := adapters.Lookup(Kind)
	if !ok || k.Sample != sampleConf {
		t.Errorf("kind %q not registered with its sample", Kind)
	}
}

func TestNewConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	open := filepath.Join(dir, "open")
	if err := os.WriteFile(good, []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(open, []byte("pw\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		conf    string
		wantErr string // substring; "" for success
	}{
		{name: "minimal", conf: `url = "http://127.0.0.1:1/onvif/device_service"`},
		{name: "full", conf: `url = "https://127.0.0.1:1/x"` + "\nusername = \"a\"\npassword_file = \"" + good + "\"\ntimeout = \"3s\"\npoll = \"5s\"\nevents = false\nhost_rewrite = false\ninsecure_tls = true"},
		{name: "no url", conf: `username = "a"`, wantErr: "url: missing"},
		{name: "bad scheme", conf: `url = "rtsp://1.2.3.4/"`, wantErr: "not an http(s) address"},
		{name: "unknown key", conf: `url = "http://h/"` + "\nport = 80", wantErr: "unknown keys: port"},
		{name: "secret readable by others", conf: `url = "http://h/"` + "\nusername = \"a\"\npassword_file = \"" + open + "\"", wantErr: "accessible by others"},
		{name: "short poll", conf: `url = "http://h/"` + "\npoll = \"10ms\"", wantErr: "poll"},
		{name: "tls both", conf: `url = "https://h/"` + "\ninsecure_tls = true\nca_file = \"/x\"", wantErr: "set both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New("cam", adapters.TOMLDecoder(tt.conf), adapters.Env{})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New = %v, want success", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestMissingPasswordFile: a password file that does not exist yet is a
// warning, not an error; the camera is reported offline with the reason
// until the file appears, and then connects without a restart.
func TestMissingPasswordFile(t *testing.T) {
	cam := onviftest.Start(t, sim.Config{User: "admin", Password: "secret", Name: "Gate", Serial: "S1", Profiles: 1})
	pw := filepath.Join(t.TempDir(), "pw")
	conf := "url = \"" + cam.URL() + "\"\nusername = \"admin\"\npassword_file = \"" + pw + "\"\ntimeout = \"5s\"\n"
	a, err := New("cam", adapters.TOMLDecoder(conf), adapters.Env{})
	if err != nil {
		t.Fatalf("New with a missing password file = %v, want no error", err)
	}
	w := a.Warnings()
	var fe *adapters.FieldError
	if len(w) != 1 || !errors.As(w[0], &fe) || fe.Key != "password_file" {
		t.Fatalf("Warnings() = %v, want one about password_file", w)
	}
	if want := `device "cam": password_file: ` + pw + ` does not exist yet: the camera stays offline with this error until it does (write the password there, mode 0600)`; w[0].Error() != want {
		t.Errorf("warning = %q, want %q", w[0], want)
	}
	rec := newRecorder()
	runAdapter(t, a, rec)
	rec.waitFor(t, "offline status naming the password file", func() bool {
		return len(rec.status) > 0 && !rec.status[0].online && rec.status[0].err != nil &&
			errors.Is(rec.status[0].err, fs.ErrNotExist) && strings.Contains(rec.status[0].err.Error(), "password_file")
	})
	if err := os.WriteFile(pw, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "online once the file exists", func() bool {
		return len(rec.status) > 0 && rec.status[len(rec.status)-1].online
	})
}

func TestDescribeAndGet(t *testing.T) {
	cam := onviftest.Start(t, sim.Config{User: "admin", Password: "secret", Name: "Gate", Serial: "S123", Profiles: 2})
	a := newAdapter(t, "cam1", cam.URL(), "")
	ctx := context.Background()
	dev, err := a.Describe(ctx)
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	if err := dev.Validate(); err != nil {
		t.Fatalf("model does not validate: %v", err)
	}
	if dev.Model != "Gate" || dev.Serial != "S123" || dev.Manufacturer != "OSAPGW Simulators" || dev.Firmware != "1.2.3" {
		t.Errorf("device = %+v", dev)
	}
	var names []string
	for _, r := range dev.Resources {
		names = append(names, r.Name)
	}
	if got, want := strings.Join(names, ","), "device,video/1,video/2,ptz/1"; got != want {
		t.Errorf("resources = %s, want %s", got, want)
	}
	v1, _ := dev.Resource("video/1")
	if at, ok := v1.Attribute("frame_rate"); !ok || !at.Writable {
		t.Errorf("video/1 frame_rate = %+v, want a writable attribute", at)
	}
	for _, r := range dev.Resources {
		if want := map[bool]string{true: classes.IPCamera.ID}[strings.HasPrefix(r.Name, "video/")]; r.Class != want {
			t.Errorf("%s: class = %q, want %q", r.Name, r.Class, want)
		}
		if err := classes.Check(&r); err != nil {
			t.Errorf("%s: %v", r.Name, err)
		}
	}
	p1, _ := dev.Resource("ptz/1")
	for _, op := range []string{OpContinuousMove, OpStop, OpAbsoluteMove, OpRelativeMove, OpGotoPreset, OpSetPreset} {
		if _, ok := p1.Operation(op); !ok {
			t.Errorf("ptz/1 has no operation %q", op)
		}
	}
	vals, err := a.Get(ctx, "video/2", nil)
	if err != nil {
		t.Fatalf("Get(video/2): %v", err)
	}
	checks := map[string]any{"profile": "profile_2", "resolution": "960x540", "width": int64(960), "encoding": "H264", "frame_rate": int64(25), "bitrate": int64(2048)}
	for k, want := range checks {
		if got := vals[k].V; got != want {
			t.Errorf("video/2 %s = %v (%T), want %v", k, got, got, want)
		}
	}
	if u, _ := vals["stream_uri"].V.(string); !strings.HasPrefix(u, "rtsp://127.0.0.1:554/stream2") {
		t.Errorf("stream_uri = %q", u)
	}
	if _, err := a.Get(ctx, "video/9", nil); !errors.Is(err, adapters.ErrNotFound) {
		t.Errorf("Get(video/9) = %v, want ErrNotFound", err)
	}
	if _, err := a.Get(ctx, "device", []string{"nope"}); !errors.Is(err, adapters.ErrNotFound) {
		t.Errorf("Get(device, nope) = %v, want ErrNotFound", err)
	}
	got, err := a.Get(ctx, "device", []string{"serial"})
	if err != nil || got["serial"].V != "S123" || len(got) != 1 {
		t.Errorf("Get(device, serial) = %v, %v", got, err)
	}
}

func TestSetEncoder(t *testing.T) {
	cam := onviftest.Start(t, sim.Config{User: "admin", Password: "secret"})
	a := newAdapter(t, "cam1", cam.URL(), "")
	ctx := context.Background()
	if err := a.Set(ctx, "video/1", map[string]model.Value{"frame_rate": {V: int64(12)}, "bitrate": {V: float64(1500)}}); err != nil {
		t.Fatalf("Set: %v", err)
	}
	vals, err := a.Get(ctx, "video/1", []string{"frame_rate", "bitrate"})
	if err != nil {
		t.Fatal(err)
	}
	if vals["frame_rate"].V != int64(12) || vals["bitrate"].V != int64(1500) {
		t.Errorf("after Set: %v", vals)
	}
	tests := []struct {
		name     string
		resource string
		values   map[string]model.Value
		want     error
	}{
		{"read-only", "video/1", map[string]model.Value{"encoding": {V: "MJPEG"}}, adapters.ErrNotWritable},
		{"unknown", "video/1", map[string]model.Value{"nope": {V: 1}}, adapters.ErrNotFound},
		{"out of range", "video/1", map[string]model.Value{"frame_rate": {V: int64(500)}}, adapters.ErrBadRequest},
		{"wrong type", "video/1", map[string]model.Value{"bitrate": {V: "fast"}}, adapters.ErrBadRequest},
		{"camera refuses", "video/1", map[string]model.Value{"frame_rate": {V: int64(60)}}, adapters.ErrBadRequest},
		{"no resource", "video/7", map[string]model.Value{"frame_rate": {V: int64(5)}}, adapters.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := a.Set(ctx, tt.resource, tt.values); !errors.Is(err, tt.want) {
				t.Errorf("Set = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestPTZ(t *testing.T) {
	cam := onviftest.Start(t, sim.Config{User: "admin", Password: "secret", Auth: sim.AuthUsernameToken})
	a := newAdapter(t, "cam1", cam.URL(), "")
	ctx := context.Background()
	inv := func(op string, in map[string]any) map[string]any {
		t.Helper()
		out, err := a.Invoke(ctx, "ptz/1", op, in)
		if err != nil {
			t.Fatalf("Invoke(%s, %v): %v", op, in, err)
		}
		return out
	}
	// This camera protects its snapshot with Basic.
	if out, err := a.Invoke(ctx, "video/1", OpSnapshot, nil); err != nil || out["size"] != int64(len(cam.Snapshot())) {
		t.Errorf("snapshot with Basic = %v, %v", out, err)
	}
	inv(OpAbsoluteMove, map[string]any{"pan": 0.5, "tilt": -0.25, "zoom": 0.5})
	if p, tl, z := cam.PTZPosition(); p != 0.5 || tl != -0.25 || z != 0.5 {
		t.Fatalf("after absolute move: %v %v %v", p, tl, z)
	}
	inv("relative_move", map[string]any{"pan": -0.25}) // without the "ptz." prefix, as design.md writes it
	if p, _, _ := cam.PTZPosition(); p != 0.25 {
		t.Fatalf("after relative move pan = %v, want 0.25", p)
	}
	out := inv(OpSetPreset, map[string]any{"name": "Door"})
	token, _ := out["preset"].(string)
	if token == "" {
		t.Fatalf("set_preset returned %v", out)
	}
	inv(OpContinuousMove, map[string]any{"pan": 1.0})
	// The head moves until stopped: wait until the camera reports it moved.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if p, _, _ := cam.PTZPosition(); p > 0.25 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the head never moved under continuous move")
		}
	}
	inv(OpStop, nil)
	vals, err := a.Get(ctx, "ptz/1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if pan := vals["pan"].V.(float64); pan <= 0.25 || vals["moving"].V != false {
		t.Errorf("after continuous move and stop: pan %v moving %v", pan, vals["moving"].V)
	}
	presets := vals["presets"].V.([]any)
	if len(presets) != 2 {
		t.Errorf("presets = %v, want Home and Door", presets)
	}
	inv(OpGotoPreset, map[string]any{"preset": token})
	if p, tl, z := cam.PTZPosition(); p != 0.25 || tl != -0.25 || z != 0.5 {
		t.Errorf("after goto preset %s: %v %v %v, want 0.25 -0.25 0.5", token, p, tl, z)
	}
	bad := []struct {
		name string
		op   string
		in   map[string]any
		want error
	}{
		{"unknown preset", OpGotoPreset, map[string]any{"preset": "99"}, adapters.ErrBadRequest},
		{"missing preset", OpGotoPreset, nil, adapters.ErrBadRequest},
		{"out of range", OpAbsoluteMove, map[string]any{"pan": 2.0}, adapters.ErrBadRequest},
		{"unknown input", OpStop, map[string]any{"x": 1.0}, adapters.ErrBadRequest},
		{"unknown op", "ptz.dance", nil, adapters.ErrNotFound},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := a.Invoke(ctx, "ptz/1", tt.op, tt.in); !errors.Is(err, tt.want) {
				t.Errorf("Invoke = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSnapshotRebootSyncTime(t *testing.T) {
	cam := onviftest.Start(t, sim.Config{User: "admin", Password: "secret", Auth: sim.AuthDigestSHA256})
	a := newAdapter(t, "cam1", cam.URL(), "")
	ctx := context.Background()
	out, err := a.Invoke(ctx, "video/1", OpSnapshot, nil)
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	sum := sha256.Sum256(cam.Snapshot())
	if out["size"] != int64(len(cam.Snapshot())) || out["sha256"] != hex.EncodeToString(sum[:]) {
		t.Errorf("snapshot = %v, want size %d sha256 %x", out, len(cam.Snapshot()), sum)
	}
	if _, err := a.Invoke(ctx, "device", OpReboot, nil); err != nil || cam.Calls("SystemReboot") != 1 {
		t.Errorf("reboot: %v, camera saw %d", err, cam.Calls("SystemReboot"))
	}
	if _, err := a.Invoke(ctx, "device", OpSyncTime, nil); err != nil || cam.Calls("SetSystemDateAndTime") != 1 {
		t.Errorf("sync_time: %v, camera saw %d", err, cam.Calls("SetSystemDateAndTime"))
	}
}

func TestHostRewrite(t *testing.T) {
	// The camera reports its services on an address the gateway cannot
	// reach (192.0.2.1 is TEST-NET-1: nothing answers there).
	cam := onviftest.Start(t, sim.Config{User: "admin", Password: "secret", AdvertiseHost: "192.0.2.1:8899"})
	a := newAdapter(t, "cam1", cam.URL(), "")
	vals, err := a.Get(context.Background(), "video/1", []string{"snapshot_uri"})
	if err != nil {
		t.Fatalf("Get with host_rewrite: %v", err)
	}
	if u := vals["snapshot_uri"].V.(string); !strings.HasPrefix(u, strings.TrimSuffix(cam.URL(), "/onvif/device_service")) {
		t.Errorf("snapshot_uri = %q, want it on the configured host", u)
	}
	// Nothing was sent to the advertised address: every call the camera
	// saw came through the configured one.
	if cam.Calls("GetProfiles") == 0 {
		t.Error("the camera saw no GetProfiles")
	}
}

func TestRewriteHost(t *testing.T) {
	base, _ := url.Parse("https://cam.example:8443/onvif/device_service")
	tests := []struct {
		name, addr, want string
	}{
		{"other host", "http://10.0.0.5/onvif/media", "https://cam.example:8443/onvif/media"},
		{"keeps query", "http://10.0.0.5:80/snap.jpg?ch=1", "https://cam.example:8443/snap.jpg?ch=1"},
		{"spaces", "  http://10.0.0.5/onvif/ptz ", "https://cam.example:8443/onvif/ptz"},
		{"empty", "", ""},
		{"relative", "/onvif/media", "/onvif/media"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rewriteHost(tt.addr, base); got != tt.want {
				t.Errorf("rewriteHost(%q) = %q, want %q", tt.addr, got, tt.want)
			}
		})
	}
}

func TestEvents(t *testing.T) {
	cam := onviftest.Start(t, sim.Config{User: "admin", Password: "secret"})
	a := newAdapter(t, "cam1", cam.URL(), "")
	rec := newRecorder()
	runAdapter(t, a, rec)
	rec.waitFor(t, "online", func() bool { return len(rec.status) > 0 && rec.status[0].online })
	// The initial states come first (motion false, input false).
	rec.waitFor(t, "initial states", func() bool {
		return countEvents(rec.events, "video/1", EventMotion, false) == 1 && countEvents(rec.events, "device", EventDigitalInput, false) == 1
	})
	cam.SetMotion(true)
	rec.waitFor(t, "motion", func() bool { return countEvents(rec.events, "video/1", EventMotion, true) == 1 })
	cam.SetInput(true)
	rec.waitFor(t, "input", func() bool { return countEvents(rec.events, "device", EventDigitalInput, true) == 1 })
	cam.Notify("tns1:VideoSource/SignalLoss", [][2]string{{"Source", "vs1"}}, [][2]string{{"State", "true"}})
	cam.Notify("tns1:RuleEngine/TamperDetector/Tamper", [][2]string{{"VideoSourceConfigurationToken", "vsc_1"}}, [][2]string{{"IsTamper", "true"}})
	cam.Notify("tns1:Monitoring/ProcessorUsage", nil, [][2]string{{"Value", "12"}})
	rec.waitFor(t, "video loss, tamper, generic", func() bool {
		return countEvents(rec.events, "video/1", EventVideoLoss, true) == 1 && countEvents(rec.events, "video/1", EventTamper, true) == 1 &&
			countEvents(rec.events, "device", EventGeneric, nil) == 1
	})
	rec.mu.Lock()
	for _, e := range rec.events {
		if e.Event == EventGeneric && e.Params["topic"] != "Monitoring/ProcessorUsage" {
			t.Errorf("generic event params = %v", e.Params)
		}
	}
	rec.mu.Unlock()

	// The camera drops the subscription: the adapter subscribes again, and
	// the states the camera resends unchanged are not reported twice.
	subsBefore := cam.Calls("CreatePullPointSubscription")
	cam.SetFaults(sim.Faults{DropSubscriptions: true})
	cam.SetFaults(sim.Faults{})
	rec.waitFor(t, "resubscription", func() bool { return cam.Calls("CreatePullPointSubscription") > subsBefore && cam.Subscriptions() == 1 })
	cam.SetMotion(false)
	rec.waitFor(t, "motion end", func() bool { return countEvents(rec.events, "video/1", EventMotion, false) == 2 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if n := countEvents(rec.events, "video/1", EventMotion, true); n != 1 {
		t.Errorf("motion true reported %d times, want 1 (the resent state suppressed)", n)
	}
	if n := countEvents(rec.events, "device", EventDigitalInput, true); n != 1 {
		t.Errorf("input true reported %d times, want 1", n)
	}
}

func TestUnsubscribeOnStop(t *testing.T) {
	cam := onviftest.Start(t, sim.Config{User: "admin", Password: "secret"})
	a := newAdapter(t, "cam1", cam.URL(), "")
	rec := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, rec) }()
	rec.waitFor(t, "subscribed", func() bool { return cam.Subscriptions() == 1 && len(rec.events) >= 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if n := cam.Subscriptions(); n != 0 || cam.Calls("Unsubscribe") != 1 {
		t.Errorf("after stop: %d subscriptions, %d Unsubscribe calls; want 0 and 1", n, cam.Calls("Unsubscribe"))
	}
}

func TestHTTPS(t *testing.T) {
	cam := sim.New(sim.Config{User: "admin", Password: "secret"})
	srv := httptest.NewUnstartedServer(cam)
	srv.StartTLS()
	defer srv.Close()
	cam.SetBase(srv.URL)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		extra   string
		wantErr bool
	}{
		{name: "ca_file", extra: `ca_file = "` + ca + `"`},
		{name: "insecure_tls", extra: `insecure_tls = true`},
		{name: "unknown certificate", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAdapter(t, "tls", cam.URL(), tt.extra)
			_, err := a.Describe(context.Background())
			if (err != nil) != tt.wantErr {
				t.Fatalf("Describe over HTTPS = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr && !strings.Contains(err.Error(), "certificate") {
				t.Errorf("error %v does not mention the certificate", err)
			}
		})
	}
}

func TestClockOffset(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 700_000_000, time.UTC)
	tests := []struct {
		name string
		cam  time.Time
		want time.Duration
	}{
		{"same second", now.Truncate(time.Second), 0},
		{"2s behind", now.Add(-2 * time.Second), 0},
		{"an hour ahead", now.Add(time.Hour), time.Hour},
		{"a minute behind", now.Add(-time.Minute), -time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := clockOffset(tt.cam, now); got != tt.want {
				t.Errorf("clockOffset(%v) = %v, want %v", tt.cam, got, tt.want)
			}
		})
	}
}

// TestSkewedCamera: a camera whose clock is an hour ahead accepts the
// UsernameToken (its Created is shifted) and its events are dated by the
// gateway's clock.
func TestSkewedCamera(t *testing.T) {
	cam := onviftest.Start(t, sim.Config{User: "admin", Password: "secret", Auth: sim.AuthUsernameToken, ClockSkew: time.Hour})
	a := newAdapter(t, "cam1", cam.URL(), "")
	rec := newRecorder()
	runAdapter(t, a, rec)
	cam.SetMotion(true)
	rec.waitFor(t, "motion", func() bool { return countEvents(rec.events, "video/1", EventMotion, true) == 1 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, e := range rec.events {
		if d := time.Since(e.At).Abs(); d > 10*time.Minute {
			t.Errorf("event %s dated %v, %v away from now: the camera's offset was not applied", e.Event, e.At, d)
		}
	}
}

// TestRenew: a camera that grants short subscriptions gets them renewed
// before they end, and keeps the same one.
func TestRenew(t *testing.T) {
	cam := onviftest.Start(t, sim.Config{User: "admin", Password: "secret", SubscriptionTTL: 2 * time.Second})
	a := newAdapter(t, "cam1", cam.URL(), "")
	rec := newRecorder()
	runAdapter(t, a, rec)
	rec.waitFor(t, "three renewals", func() bool { return cam.Calls("Renew") >= 3 })
	if n := cam.Calls("CreatePullPointSubscription"); n != 1 {
		t.Errorf("%d subscriptions made, want 1 (renewed, never lost)", n)
	}
	cam.SetMotion(true)
	rec.waitFor(t, "motion", func() bool { return countEvents(rec.events, "video/1", EventMotion, true) == 1 })
}

// TestNoDuplicatesAfterReconnect: a camera that goes offline and comes
// back resends its states; the unchanged ones are not reported again.
func TestNoDuplicatesAfterReconnect(t *testing.T) {
	cam := onviftest.Start(t, sim.Config{User: "admin", Password: "secret"})
	a := newAdapter(t, "cam1", cam.URL(), `poll = "1s"`)
	rec := newRecorder()
	runAdapter(t, a, rec)
	rec.waitFor(t, "initial states", func() bool { return len(rec.events) >= 2 })
	cam.SetMotion(true)
	rec.waitFor(t, "motion", func() bool { return countEvents(rec.events, "video/1", EventMotion, true) == 1 })

	cam.SetFaults(sim.Faults{Malformed: true})
	rec.waitFor(t, "offline", func() bool { return len(rec.status) > 0 && !rec.status[len(rec.status)-1].online })
	subs := cam.Calls("CreatePullPointSubscription")
	cam.SetFaults(sim.Faults{})
	rec.waitFor(t, "online and subscribed again", func() bool {
		return rec.status[len(rec.status)-1].online && cam.Calls("CreatePullPointSubscription") > subs && cam.Subscriptions() >= 1
	})
	cam.SetInput(true)
	rec.waitFor(t, "input", func() bool { return countEvents(rec.events, "device", EventDigitalInput, true) == 1 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, c := range []struct {
		resource, event string
		state           bool
	}{{"video/1", EventMotion, true}, {"video/1", EventMotion, false}, {"device", EventDigitalInput, false}} {
		if n := countEvents(rec.events, c.resource, c.event, c.state); n != 1 {
			t.Errorf("%s %s %v reported %d times, want 1", c.resource, c.event, c.state, n)
		}
	}
}
