package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/osapgw/osapgw/osap/platform"
)

// The benchmarks here measure the osapgw process (not the emulator, which
// runs apart) from /proc: resident memory and CPU time. Run them with
//
//	go test -run XXX -bench . -benchtime 1x ./e2e
//
// Each runs its scenario once per b.N; -benchtime 1x is the intended use.

// procStats reads a process's RSS (bytes) and CPU time (user+system).
func procStats(pid int) (rss int64, cpu time.Duration, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			rss = kb * 1024
		}
	}
	f.Close()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// Fields after the command name, which is in parentheses.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return rss, time.Duration(ut+st) * time.Second / hz, nil
}

// measure samples the gateway for d and returns its peak RSS and the CPU it
// used, as a fraction of one core.
func measure(b *testing.B, s *site, d time.Duration) (peakRSS int64, core float64) {
	pid := s.gateway.cmd.Process.Pid
	_, cpu0, err := procStats(pid)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for time.Since(start) < d {
		time.Sleep(500 * time.Millisecond)
		rss, _, err := procStats(pid)
		if err != nil {
			b.Fatal(err)
		}
		peakRSS = max(peakRSS, rss)
	}
	_, cpu1, _ := procStats(pid)
	return peakRSS, (cpu1 - cpu0).Seconds() / time.Since(start).Seconds()
}

// latencies returns received-minus-captured of the events, sorted.
func latencies(evs []platform.Event) []time.Duration {
	out := make([]time.Duration, 0, len(evs))
	for _, e := range evs {
		out = append(out, e.Received.Sub(e.Captured))
	}
	slices.Sort(out)
	return out
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

func devices(n int, rate float64, attrs int) string {
	var sb strings.Builder
	for i := range n {
		sb.WriteString(fmt.Sprintf("\n[[device]]\nid = \"gen-%02d\"\nkind = \"synthetic\"\nattributes = %d\nattribute_every = \"1s\"\nevent_rate = %.1f\n", i, attrs, rate))
	}
	return sb.String()
}

// BenchmarkIdleTenDevices: the gateway with 10 synthetic sub-devices
// reporting 10 attributes each per second and no events. Target: RSS
// under 20 MB.
func BenchmarkIdleTenDevices(b *testing.B) {
	for b.Loop() {
		s := newSite(b, "-no-fsync", "-log-level", "warn")
		s.writeConfig(devices(10, 0, 10))
		s.startGateway()
		s.devID()
		time.Sleep(5 * time.Second) // settle after start-up
		rss, core := measure(b, s, 20*time.Second)
		b.ReportMetric(float64(rss)/(1<<20), "RSS_MB")
		b.ReportMetric(core*100, "CPU_%")
	}
}

// BenchmarkSustainedEvents: 10 sub-devices × 200 events/s = 2,000
// events/s to the platform. Targets: the gateway under one core,
// capture-to-platform p99 under 50 ms.
func BenchmarkSustainedEvents(b *testing.B) {
	for b.Loop() {
		s := newSite(b, "-no-fsync", "-log-level", "warn")
		s.writeConfig(devices(10, 200, 0))
		s.startGateway()
		devID := s.devID()
		time.Sleep(3 * time.Second)
		from := uint64(len(s.events(devID)))
		rss, core := measure(b, s, 30*time.Second)
		evs := s.events(devID)
		if uint64(len(evs)) <= from {
			b.Fatal("no events arrived")
		}
		window := evs[from:]
		rate := float64(len(window)) / window[len(window)-1].Received.Sub(window[0].Received).Seconds()
		lat := latencies(window)
		b.ReportMetric(rate, "events/s")
		b.ReportMetric(core*100, "CPU_%")
		b.ReportMetric(float64(rss)/(1<<20), "RSS_MB")
		b.ReportMetric(float64(pct(lat, 0.5).Microseconds())/1000, "p50_ms")
		b.ReportMetric(float64(pct(lat, 0.99).Microseconds())/1000, "p99_ms")
	}
}

// BenchmarkBacklogReplay: 100,000 events wait in the outbox while the
// platform is down; then it comes back while a live sub-device keeps
// sending 10 events/s. Reports the replay time and the live events'
// latency during the replay.
func BenchmarkBacklogReplay(b *testing.B) {
	for b.Loop() {
		s := newSite(b, "-no-fsync", "-log-level", "warn")
		s.writeConfig(devices(10, 1000, 0))
		s.startGateway()
		devID := s.devID()
		if err := s.platform.stop(syscall.SIGTERM); err != nil {
			b.Logf("platform stop: %v", err)
		}
		waitFor(s.t, "a backlog of 100000 events", 300*time.Second, func() bool { return s.gatewayStatus().Outbox.Events >= 100000 })
		s.writeConfig(synthetic("live", 10))
		s.gateway.signal(syscall.SIGHUP)
		waitFor(s.t, "the reload", 20*time.Second, func() bool { return len(s.gatewayStatus().Devices) == 1 })
		backlog := s.gatewayStatus().Outbox.Events
		start := time.Now()
		s.platform.start()
		waitFor(s.t, "the backlog to drain", 600*time.Second, func() bool { return s.gatewayStatus().Outbox.Events < 20 })
		took := time.Since(start)
		var live []platform.Event
		for _, e := range s.events(devID) {
			if e.Dev == "live" && e.Received.After(start) && e.Received.Before(start.Add(took)) {
				live = append(live, e)
			}
		}
		lat := latencies(live)
		b.ReportMetric(float64(backlog), "backlog_events")
		b.ReportMetric(took.Seconds(), "replay_s")
		b.ReportMetric(float64(backlog)/took.Seconds(), "replay_events/s")
		b.ReportMetric(float64(len(live)), "live_events_during")
		b.ReportMetric(float64(pct(lat, 0.99).Milliseconds()), "live_p99_ms")
	}
}

// modbusDevices returns n [[device]] blocks polling 100 holding registers
// (100-199, as devsim's --registers serves them) every second, merged into
// as few reads as the protocol allows, or one read per register.
func modbusDevices(base, n int, merge bool) string {
	var sb strings.Builder
	for i := range n {
		fmt.Fprintf(&sb, "\n[[device]]\nid = \"mb-%03d\"\nkind = \"modbus\"\nurl = \"tcp://127.0.0.1:%d\"\nunit = 1\npoll = \"1s\"\ntimeout = \"2s\"\n", i, base+i)
		if !merge {
			sb.WriteString("max_registers = 1\nmax_gap = 0\n")
		}
		for r := range 100 {
			fmt.Fprintf(&sb, "[[device.attribute]]\nname = \"r%03d\"\ntable = \"holding\"\naddress = %d\ntype = \"uint16\"\n", r, 100+r)
		}
	}
	return sb.String()
}

// freeRange finds n consecutive free ports on 127.0.0.1.
func freeRange(b *testing.B, n int) int {
	for try := 0; try < 50; try++ {
		base := 20000 + int(time.Now().UnixNano()%20000)
		ok := true
		var lns []net.Listener
		for i := range n {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				ok = false
				break
			}
			lns = append(lns, ln)
		}
		for _, ln := range lns {
			ln.Close()
		}
		if ok {
			return base
		}
	}
	b.Fatal("no range of free ports")
	return 0
}

