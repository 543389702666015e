package config

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
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
// Its errors are *Error (joined when there are several), each placed at
// the file and line of its key and naming the device.
func (d Device) Build(env adapters.Env) (adapters.Adapter, error) {
	k, ok := adapters.Lookup(d.Kind)
	if !ok {
		return nil, d.at(nil, "kind", fmt.Errorf("device %q: unknown kind %q", d.ID, d.Kind))
	}
	a, err := k.New(d.ID, d.Decoder(), env)
	if err != nil {
		return nil, d.place(err)
	}
	return a, nil
}

// Warnings returns the warnings of the device's adapter a (built from d)
// when it has any, each placed as Build places errors.
func (d Device) Warnings(a adapters.Adapter) []error {
	w, ok := a.(adapters.Warner)
	if !ok {
		return nil
	}
	return Problems(d.place(errors.Join(w.Warnings()...)))
}

// place puts each problem that err joins at the line of its key: that of
// the *adapters.FieldError it wraps, or the device's block when it wraps
// none. A problem that does not name the device is made to.
func (d Device) place(err error) error {
	var li *lineIndex
	var out []error
	for _, e := range Problems(err) {
		if errors.As(e, new(*Error)) {
			out = append(out, e) // placed already
			continue
		}
		key := ""
		var fe *adapters.FieldError
		if errors.As(e, &fe) {
			key = fe.Key
		}
		if fe == nil || fe.Device == "" {
			e = &adapters.FieldError{Device: d.ID, Key: key, Err: e}
		}
		if li == nil {
			li = d.lines()
		}
		out = append(out, d.at(li, key, e))
	}
	sortByLine(out)
	return errors.Join(out...)
}

// sortByLine puts placed errors in the order of the file.
func sortByLine(errs []error) {
	slices.SortStableFunc(errs, func(a, b error) int { return cmp.Compare(line(a), line(b)) })
}

// line returns the line of a placed error, 0 for another.
func line(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Line
	}
	return 0
}

// Check validates what Parse cannot without touching the file system or the
// adapters: the verification code file, and every enabled device's section
// as its kind parses it. It returns every problem found, joined, and the
// warnings of the devices' adapters (adapters.Warner): what is valid but
// wants a look, such as a secret file that does not exist yet. Problems
// and warnings about a key are *Error, placed at its line.
func (c *Config) Check(env func(Device) adapters.Env) (warnings []error, err error) {
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
		if _, ok := adapters.Lookup(d.Kind); !ok || d.ID == "" {
			continue // reported by Parse
		}
		a, err := d.Build(env(d))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		warnings = append(warnings, d.Warnings(a)...)
	}
	return warnings, errors.Join(errs...)
}
