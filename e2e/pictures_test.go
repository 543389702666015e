package e2e

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/osapgw/osapgw/osap"
	"github.com/osapgw/osapgw/osap/platform"
)

// TestPicturesThroughOutagesAndKill runs a simulated camera whose motion
// alarm turns on every 2 s and takes a 200 KB snapshot with each
// (snapshot_on), beside a ticking generator, behind the built gateway.
// The platform goes away 10 times and the gateway is killed with SIGKILL
// once. Afterwards the platform holds every tick once, every event in
// the gateway's order, and every motion event with a picture whose bytes
// hash to a snapshot the camera served.
func TestPicturesThroughOutagesAndKill(t *testing.T) {
	if testing.Short() {
		t.Skip("ten platform outages with real processes; skipped with -short")
	}
	outages := envInt("OSAPGW_E2E_PICTURE_OUTAGES", 10)
	seed := time.Now().UnixNano()
	t.Logf("seed %d (outages %d)", seed, outages)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))

	s := newSite(t)
	camAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	snapLog := filepath.Join(s.dir, "snapshots.log")
	cam := start(t, "devsim", "onvif", "-listen", camAddr, "-user", "admin", "-password", "pic-pass",
		"-motion-every", "1s", "-unique-snapshots", "-snapshot-size", "200000", "-snapshot-log", snapLog)
	waitListening(t, camAddr)
	pw := filepath.Join(s.dir, "cam.password")
	write(t, pw, "pic-pass", 0o600)
	camera := fmt.Sprintf(`
[[device]]
id = "cam-1"
kind = "onvif"
url = "http://%s/onvif/device_service"
username = "admin"
password_file = %q
poll = "30s"
snapshot_on = ["motion"]
`, camAddr, pw)
	s.writeConfig(synthetic("gen-1", 5) + camera)
	s.startGateway()
	devID := s.devID()
	withPicture := func() int {
		n := 0
		for _, e := range s.events(devID) {
			if e.Dev == "cam-1" && len(e.Pictures) > 0 {
				n++
			}
		}
		return n
	}
	waitFor(t, "a motion event with its picture at the platform", 60*time.Second, func() bool { return withPicture() > 0 })

	for i := range outages {
		waitFor(t, "the gateway to reconnect", 3*time.Minute, func() bool { return s.gatewayStatus().Upstream.State == "connected" })
		time.Sleep(time.Duration(1+rng.IntN(3)) * time.Second) // motion with pictures flows meanwhile
		down := time.Duration(3+rng.IntN(6)) * time.Second
		t.Logf("outage %d: platform down for %v", i+1, down)
		s.restartPlatform(down, nil)
	}

	waitFor(t, "the gateway to reconnect", 3*time.Minute, func() bool { return s.gatewayStatus().Upstream.State == "connected" })
	before := withPicture()
	waitFor(t, "a new motion picture before the kill", 60*time.Second, func() bool { return withPicture() > before })
	if err := s.gateway.stop(syscall.SIGKILL); err == nil {
		t.Log("gateway had exited before SIGKILL")
	}
	// A generator counts its ticks from 1 in each process: the one after
	// the restart is another sub-device, so each can be checked whole.
	s.writeConfig(synthetic("gen-2", 5) + camera)
	s.startGateway()
	before = withPicture()
	waitFor(t, "motion pictures after the restart", 60*time.Second, func() bool { return withPicture() >= before+2 })

	if err := cam.stop(syscall.SIGTERM); err != nil {
		t.Logf("camera stop: %v", err)
	}
	s.stopGenerating()

	evs := s.events(devID)
	ticks := checkExactlyOnce(t, evs, "gen-1") + checkExactlyOnce(t, evs, "gen-2")
	checkGatewayOrder(t, evs)
	served := readServed(t, snapLog)
	var pictures, restarted int
	for _, e := range evs {
		if e.Dev != "cam-1" || e.Name != "motion" {
			continue
		}
		var rep osap.EventReport
		if err := json.Unmarshal(e.Body, &rep); err != nil {
			t.Fatalf("event %s body: %v", e.ID, err)
		}
		ev, err := rep.Occurrence()
		if err != nil {
			t.Fatalf("event %s body: %v", e.ID, err)
		}
		if on, _ := ev.Params["state"].(bool); !on {
			if len(e.Pictures) > 0 || e.PictureError != "" {
				t.Errorf("event %s (motion off) carries a picture: %+v", e.ID, e)
			}
			continue
		}
		switch {
		case len(e.Pictures) == 1:
			pictures++
			checkPicture(t, s, devID, e.Pictures[0], served)
		case strings.Contains(e.PictureError, "restarted"):
			// Killed between storing the event and attaching its
			// picture: the event goes, saying why it has none.
			restarted++
		default:
			t.Errorf("motion event %s has pictures %v, picture_error %q; want one picture", e.ID, e.Pictures, e.PictureError)
		}
	}
	t.Logf("%d ticks once each; %d motion events with their picture, %d without because of the SIGKILL", ticks, pictures, restarted)
	if restarted > 1 {
		t.Errorf("%d motion events lost their picture to one SIGKILL, want at most 1", restarted)
	}
	if pictures < outages {
		t.Errorf("only %d motion events with pictures; the camera should have made more", pictures)
	}
}

// checkGatewayOrder asserts that the platform received the gateway's
// events, of every sub-device, in the order of their ids: an event that
// waits for its picture holds back the ones behind it.
func checkGatewayOrder(t *testing.T, evs []platform.Event) {
	t.Helper()
	var last uint64
	for _, e := range evs {
		id, err := strconv.ParseUint(e.ID, 10, 64)
		if err != nil {
			t.Fatalf("event id %q is not a decimal sequence number", e.ID)
		}
		if id <= last {
			t.Fatalf("event %d (%s) arrived after %d: events must arrive in the gateway's order", id, e.Dev, last)
		}
		last = id
	}
}

// readServed returns the hashes of the snapshots the camera served.
func readServed(t *testing.T, path string) map[string]bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	served := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		served[sc.Text()] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return served
}

// checkPicture fetches a picture from the platform and checks that its
// id is its hash's and that the camera served exactly those bytes.
func checkPicture(t *testing.T, s *site, devID, id string, served map[string]bool) {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://%s/api/devices/%s/pictures/%s", s.api, devID, id))
	if err != nil {
		t.Fatalf("picture %s: %v", id, err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("picture %s: HTTP %d, %v", id, resp.StatusCode, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if sum[:32] != id {
		t.Errorf("picture %s: its bytes hash to %s", id, sum)
	}
	if !served[sum] {
		t.Errorf("picture %s (%d bytes): the camera never served these bytes", id, n)
	}
	if n < 200000 {
		t.Errorf("picture %s is %d bytes, the camera served at least 200000", id, n)
	}
}