// BenchmarkModbus100Devices is issue 5's benchmark with the whole gateway:
// 100 simulated Modbus TCP devices (one port each), 100 holding registers
// each changing every second, polled every second for 60 s, every change
// published to the platform emulator. Reports the gateway's CPU and RSS,
// merged (1 read per device per cycle) and not (100 reads).
func BenchmarkModbus100Devices(b *testing.B) {
	for _, merge := range []bool{true, false} {
		name := "merged"
		if !merge {
			name = "unmerged"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				s := newSite(b, "-no-fsync", "-log-level", "warn")
				base := freeRange(b, 100)
				start(b, "devsim", "modbus", "-listen", fmt.Sprintf("127.0.0.1:%d", base), "-count", "100", "-registers", "100", "-change", "1s")
				time.Sleep(time.Second)
				s.writeConfig(modbusDevices(base, 100, merge))
				s.startGateway()
				devID := s.devID()
				waitFor(s.t, "100 Modbus devices online", 60*time.Second, func() bool {
					n := 0
					for _, d := range s.gatewayStatus().Devices {
						if d.State == "online" {
							n++
						}
					}
					return n == 100
				})
				time.Sleep(5 * time.Second)
				rss, core := measure(b, s, 60*time.Second)
				reads := 1
				if !merge {
					reads = 100
				}
				b.ReportMetric(core*100, "CPU_%")
				b.ReportMetric(float64(rss)/(1<<20), "RSS_MB")
				b.ReportMetric(float64(100*reads), "requests/cycle")
				_ = devID
			}
		})
	}
}

// BenchmarkCameras32 is issue 6's benchmark through the whole gateway: 32
// simulated cameras (devsim, Digest auth) whose motion alarm toggles every
// second, each with a PullPoint subscription, for 60 s. Reports the
// gateway's CPU and RSS and the capture-to-platform latency of the motion
// events (the camera's own event time to the platform's arrival time).
func BenchmarkCameras32(b *testing.B) {
	for b.Loop() {
		s, devID := cameraSite(b, nil, "events = true\n")
		time.Sleep(5 * time.Second)
		from := len(s.events(devID))
		rss, core := measure(b, s, 60*time.Second)
		evs := s.events(devID)[from:]
		lat := latencies(evs)
		b.ReportMetric(core*100, "CPU_%")
		b.ReportMetric(float64(rss)/(1<<20), "RSS_MB")
		b.ReportMetric(float64(len(evs))/60, "events/s")
		b.ReportMetric(float64(pct(lat, 0.5).Microseconds())/1000, "p50_ms")
		b.ReportMetric(float64(pct(lat, 0.99).Microseconds())/1000, "p99_ms")
	}
}
