// Package platform is the platform side of OSAP, as the emulator
// (cmd/osap-platform) runs it: the LBS that authenticates gateways, the
// device registry, and the device access service (DAS) they connect to over
// MQTT, with a small HTTP API over all of it.
//
// # DAS
//
// A DAS is an embedded MQTT 3.1.1 broker (mochi-mqtt) with one hook that
// enforces the binding (docs/protocol.md, "DAS"):
//
//   - CONNECT: client id = user name = DevID; the password must open with
//     one of the session keys the KeySource gives for the DevID, carry a
//     time within LoginMaxAge (300 s) of the DAS's clock either way, and a
//     nonce not seen before. A bad, stale, future or replayed password is
//     refused with CONNACK 4 (bad user name or password); an unknown DevID,
//     a client id that is not the user name, or a will on another topic than
//     the device's status topic with CONNACK 5 (not authorized). Only MQTT
//     3.1.1 is spoken; QoS 2 is downgraded to 1; nothing is retained.
//   - A device publishes only to osap/v1/{its DevID}/up/... and subscribes
//     only to osap/v1/{its DevID}/down/...; anything else is refused and
//     logged (a QoS 1 publish elsewhere closes the connection, as MQTT 3.1.1
//     has no negative PUBACK; a subscription elsewhere gets SUBACK 0x80).
//   - Every uplink is opened with the key the device logged in with (or the
//     others the KeySource gave), the topic as AAD, and checked to carry a
//     type that belongs on its topic. What cannot be opened is logged and
//     dropped, but acknowledged, since sending it again cannot help.
//   - topo.add is answered with topo.reply (same id) on down/topo, listing
//     the sub-devices accepted; code 400 names the models refused.
//
// # Picture service
//
// A PictureService is the picture service of binding 2.7, served by the
// emulator on its API listener under /osap (EmulatorConfig.PicturePath;
// EmulatorConfig.NoPictures turns it off) and announced by the LBS in 0xB
// (tag 0x0D). An upload's token is checked as a login password is, by
// the same code: it opens with the current or the previous session key,
// its time is within 300 s of the service's clock either way, its nonce
// has not been seen (counted as seen only once every other check has
// passed); then the body's SHA-256 must be the token's. The body is
// streamed to a temporary file and never read beyond 8 MiB + 1 byte.
// A PictureFault refuses or holds uploads, for tests.
//
// # Guarantees
//
//   - A picture answered with 201 is durable: its bytes were written to a
//     temporary file, fsynced and renamed to {id}.jpg, its record
//     ({id}.json: dev, size, sha256, time) written the same way, and the
//     directory synced, before the answer. A restarted service lists and
//     serves it; an upload a crash interrupted leaves nothing behind.

//   - The registry persists DevIDs, master keys, suites and session keys in
//     a JSON state file written atomically (temporary file, rename, mode
//     0600): after a crash the file holds either the state before a change
//     or the state after it. Changes of identity (a new DevID or master
//     key) are fsynced before the LBS answers; session key refreshes are
//     not (a refresh lost in a machine crash only makes the gateway
//     re-authenticate).
//   - The LBS closes every connection it accepts before Serve returns, and
//     bounds every frame read with a deadline.
//   - Events are deduplicated on (DevID, id). An event.report is written to
//     the event file and synced before mochi sends its PUBACK (mochi calls
//     the OnPublish hook before it acknowledges), so an acknowledged event
//     survives a crash of the emulator, and a restarted emulator still
//     recognises a redelivered one. If the event cannot be stored the device
//     is disconnected without a PUBACK, so that it sends the event again.
//   - Concurrent gateways share fsyncs (group commit); one gateway's events
//     are stored one after the other, in the order it sent them.
//   - Serve owns every goroutine it starts (mochi's client goroutines are
//     waited for through its listener); when it returns, every connection
//     is closed. It may be called again: the same address is bound again.
//
// # Caveats
//
//   - Topology, online state and last attribute values are kept in memory
//     only; a restarted emulator learns them again from the gateways.
//   - MQTT sessions (clean session false) live as long as the DAS serves;
//     a restart of Serve forgets them, so devices subscribe again.
//   - Events are kept in memory as well as in the file, which grows without
//     bound: this is an emulator for tests, the demo and the bench.
package platform
