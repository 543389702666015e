package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/osapgw/osapgw/osap/platform"
)

// cameraSite starts 32 simulated cameras (one devsim, Digest
// authentication, the extra devsim arguments given) whose motion alarm
// toggles every second, behind the gateway, each [[device]] block ending
// with the extra lines given, and waits for them to be online.
func cameraSite(b *testing.B, devsimArgs []string, deviceLines string) (*site, string) {
	s := newSite(b, "-no-fsync", "-log-level", "warn")
	base := freeRange(b, 32)
	args := append([]string{"onvif", "-listen", fmt.Sprintf("127.0.0.1:%d", base), "-count", "32",
		"-user", "admin", "-password", "bench-pass", "-motion-every", "1s"}, devsimArgs...)
	start(b, "devsim", args...)
	for i := range 32 {
		waitListening(b, fmt.Sprintf("127.0.0.1:%d", base+i))
	}
	pw := filepath.Join(s.dir, "cam.password")
	write(b, pw, "bench-pass", 0o600)
	var sb strings.Builder
	for i := range 32 {
		fmt.Fprintf(&sb, "\n[[device]]\nid = \"cam-%02d\"\nkind = \"onvif\"\nurl = \"http://127.0.0.1:%d/onvif/device_service\"\nusername = \"admin\"\npassword_file = %q\npoll = \"30s\"\n%s", i, base+i, pw, deviceLines)
	}
	s.writeConfig(sb.String())
	s.startGateway()
	devID := s.devID()
	waitFor(s.t, "32 cameras online", 90*time.Second, func() bool {
		n := 0
		for _, d := range s.gatewayStatus().Devices {
			if d.State == "online" {
				n++
			}
		}
		return n == 32
	})
	return s, devID
}

// pictureSite is cameraSite with every camera taking a distinct snapshot
// of size bytes with each motion (snapshot_on).
func pictureSite(b *testing.B, size int) (*site, string) {
	return cameraSite(b, []string{"-unique-snapshots", "-snapshot-size", fmt.Sprint(size)}, "snapshot_on = [\"motion\"]\n")
}

// withPictures returns the events that carry a picture.
func withPictures(evs []platform.Event) []platform.Event {
	var out []platform.Event
	for _, e := range evs {
		if len(e.Pictures) > 0 {
			out = append(out, e)
		}
	}
	return out
}

// BenchmarkCameraPictures: 32 simulated cameras, each with a motion event
// and a snapshot every 2 s (16 pictures/s), through the whole gateway:
// the store's picture spool, the upload to the emulator's picture service
// and the event.report carrying the picture's id. For 20 KB, 200 KB and
// 2 MB pictures: gateway CPU and peak RSS over 60 s, and the latency from
// the event's capture to its arrival at the platform with its picture.
// RSS must not grow with the picture's size.
func BenchmarkCameraPictures(b *testing.B) {
	for _, size := range []int{20_000, 200_000, 2_000_000} {
		b.Run(fmt.Sprintf("%dKB", size/1000), func(b *testing.B) {
			for b.Loop() {
				s, devID := pictureSite(b, size)
				waitFor(s.t, "pictures flowing", 60*time.Second, func() bool { return len(withPictures(s.events(devID))) > 32 })
				from := len(s.events(devID))
				rss, core := measure(b, s, 60*time.Second)
				all := s.events(devID)[from:]
				evs := withPictures(all)
				lat := latencies(evs)
				failed := 0
				for _, e := range all {
					if e.PictureError != "" {
						failed++
						if failed <= 3 {
							b.Logf("event %s of %s: picture_error %q", e.ID, e.Dev, e.PictureError)
						}
					}
				}
				b.ReportMetric(float64(failed), "picture_errors")
				b.ReportMetric(core*100, "CPU_%")
				b.ReportMetric(float64(rss)/(1<<20), "RSS_MB")
				b.ReportMetric(float64(len(evs))/60, "pictures/s")
				b.ReportMetric(float64(pct(lat, 0.5).Microseconds())/1000, "p50_ms")
				b.ReportMetric(float64(pct(lat, 0.99).Microseconds())/1000, "p99_ms")
			}
		})
	}
}

// BenchmarkPictureBacklog: the same 32 cameras with 200 KB pictures; the
// platform goes away until the gateway holds 1,000 pictures in its spool,
// then comes back. Reports the time to deliver that backlog (every
// picture uploaded and its event acknowledged, while the cameras go on)
// and the gateway's peak RSS while it does.
func BenchmarkPictureBacklog(b *testing.B) {
	for b.Loop() {
		s, _ := pictureSite(b, 200_000)
		if err := s.platform.stop(syscall.SIGTERM); err != nil {
			b.Logf("platform stop: %v", err)
		}
		waitFor(s.t, "1,000 pictures in the spool", 5*time.Minute, func() bool { return s.gatewayStatus().Outbox.Pictures >= 1000 })
		backlog := s.gatewayStatus().Outbox.Pictures
		s.platform.start()
		start := time.Now()
		pid := s.gateway.cmd.Process.Pid
		var peak int64
		// The cameras go on making 16 pictures/s, so the backlog is gone
		// when the spool holds no more than a second's worth.
		waitFor(s.t, "the backlog delivered", 10*time.Minute, func() bool {
			if rss, _, err := procStats(pid); err == nil {
				peak = max(peak, rss)
			}
			return s.gatewayStatus().Outbox.Pictures <= 16
		})
		d := time.Since(start)
		b.ReportMetric(float64(backlog), "backlog_pictures")
		b.ReportMetric(d.Seconds(), "drain_s")
		b.ReportMetric(float64(peak)/(1<<20), "RSS_MB")
	}
}
