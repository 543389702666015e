// Package e2e runs the built programs as a user would: osap-platform,
// devsim and osapgw, as separate processes on 127.0.0.1, and checks what
// the platform ends up holding.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/osapgw/osapgw/osap/platform"
)

// bin holds the paths of the programs built once by TestMain.
var bin struct {
	dir                      string
	osapgw, platform, devsim string
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "osapgw-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin.dir = dir
	bin.osapgw = filepath.Join(dir, "osapgw")
	bin.platform = filepath.Join(dir, "osap-platform")
	bin.devsim = filepath.Join(dir, "devsim")
	// Built as `make build` and the .deb build them (static, stripped),
	// so that the tests and benchmarks run the programs that ship; osapgw
	// with the load-test kind "synthetic" as well, which the packaged
	// daemon leaves out (the tag adds that adapter and nothing else).
	build := exec.Command("go", "build", "-trimpath", "-tags", "synthetic", "-ldflags", "-s -w", "-o", dir+"/", "../cmd/osapgw", "../cmd/osap-platform", "../cmd/devsim")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build the programs:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a free TCP port on 127.0.0.1.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// proc is a program the test runs; its output goes to a log file that is
// printed when the test fails.
type proc struct {
	t    testing.TB
	name string
	args []string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func start(t testing.TB, name string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: filepath.Base(name), args: args, log: filepath.Join(t.TempDir(), filepath.Base(name)+".log")}
	p.start()
	t.Cleanup(func() {
		p.stop(syscall.SIGKILL)
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("--- last output of %s %s:\n%s", p.name, strings.Join(p.args, " "), b)
		}
	})
	return p
}

