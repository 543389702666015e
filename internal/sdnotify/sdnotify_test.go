package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// listen opens a unixgram socket for systemd's side of the protocol.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatalf("ListenUnixgram(%q) = %v", name, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// receive reads one datagram, failing the test if none is queued within a
// generous bound (the sender has already written it synchronously).
func receive(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("read datagram: %v", err)
	}
	return string(buf[:n])
}

// pending reports whether a datagram is queued on conn right now.
func pending(t *testing.T, conn *net.UnixConn) bool {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	n, err := conn.Read(make([]byte, 4096))
	return err == nil && n > 0
}

func TestNotify(t *testing.T) {
	tests := []struct {
		name   string
		socket func(t *testing.T) string
		states []string
		want   string
	}{
		{
			name:   "path socket ready",
			socket: func(t *testing.T) string { return filepath.Join(t.TempDir(), "n.sock") },
			states: []string{Ready},
			want:   "READY=1",
		},
		{
			name:   "path socket ready with status",
			socket: func(t *testing.T) string { return filepath.Join(t.TempDir(), "n.sock") },
			states: []string{Ready, Status("serving 3 devices")},
			want:   "READY=1\nSTATUS=serving 3 devices",
		},
		{
			name: "abstract socket stopping",
			socket: func(t *testing.T) string {
				return "@osapgw-sdnotify-test-" + strconv.Itoa(os.Getpid()) + "-" + filepath.Base(t.TempDir())
			},
			states: []string{Stopping},
			want:   "STOPPING=1",
		},
		{
			name:   "watchdog",
			socket: func(t *testing.T) string { return filepath.Join(t.TempDir(), "n.sock") },
			states: []string{Watchdog},
			want:   "WATCHDOG=1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			socket := tt.socket(t)
			conn := listen(t, socket)
			t.Setenv(SocketEnv, socket)
			sent, err := Notify(tt.states...)
			if err != nil || !sent {
				t.Fatalf("Notify(%q) = %v, %v, want true, nil", tt.states, sent, err)
			}
			if got := receive(t, conn); got != tt.want {
				t.Errorf("datagram = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNotifyWithoutSocketIsNoop(t *testing.T) {
	t.Setenv(SocketEnv, "")
	sent, err := Notify(Ready)
	if sent || err != nil {
		t.Errorf("Notify(Ready) without %s = %v, %v, want false, nil", SocketEnv, sent, err)
	}
}

func TestNotifyErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name   string
		socket string
		states []string
	}{
		{name: "no such socket", socket: filepath.Join(dir, "absent.sock"), states: []string{Ready}},
		{name: "no states", socket: filepath.Join(dir, "absent.sock"), states: nil},
		{name: "empty name", socket: "", states: []string{Ready}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := NotifySocket(tt.socket, tt.states...); err == nil {
				t.Errorf("NotifySocket(%q, %q) = nil, want an error", tt.socket, tt.states)
			}
		})
	}
	t.Run("env names absent socket", func(t *testing.T) {
		t.Setenv(SocketEnv, filepath.Join(dir, "absent.sock"))
		if sent, err := Notify(Ready); sent || err == nil {
			t.Errorf("Notify(Ready) = %v, %v, want false and an error", sent, err)
		}
	})
}

func TestStatusFoldsNewlines(t *testing.T) {
	if got, want := Status("a\nb"), "STATUS=a b"; got != want {
		t.Errorf("Status(%q) = %q, want %q", "a\nb", got, want)
	}
}

func TestWatchdogIntervalValues(t *testing.T) {
	const self = 4242
	tests := []struct {
		name    string
		usec    string
		pid     string
		want    time.Duration
		wantErr bool
	}{
		{name: "off", usec: "", pid: "", want: 0},
		{name: "on without pid", usec: "30000000", pid: "", want: 30 * time.Second},
		{name: "on for us", usec: "30000000", pid: "4242", want: 30 * time.Second},
		{name: "for another process", usec: "30000000", pid: "1", want: 0},
		{name: "not a number", usec: "30s", wantErr: true},
		{name: "zero", usec: "0", wantErr: true},
		{name: "negative", usec: "-5", wantErr: true},
		{name: "overflow", usec: "99999999999999999", wantErr: true},
		{name: "bad pid", usec: "1000", pid: "me", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := watchdogInterval(tt.usec, tt.pid, self)
			if (err != nil) != tt.wantErr {
				t.Fatalf("watchdogInterval(%q, %q) error = %v, want error %v", tt.usec, tt.pid, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("watchdogInterval(%q, %q) = %v, want %v", tt.usec, tt.pid, got, tt.want)
			}
		})
	}
}

func TestWatchdogIntervalFromEnv(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "15000000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	got, err := WatchdogInterval()
	if err != nil || got != 15*time.Second {
		t.Errorf("WatchdogInterval() = %v, %v, want 15s, nil", got, err)
	}
}

func TestWatchdogPings(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "n.sock")
	conn := listen(t, socket)
	t.Setenv(SocketEnv, socket)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- RunWatchdog(ctx, 2*time.Millisecond, nil) }()
	for i := range 3 {
		if got := receive(t, conn); got != Watchdog {
			t.Fatalf("ping %d = %q, want %q", i, got, Watchdog)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunWatchdog() after cancel = %v, want nil", err)
	}
}

func TestWatchdogSkipsPingsWhenNotAlive(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "n.sock")
	conn := listen(t, socket)
	t.Setenv(SocketEnv, socket)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var asked atomic.Int32
	alive := func() bool {
		if asked.Add(1) >= 3 {
			cancel()
		}
		return false
	}
	if err := RunWatchdog(ctx, 2*time.Millisecond, alive); err != nil {
		t.Fatalf("RunWatchdog() = %v, want nil", err)
	}
	if asked.Load() < 3 {
		t.Fatalf("alive asked %d times, want at least 3", asked.Load())
	}
	// Sends are synchronous: anything sent is queued by now.
	if pending(t, conn) {
		t.Errorf("a ping was sent while alive() reported false")
	}
}

func TestWatchdogOffReturnsAtOnce(t *testing.T) {
	t.Setenv(SocketEnv, filepath.Join(t.TempDir(), "absent.sock"))
	if err := RunWatchdog(context.Background(), 0, nil); err != nil {
		t.Errorf("RunWatchdog(0) = %v, want nil", err)
	}
}

func TestWatchdogReportsSendError(t *testing.T) {
	t.Setenv(SocketEnv, filepath.Join(t.TempDir(), "absent.sock"))
	err := RunWatchdog(context.Background(), time.Hour, nil)
	var opErr *net.OpError
	if err == nil || !errors.As(err, &opErr) {
		t.Errorf("RunWatchdog() to an absent socket = %v, want a *net.OpError", err)
	}
}

func ExampleNotify() {
	// Under systemd, NOTIFY_SOCKET is set; elsewhere this does nothing.
	os.Unsetenv(SocketEnv)
	sent, err := Notify(Ready, Status("serving"))
	fmt.Println(sent, err)
	// Output: false <nil>
}
