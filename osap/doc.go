// Package osap implements the Open Service Access Protocol as bound by
// docs/protocol.md: share key, ECDH master key, the cipher suites that seal
// payloads, the LBS frames and messages of authentication, and the business
// messages carried over MQTT to the device access service.
//
// Every decoder in this package takes untrusted bytes: it never panics, and
// it allocates no more than a small multiple of its input.
package osap
