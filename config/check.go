package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/osapgw/osapgw/adapters"
)

// ReadSecret reads a secret (a verification code, a password) from a file
// that only its owner may read. field names the setting for errors.
func ReadSecret(path, field string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s: %s has mode %04o, readable by others; run: chmod 0600 %s", field, path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s: %s is empty", field, path)
	}
	return s, nil
}

// VerificationCode reads the gateway's verification code and checks that it
// has the length the box label gives (6 to 32 characters). The error names
// the field; it wraps fs.ErrNotExist while the box is not provisioned.
func (c *Config) VerificationCode() (string, error) {
	code, err := ReadSecret(c.Gateway.VerificationCodeFile, "gateway.verification_code_file")
	if err != nil {
		return "", err
	}
	if n := len([]rune(code)); n < 6 || n > 32 {
		return "", fmt.Errorf("gateway.verification_code_file: %s holds %d characters, want 6 to 32", c.Gateway.VerificationCodeFile, n)
	}
	return code, nil
}

// Warnings returns what is valid but will keep the gateway from doing its
// whole job: today, a verification code file that does not exist yet (a
// box not yet provisioned: it runs its devices and keeps their events, and
// connects to the platform once the file is there).
func (c *Config) Warnings() []string {
	var w []string
	if _, err := os.Stat(c.Gateway.VerificationCodeFile); errors.Is(err, fs.ErrNotExist) {
		w = append(w, fmt.Sprintf("gateway.verification_code_file: %s does not exist yet: the gateway will not connect to the platform until it does (write the code from the box label there, mode 0600)", c.Gateway.VerificationCodeFile))
	}
	return w
}

// Build parses the device's section with its kind and returns the adapter.
// Errors name the device (the kind's own errors name the field).
func (d Device) Build(env adapters.Env) (adapters.Adapter, error) {
	k, ok := adapters.Lookup(d.Kind)
	if !ok {
		return nil, fmt.Errorf("device %q: unknown kind %q", d.ID, d.Kind)
	}
	a, err := k.New(d.ID, d.Decoder(), env)
	if err != nil {
		return nil, d.placed(err)
	}
	return a, nil
}

// placed prefixes err with the device's place unless it names it already.
func (d Device) placed(err error) error {
	if strings.Contains(err.Error(), fmt.Sprintf("device %q", d.ID)) {
		return err
	}
	where := ""
	if d.where != nil {
		where = d.where("id") + ": "
	}
	return fmt.Errorf("%sdevice %q: %w", where, d.ID, err)
}

// Check validates what Parse cannot without touching the file system or the
// adapters: the verification code file, and every enabled device's section
// as its kind parses it. It returns every problem found, joined.
func (c *Config) Check(env func(Device) adapters.Env) error {
	var errs []error
	if _, err := c.VerificationCode(); err != nil && !errors.Is(err, fs.ErrNotExist) {
		if errors.Is(err, fs.ErrPermission) {
			err = fmt.Errorf("%w (unreadable)", err)
		}
		errs = append(errs, fmt.Errorf("%s: %w", c.Path, err))
	}
	for _, d := range c.Devices {
		if d.Disabled {
			continue
		}
		if _, ok := adapters.Lookup(d.Kind); !ok {
			continue // reported by Parse
		}
		if _, err := d.Build(env(d)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