func (p *proc) start() {
	p.t.Helper()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	p.cmd = exec.Command(filepath.Join(bin.dir, p.name), p.args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		f.Close()
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	p.done = make(chan struct{})
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
}

// stop sends sig and waits for the process to end (SIGKILL after 10 s).
func (p *proc) stop(sig syscall.Signal) error {
	if p.cmd == nil || p.cmd.Process == nil {
		return nil
	}
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return p.err
}

func (p *proc) signal(sig syscall.Signal) { _ = p.cmd.Process.Signal(sig) }

// logCount returns how many times s occurs in the program's output so far.
func (p *proc) logCount(s string) int {
	b, err := os.ReadFile(p.log)
	if err != nil {
		p.t.Fatal(err)
	}
	return strings.Count(string(b), s)
}

// waitFor polls cond until it holds; it synchronises, it measures nothing.
func waitFor(t testing.TB, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting %v for %s", limit, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// site is one platform emulator and one gateway, with their files.
type site struct {
	t        testing.TB
	dir      string
	lbs, api string
	das      string
	platform *proc
	gateway  *proc
	gwHTTP   string
	cfgPath  string
}

const (
	serial = "GW-E2E-0001"
	vcode  = "E2E-CODE-42"
)

func newSite(t testing.TB, platformArgs ...string) *site {
	t.Helper()
	s := &site{t: t, dir: t.TempDir()}
	s.lbs = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s.api = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s.das = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s.gwHTTP = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	devices := filepath.Join(s.dir, "devices.toml")
	write(t, devices, fmt.Sprintf("[[device]]\nserial = %q\nverification_code = %q\n", serial, vcode), 0o600)
	write(t, filepath.Join(s.dir, "code"), vcode+"\n", 0o600)
	args := append([]string{"-lbs", s.lbs, "-das", s.das, "-http", s.api,
		"-registry", devices, "-state", filepath.Join(s.dir, "platform")}, platformArgs...)
	s.platform = start(t, "osap-platform", args...)
	s.waitHTTP("http://" + s.api + "/api/devices")
	return s
}

func write(t testing.TB, path, text string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
}

func (s *site) waitHTTP(url string) {
	s.t.Helper()
	waitFor(s.t, url+" to answer", 30*time.Second, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
}

// writeConfig writes the gateway's configuration with the given
// [[device]] blocks.
func (s *site) writeConfig(devices string) {
	s.cfgPath = filepath.Join(s.dir, "osapgw.toml")
	write(s.t, s.cfgPath, fmt.Sprintf(`[gateway]
serial = %q
verification_code_file = %q
[upstream]
lbs = "tcp://%s"
heartbeat = "2s"
request_timeout = "5s"
[store]
path = %q
[http]
listen = %q
[log]
level = "debug"
%s`, serial, filepath.Join(s.dir, "code"), s.lbs, filepath.Join(s.dir, "gw", "osapgw.db"), s.gwHTTP, devices), 0o600)
}

func (s *site) startGateway() {
	s.t.Helper()
	if s.gateway == nil {
		s.gateway = start(s.t, "osapgw", "run", "-c", s.cfgPath)
	} else {
		s.gateway.start()
	}
	s.waitHTTP("http://" + s.gwHTTP + "/healthz")
}

// restartPlatform stops the platform emulator with SIGTERM, calls during
// (if not nil) once it has been down for the time given, and starts it
// again.
func (s *site) restartPlatform(down time.Duration, during func()) {
	s.t.Helper()
	if err := s.platform.stop(syscall.SIGTERM); err != nil {
		s.t.Logf("platform stop: %v", err)
	}
	time.Sleep(down)
	if during != nil {
		during()
	}
	s.platform.start()
	s.waitHTTP("http://" + s.api + "/api/devices")
}

func getJSON(t testing.TB, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %v\n%s", url, err, b)
		}
	}
	return resp.StatusCode
}

// devID waits for the gateway to be registered and returns its DevID.
func (s *site) devID() string {
	s.t.Helper()
	var id string
	waitFor(s.t, "the gateway to register", 60*time.Second, func() bool {
		var list struct {
			Devices []platform.DeviceInfo `json:"devices"`
		}
		if getJSON(s.t, "http://"+s.api+"/api/devices", &list) != 200 {
			return false
		}
		for _, d := range list.Devices {
			if d.Online {
				id = d.DevID
				return true
			}
		}
		return false
	})
	return id
}

func (s *site) device(devID string) platform.DeviceInfo {
	s.t.Helper()
	var info platform.DeviceInfo
	getJSON(s.t, "http://"+s.api+"/api/devices/"+devID, &info)
	return info
}

// events returns every event the platform holds for devID.
func (s *site) events(devID string) []platform.Event {
	s.t.Helper()
	var all []platform.Event
	var after uint64
	for {
		var page struct {
			Events []platform.Event `json:"events"`
			Next   uint64           `json:"next"`
		}
		if code := getJSON(s.t, fmt.Sprintf("http://%s/api/devices/%s/events?after=%d&limit=1000", s.api, devID, after), &page); code != 200 {
			s.t.Fatalf("events: HTTP %d", code)
		}
		all = append(all, page.Events...)
		if len(page.Events) == 0 || page.Next <= after {
			return all
		}
		after = page.Next
	}
}

// request posts a set/get/invoke through the platform and returns the reply.
func (s *site) request(devID, verb string, body any) (code int, reply struct {
	ID   string          `json:"id"`
	Code int             `json:"code"`
	Msg  string          `json:"msg"`
	Body json.RawMessage `json:"body"`
}) {
	s.t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(fmt.Sprintf("http://%s/api/devices/%s/%s", s.api, devID, verb), "application/json", bytes.NewReader(b))
	if err != nil {
		s.t.Fatalf("POST %s: %v", verb, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(raw, &reply); err != nil {
			s.t.Fatalf("POST %s: %v\n%s", verb, err, raw)
		}
	} else {
		reply.Msg = string(raw)
	}
	return resp.StatusCode, reply
}

// gatewayStatus reads the gateway's /status.
func (s *site) gatewayStatus() (st struct {
	Outbox struct {
		Events   int `json:"events"`
		Pictures int `json:"pictures"`
	} `json:"outbox"`
	Upstream struct {
		State string `json:"state"`
	} `json:"upstream"`
	Devices []struct {
		ID    string `json:"id"`
		State string `json:"state"`
	} `json:"devices"`
}) {
	s.t.Helper()
	getJSON(s.t, "http://"+s.gwHTTP+"/status", &st)
	return st
}
