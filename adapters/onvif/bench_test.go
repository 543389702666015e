package onvif

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/osapgw/osapgw/model"
	sim "github.com/osapgw/osapgw/sim/onvif"
	"github.com/osapgw/osapgw/sim/onvif/onviftest"
)

// TestBenchSimProcess is the simulator side of BenchmarkEvents32Cameras:
// run in a child process, it serves the cameras on 127.0.0.1, prints their
// addresses and serves until its stdin closes. It does nothing otherwise.
func TestBenchSimProcess(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("OSAPGW_ONVIF_BENCH_SIMS"))
	if n == 0 {
		t.Skip("only runs as the child of BenchmarkEvents32Cameras")
	}
	every, _ := time.ParseDuration(os.Getenv("OSAPGW_ONVIF_BENCH_EVERY"))
	for i := range n {
		cam := onviftest.Start(t, sim.Config{User: "admin", Password: "secret", Serial: fmt.Sprintf("B%03d", i), MotionEvery: every})
		fmt.Printf("URL %s\n", cam.URL())
	}
	fmt.Println("READY")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
}

// latencySink records the delay from a camera's motion (its UtcTime) to the
// event reaching the sink.
type latencySink struct {
	mu     sync.Mutex
	after  time.Time
	lat    []time.Duration
	online int
}

func (s *latencySink) Attributes(string, string, map[string]model.Value) {}
func (s *latencySink) Status(_ string, online bool, _ error) {
	s.mu.Lock()
	if online {
		s.online++
	}
	s.mu.Unlock()
}
func (s *latencySink) Event(_ string, ev model.EventOccurrence) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if ev.Event == EventMotion && !s.after.IsZero() && ev.At.After(s.after) {
		s.lat = append(s.lat, now.Sub(ev.At))
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func rssKiB(field string) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

// BenchmarkEvents32Cameras runs 32 adapters (one per camera, each with its
// event subscription) in this process against 32 simulated cameras in a
// child process whose motion alarms toggle every second, for a fixed
// window; it reports this process's CPU and RSS and the latency from a
// motion in the camera to the event reaching the sink. Run it with
// -benchtime=1x: the window, not b.N, sets its length.
func BenchmarkEvents32Cameras(b *testing.B) {
	const cams = 32
	window := 30 * time.Second
	if d, err := time.ParseDuration(os.Getenv("OSAPGW_ONVIF_BENCH_WINDOW")); err == nil {
		window = d
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestBenchSimProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "OSAPGW_ONVIF_BENCH_SIMS="+strconv.Itoa(cams), "OSAPGW_ONVIF_BENCH_EVERY=1s")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { stdin.Close(); _ = cmd.Wait() }()
	var urls []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if u, ok := strings.CutPrefix(line, "URL "); ok {
			urls = append(urls, u)
		}
		if line == "READY" {
			break
		}
	}
	if len(urls) != cams {
		b.Fatalf("the simulator process gave %d cameras, want %d", len(urls), cams)
	}
	go func() { // drain the child's remaining output; ends when it exits
		for sc.Scan() {
		}
	}()

	sink := &latencySink{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i, u := range urls {
		a := newAdapter(b, "cam"+strconv.Itoa(i), u, "")
		wg.Add(1)
		go func() { defer wg.Done(); _ = a.Run(ctx, sink) }()
	}
	defer func() { cancel(); wg.Wait() }()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		sink.mu.Lock()
		n := sink.online
		sink.mu.Unlock()
		if n >= cams {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d cameras online after a minute", n, cams)
		}
	}
	time.Sleep(2 * time.Second) // let the subscriptions settle
	b.ResetTimer()
	sink.mu.Lock()
	sink.after = time.Now()
	sink.mu.Unlock()
	cpu0, t0 := cpuTime(), time.Now()
	time.Sleep(window)
	cpu, wall := cpuTime()-cpu0, time.Since(t0)
	b.StopTimer()

	sink.mu.Lock()
	lat := slices.Clone(sink.lat)
	sink.mu.Unlock()
	if len(lat) == 0 {
		b.Fatal("no motion event reached the sink")
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	b.ReportMetric(float64(len(lat)), "events")
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "cpu-%")
	b.ReportMetric(float64(rssKiB("VmRSS"))/1024, "rss-MiB")
	b.ReportMetric(float64(rssKiB("VmHWM"))/1024, "peak-rss-MiB")
	b.ReportMetric(float64(pct(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(pct(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}
