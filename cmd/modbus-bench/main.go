// Command modbus-bench measures the Modbus adapter: it polls N simulated
// TCP devices (one port each, started apart with `devsim modbus --count
// N`) through the adapter for a while, into a sink that only counts, and
// prints the CPU time and RSS of this process and the requests per poll
// cycle. scripts/bench-modbus.sh runs it with and without request merging.
//
// It measures the adapter side only: the gateway's upstream (bridge,
// store, MQTT) is not in the loop yet.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/adapters/modbus"
	"github.com/osapgw/osapgw/model"
)

// countingSink counts what the adapters report.
type countingSink struct {
	values, events, status atomic.Int64
}

func (s *countingSink) Attributes(_, _ string, vs map[string]model.Value) {
	s.values.Add(int64(len(vs)))
}
func (s *countingSink) Event(string, model.EventOccurrence) { s.events.Add(1) }
func (s *countingSink) Status(string, bool, error)          { s.status.Add(1) }

func main() {
	first := flag.Int("port", 26000, "port of the first device on 127.0.0.1")
	devices := flag.Int("devices", 100, "number of devices, on consecutive ports")
	registers := flag.Int("registers", 100, "holding registers per device, from 100")
	poll := flag.Duration("poll", time.Second, "poll interval")
	duration := flag.Duration("duration", 60*time.Second, "how long to poll")
	merge := flag.Bool("merge", true, "merge reads (false: one register per request)")
	flag.Parse()

	var conf strings.Builder
	fmt.Fprintf(&conf, "unit = 1\npoll = %q\ntimeout = \"2s\"\nreport_every = \"1h\"\n", poll.String())
	if !*merge {
		conf.WriteString("max_registers = 1\n")
	}
	for i := 0; i < *registers; i++ {
		fmt.Fprintf(&conf, "[[attribute]]\nname = \"r%d\"\ntable = \"holding\"\naddress = %d\n", i, 100+i)
	}
	pool := modbus.NewPool()
	env := adapters.Env{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	sink := &countingSink{}
	var list []*modbus.Adapter
	for i := 0; i < *devices; i++ {
		text := fmt.Sprintf("url = \"tcp://127.0.0.1:%d\"\n", *first+i) + conf.String()
		a, err := modbus.New(fmt.Sprintf("dev-%d", i), adapters.TOMLDecoder(text), env, modbus.WithPool(pool))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		list = append(list, a)
	}
	perCycle := 0
	for _, a := range list {
		perCycle += len(a.Requests())
	}

	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	cpu0, wall0 := cpuTime(), time.Now()
	var wg sync.WaitGroup
	for _, a := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = a.Run(ctx, sink)
		}()
	}
	// Sample the request counter just before the end, while links run.
	time.Sleep(*duration - 500*time.Millisecond)
	sent := pool.Requests()
	elapsed := time.Since(wall0)
	cpu := cpuTime() - cpu0
	rss, hwm := memory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	goroutines := runtime.NumGoroutine()
	wg.Wait()
	runtime.GC()
	var live runtime.MemStats
	runtime.ReadMemStats(&live)
	runtime.KeepAlive(list)

	cycles := float64(elapsed/(*poll) + 1) // the first poll is at once
	fmt.Printf("devices=%d registers=%d poll=%s duration=%s merge=%v\n", *devices, *registers, *poll, elapsed.Round(time.Millisecond), *merge)
	fmt.Printf("requests per cycle: planned %d, measured %.0f (%d sent)\n", perCycle, float64(sent)/cycles, sent)
	fmt.Printf("values reported: %d (%.0f per cycle)\n", sink.values.Load(), float64(sink.values.Load())/cycles)
	fmt.Printf("cpu: %.2f%% of one core (%.2fs in %.1fs)\n", 100*cpu.Seconds()/elapsed.Seconds(), cpu.Seconds(), elapsed.Seconds())
	fmt.Printf("rss: %.1f MB now, %.1f MB peak\n", float64(rss)/1e6, float64(hwm)/1e6)
	fmt.Printf("go: live heap of the adapters %.1f MB; ", float64(live.HeapAlloc)/1e6)
	fmt.Printf("heap in use %.1f MB, stacks %.1f MB, runtime total %.1f MB, %d goroutines, %d GCs\n",
		float64(ms.HeapInuse)/1e6, float64(ms.StackInuse)/1e6, float64(ms.Sys)/1e6, goroutines, ms.NumGC)
}

// cpuTime returns the user+system CPU time of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// memory returns VmRSS and VmHWM of this process in bytes.
func memory() (rss, hwm int64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		var kb int64
		if n, _ := fmt.Sscanf(line, "VmRSS: %d kB", &kb); n == 1 {
			rss = kb * 1000
		}
		if n, _ := fmt.Sscanf(line, "VmHWM: %d kB", &kb); n == 1 {
			hwm = kb * 1000
		}
	}
	return rss, hwm
}
