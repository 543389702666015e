package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/osapgw/osapgw/config"
	"github.com/osapgw/osapgw/internal/tmpfs"
	"github.com/osapgw/osapgw/model"
	"github.com/osapgw/osapgw/osap/platform"
)

// TestGatewayFullDisk runs the gateway with its store on a 4 MiB tmpfs
// that the test fills: events fail to append (counted in the metrics and
// /status), attribute reports keep reaching the platform meanwhile, and
// once space is back events are stored and delivered again, without a
// restart. It needs root to mount (see internal/tmpfs).
func TestGatewayFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end on a full tmpfs; skipped with -short")
	}
	disk := tmpfs.Mount(t, 4<<20)
	dir := t.TempDir()
	log := testLogger(t)
	emu, err := platform.NewEmulator(platform.EmulatorConfig{StateDir: filepath.Join(dir, "platform"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	emu.Registry.Add("GW-FULL", "ABCDEF")
	runEmulator(t, emu)
	code := writeCode(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	text := fmt.Sprintf(`
[gateway]
serial = "GW-FULL"
verification_code_file = %q
[upstream]
lbs = "tcp://%s"
heartbeat = "2s"
[store]
path = %q
[[device]]
id = "full1"
kind = "loop"
`, code, emu.LBSAddr(), filepath.Join(disk, "state", "osapgw.db"))
	cfg, err := config.Parse("full.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	loops.Delete("full1")
	t.Cleanup(func() { loops.Delete("full1") })
	gw, err := New(cfg, Options{Logger: log, Listener: ln})
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() {
		if err := gw.Run(ctx); err != nil {
			t.Errorf("gateway Run() = %v", err)
		}
	})

	das := emu.DAS[0]
	var devID string
	// count is the last "count" the platform has from the loop device.
	count := func() int64 {
		info, err := das.Device(devID)
		if err != nil {
			return -1
		}
		for _, s := range info.SubDevices {
			if s.ID == "full1" {
				switch v := s.Attributes["main"]["count"].V.(type) {
				case int64:
					return v
				case float64:
					return int64(v)
				case json.Number:
					n, _ := v.Int64()
					return n
				}
			}
		}
		return -1
	}
	waitFor(t, "the gateway to register with its sub-device", 20*time.Second, func() bool {
		for _, d := range das.Devices() {
			devID = d.DevID
			if info, err := das.Device(devID); err == nil && info.Online && count() > 0 {
				return true
			}
		}
		return false
	})
	v, _ := loops.Load("full1")
	a := v.(*loopAdapter)
	emit := func(n int) {
		a.events <- model.EventOccurrence{Resource: "main", Event: "tick", Params: map[string]any{"n": n}, At: time.Now()}
	}
	metric := func(name string) float64 {
		resp, err := http.Get("http://" + gw.Addr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(b)
		if m == nil {
			t.Fatalf("/metrics lacks %s", name)
		}
		f, _ := strconv.ParseFloat(string(m[1]), 64)
		return f
	}
	status := func() OutboxStatus {
		resp, err := http.Get("http://" + gw.Addr() + "/status")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st Status
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		return st.Outbox
	}
	for i := range 5 {
		emit(i)
	}
	waitFor(t, "5 events at the platform", 10*time.Second, func() bool { return emu.Events.Len(devID) >= 5 })

	// The disk fills: events are refused, attributes keep flowing.
	ballast := filepath.Join(disk, "ballast")
	tmpfs.Fill(t, ballast)
	const failedName = `osapgw_outbox_append_errors_total{reason="no_space"}`
	// Bursts, so that the outbox outgrows the pages its file has free
	// (while events are acknowledged as fast as they come, the store
	// reuses the pages they held and appends succeed on a full disk).
	n := 100
	waitFor(t, "appends to fail for lack of space", 20*time.Second, func() bool {
		for range 100 {
			emit(n)
			n++
		}
		// An acknowledgement may free pages for a few appends more:
		// the status says full once an append is refused.
		st := status()
		return metric(failedName) >= 3 && st.DiskFull && st.NoSpaceErrors >= 3 && metric("osapgw_store_disk_full") == 1
	})
	before := count()
	waitFor(t, "attribute reports while the disk is full", 10*time.Second, func() bool { return count() >= before+5 })

	// Space comes back: events are stored and delivered again.
	start := time.Now()
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	had := emu.Events.Len(devID)
	// Far above the bursts' numbers, which go up by 100 per try while the
	// disk fills (they reached 1000 once).
	const afterFull = 1_000_000
	emit(afterFull)
	waitFor(t, "an event at the platform once space is back", 20*time.Second, func() bool { return emu.Events.Len(devID) > had })
	t.Logf("event delivered %v after space came back; %d appends had failed", time.Since(start), int(metric(failedName)))
	waitFor(t, "the outbox to empty", 20*time.Second, func() bool { return status().Events == 0 })
	if status().DiskFull || metric("osapgw_store_disk_full") != 0 {
		t.Errorf("the store still says the disk is full once appends succeed")
	}
	evs := emu.Events.Events(devID, 0, 10000)
	seen := deliveredOnce(t, evs)
	for _, k := range []int{0, 1, 2, 3, 4, afterFull} {
		if !seen[k] {
			t.Errorf("event n=%d not delivered", k)
		}
	}
}
