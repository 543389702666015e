// Package soap is the transport of the ONVIF adapter: SOAP 1.2 over HTTP
// and HTTPS, with the request and response types of github.com/use-go/onvif
// (or the adapter's own) marshalled into and out of the envelope.
//
// # Guarantees
//
//   - Every call takes a context; its deadline and cancellation end the
//     HTTP exchange, and a per-client timeout bounds each call as well.
//   - A SOAP fault is returned as a *Fault carrying the fault code, subcode
//     and reason; an HTTP error without a fault as a *StatusError; a body
//     that is not a SOAP envelope as an error wrapping ErrMalformed.
//   - Authentication is chosen from the camera's answer: a 401 with a
//     WWW-Authenticate Digest challenge switches the client to HTTP Digest
//     (RFC 7616, MD5 or SHA-256, qop=auth), a fault NotAuthorized switches it
//     to WS-UsernameToken (PasswordDigest with nonce and created, the latter
//     shifted by the camera's clock offset). Each call retries at most once
//     per switch.
//   - A Client owns its HTTP transport; Close releases every idle
//     connection and their goroutines. Response bodies are always read to
//     a bound and closed.
package soap
