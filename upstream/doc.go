// Package upstream is the gateway's MQTT session with the platform's device
// access service (DAS), as bound by docs/protocol.md section 2.4: it
// authenticates with the LBS through an Authenticator, connects, keeps the
// connection alive with the heartbeat, refreshes the session key, and
// reconnects after losses, while the bridge publishes through it and
// receives downlinks from it.
//
// # Connections
//
// Every CONNECT uses client id = user name = DevID, a login password built
// for that CONNECT (paho's CredentialsProvider, so it is never stale),
// clean session false, keep-alive = Config.Heartbeat, and the will
// {"online":false} on up/status with QoS 1, sealed under the connection's
// session key. After CONNACK the session subscribes to down/# with QoS 1,
// publishes {"online":true} on up/status and calls Handler.Connected. When
// Run's context ends it stops taking publishes, waits up to 2 s for the
// QoS 1 messages in flight, publishes {"online":false}, sends DISCONNECT
// (the broker then discards the will) and returns, within about 4 s.
//
// Failed attempts are retried after a delay that doubles from
// Config.BackoffMin to Config.BackoffMax, drawn at random from its upper
// half (jitter). CONNACK 4 or 5 makes the session re-authenticate with the
// LBS at once (the Authenticator falls back to first authentication on LBS
// status 4); if freshly issued credentials are refused too, the session
// backs off first. After every 4 failed connections in a row it asks the
// LBS again too, since the DAS may be gone and the LBS may send the
// gateway to another one. Stored credentials whose session key is still
// short of its refresh time are used without asking the LBS. The session key is refreshed at Config.RefreshFraction
// (80 %) of its lifetime while the connection stays up; the session then
// closes the connection cleanly and connects with the new key. The broker
// keeps the persistent session (client id and clean session false), so the
// subscription and the downlinks queued meanwhile survive the switch.
//
// # In-flight messages and session keys
//
// The session never lets paho resend a message on a later connection.
// Each connection is its own paho client with its own in-memory store, and
// is not reconnected: the session builds a new client for the next one.
// This is a decision, for three reasons:
//
//   - A message sealed under one session key must not be resent under a
//     later one: the platform accepts the previous key only until the end
//     of the lifetime it was issued with (binding 2.2), and an outage can
//     outlast that. The will, too, must be sealed under the key of the
//     connection that carries it, and paho fixes the will when the client
//     is created.
//   - paho completes the token of a resent message successfully as soon as
//     it resends it, before any PUBACK (messageIds.claimID in v1.5.1), so a
//     caller deleting events from its outbox on that token could lose them.
//   - paho's memory store dies with the process anyway; the durable copy of
//     every event is the bridge's outbox.
//
// So: done(nil) means the broker acknowledged the message (QoS 1) or it
// was written (QoS 0). A message still unacknowledged when its connection
// ends gets done(err) with err wrapping ErrConnectionLost, and the caller
// sends it again, sealed under the then current key. Before a planned
// disconnect (key refresh, stop) the session first waits up to 2 s for the
// PUBACKs of the messages in flight, so this rarely happens outside
// outages. Delivery is at least once; the platform deduplicates events on
// (DevID, id).
//
// Downlinks are opened with the newest session key, and with the previous
// one until its expiry, since the platform may seal with either around a
// refresh. Each is acknowledged only after Handler.Downlink returns; one
// that arrives while 64 are waiting is left unacknowledged, and the broker
// sends it again on the next connection.
//
// # Handler
//
// Handler.Connected runs once per connection, on its own goroutine, after
// SUBSCRIBE and {"online":true}; its context ends when the connection ends
// (lost, key refresh, or stop). Handler.Disconnected follows once per
// Connected, after Connected has returned: with nil at stop, ErrKeyRefresh
// for a key refresh, and the cause for a loss. Publish returns
// ErrNotConnected from the moment a connection starts closing.
//
// # Pictures
//
// UploadPicture sends a picture to the picture service the LBS announced
// in 0xB with the current session key (binding 2.7, docs/protocol.md
// section 10), which PictureService reports. Each try rewinds the body,
// streams it with Content-Length and carries a token sealed for that try
// with the newest session key, since the platform refuses a nonce it has
// seen. 5xx answers and network errors are tried again (backoff, or the
// Retry-After asked for, at most Config.BackoffMax) until the caller's
// context ends; 4xx is final (ErrPictureRefused), and so is the absence of
// a picture service (ErrNoPictureService). One attempt is bounded to
// 2 min. Uploads need credentials, not a DAS connection.
//
// # Goroutines
//
// paho's callbacks only hand over to channels and never block. Every
// goroutine the session starts (one per publish in flight, one that
// dispatches downlinks, one running Handler.Connected) belongs to its
// connection and is waited for before the next connection starts and
// before Run returns. UploadPicture runs on its caller's goroutine; the
// idle connections of its HTTP client are closed when Run returns.
package upstream
