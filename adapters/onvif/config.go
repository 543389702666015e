package onvif

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/osapgw/osapgw/adapters"
)

// Config is the [[device]] block of one camera.
type Config struct {
	// URL is the device service address.
	URL string `toml:"url"`
	// Username is the camera account ("" for a camera without auth).
	Username string `toml:"username"`
	// PasswordFile holds the password; it must not be readable by others.
	PasswordFile string `toml:"password_file"`
	// Timeout bounds each call (default 10s).
	Timeout time.Duration `toml:"timeout"`
	// Poll is the period of attribute reports (default 30s).
	Poll time.Duration `toml:"poll"`
	// Events enables the PullPoint subscription (default true).
	Events *bool `toml:"events"`
	// EventMap maps topics to events before the built-in mapping: the
	// key is a topic (namespace prefixes ignored; a last segment "*"
	// matches the topics beneath), the value motion, tamper,
	// line_crossing, intrusion, digital_input, video_loss, or
	// onvif.event to report the topic unmapped.
	EventMap map[string]string `toml:"event_map"`
	// HostRewrite replaces the host of reported service addresses with the
	// one of URL (default true).
	HostRewrite *bool `toml:"host_rewrite"`
	// InsecureTLS skips certificate verification.
	InsecureTLS bool `toml:"insecure_tls"`
	// CAFile verifies the camera's certificate (read when connecting).
	CAFile string `toml:"ca_file"`
	// SnapshotOn names the events that take a picture (binding 2.7):
	// the snapshot goes with the event to the picture service.
	SnapshotOn []string `toml:"snapshot_on"`
}

func (c *Config) events() bool      { return c.Events == nil || *c.Events }
func (c *Config) hostRewrite() bool { return c.HostRewrite == nil || *c.HostRewrite }

// validate checks the fields and fills the defaults. Its errors are
// *adapters.FieldError (joined) naming device id and the key.
func (c *Config) validate(id string) error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &adapters.FieldError{Device: id, Key: key, Err: fmt.Errorf(format, args...)})
	}
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		bad("url", "url: missing")
	case err != nil:
		bad("url", "url: %w", err)
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		bad("url", "url: %q is not an http(s) address", c.URL)
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Timeout < 0 {
		bad("timeout", "timeout: %v is negative", c.Timeout)
	}
	if c.Poll == 0 {
		c.Poll = 30 * time.Second
	}
	if c.Poll < time.Second {
		bad("poll", "poll: %v is shorter than 1s", c.Poll)
	}
	if c.PasswordFile != "" && c.Username == "" {
		bad("password_file", "password_file: set without username")
	}
	if c.InsecureTLS && c.CAFile != "" {
		bad("insecure_tls", "insecure_tls and ca_file: set both")
	}
	for _, err := range eventMapErrors(c.EventMap) {
		errs = append(errs, &adapters.FieldError{Device: id, Key: "event_map", Err: err})
	}
	errs = append(errs, c.validateSnapshotOn(id))
	return errors.Join(errs...)
}

// readSecret reads a password file, refusing one that others can read.
func readSecret(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("password_file: %w", err)
	}
	if fi.Mode().Perm()&0o007 != 0 {
		return "", fmt.Errorf("password_file: %q is accessible by others (mode %v); chmod o-rwx it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("password_file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}
