package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// States understood by systemd (see sd_notify(3)).
const (
	// Ready tells systemd that start-up (or a reload) has finished.
	Ready = "READY=1"
	// Reloading tells systemd that the service is reloading its
	// configuration; send Ready when done.
	Reloading = "RELOADING=1"
	// Stopping tells systemd that the service is shutting down.
	Stopping = "STOPPING=1"
	// Watchdog is the keep-alive ping for units with WatchdogSec=.
	Watchdog = "WATCHDOG=1"
)

// SocketEnv is the environment variable that names the notification socket.
const SocketEnv = "NOTIFY_SOCKET"

// Status returns the state that sets the free-form status line shown by
// `systemctl status`. Newlines in msg are replaced by spaces, since a
// newline would start another state.
func Status(msg string) string {
	return "STATUS=" + strings.ReplaceAll(msg, "\n", " ")
}

// Notify sends states, joined by newlines, as one datagram to the socket
// named by $NOTIFY_SOCKET. It returns false and a nil error when the
// variable is unset (not running under systemd's notify protocol), true
// when the datagram was sent, and an error naming the socket when sending
// failed.
func Notify(states ...string) (sent bool, err error) {
	socket := os.Getenv(SocketEnv)
	if socket == "" {
		return false, nil
	}
	if err := NotifySocket(socket, states...); err != nil {
		return false, err
	}
	return true, nil
}

// NotifySocket sends states, joined by newlines, as one datagram to the
// unix datagram socket at socket. A name starting with '@' is an abstract
// socket. It returns an error when there is nothing to send or the socket
// cannot be reached.
func NotifySocket(socket string, states ...string) error {
	if len(states) == 0 {
		return errors.New("sdnotify: no state to send")
	}
	if socket == "" {
		return errors.New("sdnotify: empty socket name")
	}
	// Go maps a leading '@' to the abstract namespace on Linux, which is
	// exactly systemd's convention.
	addr := &net.UnixAddr{Name: socket, Net: "unixgram"}
	conn, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return fmt.Errorf("sdnotify: dial %q: %w", socket, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(strings.Join(states, "\n"))); err != nil {
		return fmt.Errorf("sdnotify: send to %q: %w", socket, err)
	}
	return nil
}

// WatchdogInterval returns the watchdog timeout systemd expects this process
// to honour, from $WATCHDOG_USEC and $WATCHDOG_PID. It returns 0 and a nil
// error when the watchdog is off or addressed to another process, and an
// error when the variables are malformed. Ping at half the interval or more
// often (see RunWatchdog).
func WatchdogInterval() (time.Duration, error) {
	return watchdogInterval(os.Getenv("WATCHDOG_USEC"), os.Getenv("WATCHDOG_PID"), os.Getpid())
}

// watchdogInterval is WatchdogInterval on explicit values.
func watchdogInterval(usec, pid string, self int) (time.Duration, error) {
	if usec == "" {
		return 0, nil
	}
	us, err := strconv.ParseInt(usec, 10, 64)
	if err != nil || us <= 0 {
		return 0, fmt.Errorf("sdnotify: WATCHDOG_USEC %q is not a positive integer", usec)
	}
	if us > int64(time.Duration(1<<63-1)/time.Microsecond) {
		return 0, fmt.Errorf("sdnotify: WATCHDOG_USEC %q is out of range", usec)
	}
	if pid != "" {
		p, err := strconv.Atoi(pid)
		if err != nil || p <= 0 {
			return 0, fmt.Errorf("sdnotify: WATCHDOG_PID %q is not a process id", pid)
		}
		if p != self {
			return 0, nil
		}
	}
	return time.Duration(us) * time.Microsecond, nil
}

// RunWatchdog sends Watchdog every interval/2 until ctx ends, as long as
// alive (which may be nil, meaning always) reports true; a false from
// alive skips that ping, so a wedged daemon is restarted by systemd. It
// returns nil at once when interval is 0 (watchdog off), nil when ctx
// ends, and the first send error otherwise. Run it in the daemon's
// errgroup:
//
//	iv, err := sdnotify.WatchdogInterval()
//	...
//	g.Go(func() error { return sdnotify.RunWatchdog(ctx, iv, nil) })
func RunWatchdog(ctx context.Context, interval time.Duration, alive func() bool) error {
	if interval <= 0 {
		return nil
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		if alive == nil || alive() {
			if _, err := Notify(Watchdog); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
