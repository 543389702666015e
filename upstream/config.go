package upstream

import (
	"crypto/rand"
	"crypto/tls"
	"io"
	"log/slog"
	"time"
)

// Defaults of Config.
const (
	DefaultHeartbeat       = 30 * time.Second
	DefaultRefreshFraction = 0.8
	DefaultBackoffMin      = time.Second
	DefaultBackoffMax      = 5 * time.Minute
)

// Timeouts of the session's own steps. They bound how long Run takes to
// return after its context ends (stopTimeout in all).
const (
	connectTimeout = 10 * time.Second       // TCP + TLS + CONNACK
	writeTimeout   = 10 * time.Second       // one packet write; also bounds Publish
	subackTimeout  = 10 * time.Second       // SUBSCRIBE → SUBACK
	drainTimeout   = 2 * time.Second        // in-flight QoS 1 before a planned disconnect
	statusTimeout  = time.Second            // PUBACK of the final {"online":false}
	quiesce        = 250 * time.Millisecond // DISCONNECT write
	downlinkQueue  = 64                     // downlinks received, not yet handled
	reauthAfter    = 4                      // failed connects before asking the LBS for a DAS again
)

// Config tunes a Session. The zero value is usable: every field has a
// default.
type Config struct {
	// Heartbeat is the MQTT keep-alive; PINGREQ goes out when nothing else
	// was sent for this long. Default 30 s; the protocol counts whole
	// seconds, so it is rounded down and at least 1 s.
	Heartbeat time.Duration
	// TLS configures mqtts:// connections (the CA to trust). Nil means the
	// system roots. The minimum version is raised to TLS 1.2 when lower.
	TLS *tls.Config
	// AttributeQoS is recorded for the bridge; the session itself sends
	// with the QoS each Publish asks for.
	AttributeQoS byte
	// RefreshFraction of the session key's lifetime is when it is
	// refreshed. Default 0.8.
	RefreshFraction float64
	// BackoffMin and BackoffMax bound the delay between failed attempts:
	// it doubles from BackoffMin to BackoffMax, and each delay is drawn at
	// random from its upper half. Defaults 1 s and 5 min.
	BackoffMin, BackoffMax time.Duration
	// Logger receives the session's logs. Default slog.Default().
	Logger *slog.Logger
	// Rand supplies nonces. Default crypto/rand.Reader.
	Rand io.Reader
	// Now is the clock for login passwords, message times and key
	// lifetimes. Default time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Heartbeat < time.Second {
		if c.Heartbeat <= 0 {
			c.Heartbeat = DefaultHeartbeat
		} else {
			c.Heartbeat = time.Second
		}
	}
	if c.RefreshFraction <= 0 || c.RefreshFraction >= 1 {
		c.RefreshFraction = DefaultRefreshFraction
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = DefaultBackoffMin
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = max(DefaultBackoffMax, c.BackoffMin)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}
