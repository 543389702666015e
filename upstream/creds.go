package upstream

import (
	"context"
	"time"

	"github.com/osapgw/osapgw/osap"
)

// Credentials are what the gateway holds after authenticating with the LBS:
// its identity (DevID, master key, negotiated suite) and the current session
// (session key, its lifetime, and the DAS to connect to).
type Credentials = osap.Credentials

// Authenticator obtains credentials from the LBS. With stored nil or
// without a DevID it runs first authentication; otherwise it
// re-authenticates with the stored master key (and falls back to first
// authentication itself when the LBS answers status 4). It returns the full
// credentials, including the DAS address and a new session key.
type Authenticator interface {
	Authenticate(ctx context.Context, stored *Credentials) (Credentials, error)
}

// CredentialStore keeps the gateway's credentials across restarts.
// LoadCredentials reports false when nothing is stored yet.
type CredentialStore interface {
	LoadCredentials() (Credentials, bool, error)
	SaveCredentials(Credentials) error
}

// Handler receives the session's events. Connected runs on a goroutine the
// session owns, once after every connect and subscribe; its ctx ends when
// that connection ends, and the session waits for it to return before it
// calls Disconnected, once per Connected (err nil at stop, ErrKeyRefresh
// for a key refresh, the cause for a loss). Disconnected and Downlink run
// on the session's goroutines too and must return promptly: Downlink is
// called one message at a time, and the message is acknowledged to the
// broker only when it returns. Unreadable is called in Downlink's place,
// in the same way, for a downlink that opened with the session key but
// does not decode, whose id could be read (see osap.UnreadableError): the
// handler answers a request with code 400 (binding 2.4), so that the
// platform is not left waiting for a reply. A downlink that does not open,
// or whose id cannot be read, is logged and dropped.
type Handler interface {
	Connected(ctx context.Context)
	Disconnected(err error)
	Downlink(m osap.Message)
	Unreadable(h osap.Header, err error)
}

// usable reports whether c can be used to connect at now, without asking
// the LBS first.
func usable(c *Credentials, now time.Time, fraction float64) bool {
	if c.DevID == "" || len(c.SessionKey) == 0 || c.DASAddress == "" {
		return false
	}
	if c.Lifetime <= 0 {
		return c.SessionExpiry.IsZero() || now.Before(c.SessionExpiry)
	}
	return now.Before(refreshAt(c, fraction))
}

// refreshAt is when the session key should be refreshed: fraction of its
// lifetime after it was issued. The zero time means never.
func refreshAt(c *Credentials, fraction float64) time.Time {
	if c.Lifetime <= 0 || c.SessionExpiry.IsZero() {
		return time.Time{}
	}
	issued := c.SessionExpiry.Add(-c.Lifetime)
	return issued.Add(time.Duration(float64(c.Lifetime) * fraction))
}
