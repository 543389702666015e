// Package sdnotify is a small, dependency-free client of systemd's service
// notification protocol (sd_notify(3)) and of its watchdog.
//
// A service started with Type=notify tells systemd it is ready by sending
// "READY=1" as a datagram to the unix socket named by $NOTIFY_SOCKET; a unit
// with WatchdogSec= expects "WATCHDOG=1" at least once per interval, which
// systemd passes in $WATCHDOG_USEC (and $WATCHDOG_PID).
//
// # Guarantees
//
//   - Outside systemd (NOTIFY_SOCKET unset) every call is a no-op that
//     reports sent == false and a nil error, so the daemon runs the same way
//     in a terminal, in tests and under the unit.
//   - One call sends one datagram; several states passed together arrive
//     together (newline separated), as sd_notify(3) requires.
//   - Abstract sockets ("@name", as systemd uses in containers) and path
//     sockets are both supported.
//   - WatchdogInterval reports 0 when the watchdog is off or meant for
//     another process (WATCHDOG_PID differs from ours).
//
// # Caveats
//
// The package does not unset the environment variables after use, so child
// processes inherit them; the daemon starts no children that could misuse
// them. Messages are not authenticated beyond what the kernel passes to
// systemd (the sender's PID and credentials): the unit's NotifyAccess=main
// default accepts them only from the main process.
package sdnotify
