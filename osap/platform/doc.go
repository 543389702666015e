// Package platform is the platform side of the OSAP binding, for the
// emulator and tests: the device registry shared by the LBS and the DAS,
// and the LBS server (docs/protocol.md).
//
// # Guarantees
//
// The registry persists DevIDs, master keys, suites and session keys in a
// JSON state file written atomically (temporary file, fsync, rename, mode
// 0600): after a crash the file holds either the state before a change or
// the state after it. The LBS closes every connection it accepts before
// Serve returns, and bounds every frame read with a deadline.
package platform
