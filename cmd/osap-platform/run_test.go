package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/osapgw/osapgw/osap"
	"github.com/osapgw/osapgw/osap/platform"
)

// logBuffer collects the command's log and lets the test wait for a line.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) find(re *regexp.Regexp) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return re.FindStringSubmatch(l.buf.String())
}

// TestRun runs the command on free loopback ports with a one-device
// registry, and drives it as a gateway would: LBS first authentication,
// MQTT login on the DAS it names, one event; then reads it back through the
// HTTP API and stops the command.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	registry := filepath.Join(dir, "devices.toml")
	if err := os.WriteFile(registry, []byte("[[device]]\nserial = \"GW2026A0001\"\nverification_code = \"ABCDEF\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--lbs", "127.0.0.1:0", "--das", "127.0.0.1:0", "--das", "127.0.0.1:0", "--http", "127.0.0.1:0",
			"--registry", registry, "--state", filepath.Join(dir, "state"), "--log-level", "debug",
			"--picture-refuse", "503", "--picture-retry-after", "4s"}, logs)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	ready := regexp.MustCompile(`msg="osap-platform ready" lbs=(\S+) das=(\S+) http=(\S+)`)
	var m []string
	for deadline := time.Now().Add(20 * time.Second); m == nil; time.Sleep(5 * time.Millisecond) {
		if m = logs.find(ready); m == nil && time.Now().After(deadline) {
			t.Fatalf("no ready line in the log:\n%s", logs.String())
		}
	}
	lbs, api := m[1], m[3]

	cl, err := osap.NewClient(osap.ClientConfig{Addr: lbs, Serial: "GW2026A0001", VerificationCode: "ABCDEF",
		DeviceInfo: osap.DeviceInfo{Model: "test", Firmware: "0", Kind: "gateway"}})
	if err != nil {
		t.Fatal(err)
	}
	actx, acancel := context.WithTimeout(ctx, 20*time.Second)
	defer acancel()
	cr, err := cl.Authenticate(actx, nil)
	if err != nil {
		t.Fatalf("Authenticate: %v\n%s", err, logs.String())
	}
	ci, err := osap.NewCipher(cr.Suite, cr.SessionKey)
	if err != nil {
		t.Fatal(err)
	}
	checkPictures(t, api, cr, ci)
	pw, err := ci.LoginPassword(rand.Reader, cr.DevID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.NewClientOptions().AddBroker(cr.DASAddress).SetClientID(cr.DevID).SetUsername(cr.DevID).
		SetPassword(pw).SetCleanSession(false).SetAutoReconnect(false).SetProtocolVersion(4))
	if tok := c.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("MQTT connect to %s: %v", cr.DASAddress, tok.Error())
	}
	defer c.Disconnect(50)
	topic := osap.Topic(cr.DevID, osap.DirUp, osap.KindEvent)
	p, err := ci.SealMessage(rand.Reader, topic, osap.Header{ID: "1", TS: time.Now().UnixMilli(), Type: osap.TypeEventReport},
		osap.EventReport{Resource: "main", Event: "boot", TS: time.Now().UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	if tok := c.Publish(topic, 1, false, p); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}

	resp, err := http.Get(api + "/api/devices/" + cr.DevID + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page platform.EventsPage
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET events: %d, %v", resp.StatusCode, err)
	}
	if len(page.Events) != 1 || page.Events[0].Name != "boot" {
		t.Errorf("events = %+v, want the boot event", page.Events)
	}
	for _, want := range []string{"device authenticated", "devid=" + cr.DevID} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// checkPictures uploads a picture while --picture-refuse holds (503 with
// Retry-After 4), clears the fault through the API, and uploads it.
func checkPictures(t *testing.T, api string, cr osap.Credentials, ci *osap.Cipher) {
	t.Helper()
	if want := api + platform.DefaultPicturePath; cr.PictureURL != want {
		t.Fatalf("picture service URL in 0xB = %q, want %q", cr.PictureURL, want)
	}
	body := []byte("\xff\xd8 run test")
	post := func() *http.Response {
		tok, err := ci.PictureToken(rand.Reader, cr.DevID, time.Now(), sha256.Sum256(body))
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest(http.MethodPost, cr.PictureURL+osap.PicturePath(cr.DevID), bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "OSAP "+tok)
		req.Header.Set("Content-Type", "image/jpeg")
		req.Header.Set(osap.PictureDevHeader, "")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := post(); resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "4" {
		t.Fatalf("upload under --picture-refuse 503 = %d, Retry-After %q; want 503, 4", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	req, err := http.NewRequest(http.MethodDelete, api+"/api/pictures/fault", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp := post(); resp.StatusCode != 201 {
		t.Fatalf("upload after DELETE /api/pictures/fault = %d, want 201", resp.StatusCode)
	}
}
