package onvif

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
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
	// HostRewrite replaces the host of reported service addresses with the
	// one of URL (default true).
	HostRewrite *bool `toml:"host_rewrite"`
	// InsecureTLS skips certificate verification.
	InsecureTLS bool `toml:"insecure_tls"`
	// CAFile verifies the camera's certificate (read when connecting).
	CAFile string `toml:"ca_file"`
}

func (c *Config) events() bool      { return c.Events == nil || *c.Events }
func (c *Config) hostRewrite() bool { return c.HostRewrite == nil || *c.HostRewrite }

// validate checks the fields and fills the defaults.
func (c *Config) validate() error {
	var errs []error
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		errs = append(errs, errors.New("url: missing"))
	case err != nil:
		errs = append(errs, fmt.Errorf("url: %w", err))
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		errs = append(errs, fmt.Errorf("url: %q is not an http(s) address", c.URL))
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout: %v is negative", c.Timeout))
	}
	if c.Poll == 0 {
		c.Poll = 30 * time.Second
	}
	if c.Poll < time.Second {
		errs = append(errs, fmt.Errorf("poll: %v is shorter than 1s", c.Poll))
	}
	if c.PasswordFile != "" && c.Username == "" {
		errs = append(errs, errors.New("password_file: set without username"))
	}
	if c.InsecureTLS && c.CAFile != "" {
		errs = append(errs, errors.New("insecure_tls and ca_file: set both"))
	}
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
