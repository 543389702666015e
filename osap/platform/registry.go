package platform

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/osapgw/osapgw/osap"
)

// ErrUnknownDevice is returned when a serial or DevID is not in the
// registry, or a DevID has no master key yet.
var ErrUnknownDevice = errors.New("unknown device")

// Registry holds the devices the platform knows: serial and verification
// code (from the devices file), and what authentication assigned (DevID,
// master key, suite, session keys), persisted in the state file. It is safe
// for concurrent use.
type Registry struct {
	mu        sync.Mutex
	statePath string // "" keeps the state in memory only
	gen       uint64 // bumped by every change, under mu
	saveMu    sync.Mutex
	savedGen  uint64 // the generation on disk, under mu
	syncedGen uint64 // the generation on disk and fsynced, under mu
	now       func() time.Time
	bySerial  map[string]*entry
	byDevID   map[string]*entry
}

// entry is one device; the exported fields are its persisted state.
type entry struct {
	Serial    string          `json:"serial"`
	DevID     string          `json:"devid,omitempty"`
	MasterKey []byte          `json:"master_key,omitempty"`
	Suite     osap.Suite      `json:"suite,omitempty"`
	Info      osap.DeviceInfo `json:"info"`
	Sessions  []sessionKey    `json:"sessions,omitempty"` // current first, then the previous one

	code        string // verification code; never persisted or logged
	shareKey    []byte
	shareDomain string
}

type sessionKey struct {
	Key     []byte    `json:"key"`
	Expires time.Time `json:"expires"`
}

type stateFile struct {
	Devices []*entry `json:"devices"`
}

// devicesFile is the TOML of the devices file.
type devicesFile struct {
	Device []struct {
		Serial           string `toml:"serial"`
		VerificationCode string `toml:"verification_code"`
	} `toml:"device"`
}

// NewRegistry returns an empty registry whose state lives in statePath
// ("" for memory only), loading that file when it exists. It returns an
// error when the file exists but cannot be read or parsed.
func NewRegistry(statePath string) (*Registry, error) {
	r := &Registry{statePath: statePath, now: time.Now, bySerial: map[string]*entry{}, byDevID: map[string]*entry{}}
	if statePath == "" {
		return r, nil
	}
	b, err := os.ReadFile(statePath)
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("registry state: %w", err)
	}
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("registry state %s: %w", statePath, err)
	}
	for i, e := range st.Devices {
		if e == nil || e.Serial == "" {
			return nil, fmt.Errorf("registry state %s: device %d has no serial", statePath, i)
		}
		if _, dup := r.bySerial[e.Serial]; dup {
			return nil, fmt.Errorf("registry state %s: serial %q twice", statePath, e.Serial)
		}
		r.bySerial[e.Serial] = e
		if e.DevID != "" {
			r.byDevID[e.DevID] = e
		}
	}
	return r, nil
}

// LoadRegistry reads the devices file (TOML: [[device]] serial = "…",
// verification_code = "…") and the state file (see NewRegistry). Unknown
// keys, a missing serial, a verification code outside 6–32 characters and
// duplicate serials are errors naming the file and the device.
func LoadRegistry(devicesPath, statePath string) (*Registry, error) {
	var df devicesFile
	md, err := toml.DecodeFile(devicesPath, &df)
	if err != nil {
		return nil, fmt.Errorf("devices file: %w", err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("devices file %s: unknown keys %s", devicesPath, strings.Join(keys, ", "))
	}
	seen := map[string]bool{}
	for i, d := range df.Device {
		n := len([]rune(d.VerificationCode))
		switch {
		case d.Serial == "":
			return nil, fmt.Errorf("devices file %s: device %d: no serial", devicesPath, i+1)
		case seen[d.Serial]:
			return nil, fmt.Errorf("devices file %s: device %q: serial listed twice", devicesPath, d.Serial)
		case n < 6 || n > 32:
			return nil, fmt.Errorf("devices file %s: device %q: verification_code has %d characters, want 6 to 32", devicesPath, d.Serial, n)
		}
		seen[d.Serial] = true
	}
	r, err := NewRegistry(statePath)
	if err != nil {
		return nil, err
	}
	for _, d := range df.Device {
		r.Add(d.Serial, d.VerificationCode)
	}
	return r, nil
}

// Add registers a device by serial and verification code, replacing the
// code of one already known (what authentication assigned is kept).
func (r *Registry) Add(serial, code string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.bySerial[serial]
	if e == nil {
		e = &entry{Serial: serial}
		r.bySerial[serial] = e
	}
	if e.code != code {
		e.code, e.shareKey = code, nil
	}
}

// Len returns the number of devices.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.bySerial)
}

// SessionKeys returns the suite of devID and its session keys: the current
// one first, then the previous one while the lifetime it was issued with
// lasts. It returns ErrUnknownDevice when devID has no session key.
func (r *Registry) SessionKeys(devID string) (osap.Suite, [][]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.byDevID[devID]
	if e == nil || len(e.Sessions) == 0 || len(e.MasterKey) == 0 {
		return 0, nil, fmt.Errorf("session keys of %q: %w", devID, ErrUnknownDevice)
	}
	now := r.now()
	keys := [][]byte{slices.Clone(e.Sessions[0].Key)}
	for _, s := range e.Sessions[1:] {
		if now.Before(s.Expires) {
			keys = append(keys, slices.Clone(s.Key))
		}
	}
	return e.Suite, keys, nil
}

// DeviceSerial returns the serial of devID.
func (r *Registry) DeviceSerial(devID string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.byDevID[devID]
	if e == nil {
		return "", false
	}
	return e.Serial, true
}

// DeviceInfo returns what devID said of itself in 0x7.
func (r *Registry) DeviceInfo(devID string) (osap.DeviceInfo, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.byDevID[devID]
	if e == nil {
		return osap.DeviceInfo{}, false
	}
	return e.Info, true
}

// shareKey returns the share key of serial under domain, computed once.
func (r *Registry) shareKey(serial, domain string) ([]byte, bool) {
	r.mu.Lock()
	e := r.bySerial[serial]
	if e == nil || e.code == "" {
		r.mu.Unlock()
		return nil, false
	}
	if e.shareKey != nil && e.shareDomain == domain {
		k := e.shareKey
		r.mu.Unlock()
		return k, true
	}
	code := e.code
	r.mu.Unlock()
	// PBKDF2 takes milliseconds: not under the lock.
	k := osap.ShareKey(code, serial, domain)
	r.mu.Lock()
	if e.code == code {
		e.shareKey, e.shareDomain = k, domain
	}
	r.mu.Unlock()
	return k, true
}

// devIDFor returns the DevID of serial, assigning a new one when it has
// none. The assignment is persisted with the master key by confirm.
func (r *Registry) devIDFor(serial string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.bySerial[serial]
	if e == nil {
		return "", fmt.Errorf("serial %q: %w", serial, ErrUnknownDevice)
	}
	if e.DevID != "" {
		return e.DevID, nil
	}
	for {
		var b [8]byte
		if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
			return "", fmt.Errorf("new DevID: %w", err)
		}
		id := hex.EncodeToString(b[:])
		if r.byDevID[id] == nil {
			e.DevID = id
			r.byDevID[id] = e
			return id, nil
		}
	}
}

// master returns the master key and suite of devID.
func (r *Registry) master(devID string) ([]byte, osap.Suite, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.byDevID[devID]
	if e == nil || len(e.MasterKey) == 0 {
		return nil, 0, false
	}
	return e.MasterKey, e.Suite, true
}

// confirm records the outcome of a confirmed first authentication and
// saves it durably.
func (r *Registry) confirm(serial, devID string, master []byte, suite osap.Suite, info osap.DeviceInfo, session []byte, lifetime time.Duration) error {
	r.mu.Lock()
	e := r.bySerial[serial]
	if e == nil || e.DevID != devID {
		r.mu.Unlock()
		return fmt.Errorf("confirm %q as %q: %w", serial, devID, ErrUnknownDevice)
	}
	e.MasterKey, e.Suite, e.Info = slices.Clone(master), suite, info
	e.Sessions = []sessionKey{{Key: slices.Clone(session), Expires: r.now().Add(lifetime)}}
	r.gen++
	gen := r.gen
	r.mu.Unlock()
	return r.save(gen, true)
}

// refresh makes session the current key of devID, keeping the previous one
// while its lifetime lasts.
func (r *Registry) refresh(devID string, session []byte, lifetime time.Duration) error {
	r.mu.Lock()
	e := r.byDevID[devID]
	if e == nil || len(e.MasterKey) == 0 {
		r.mu.Unlock()
		return fmt.Errorf("refresh %q: %w", devID, ErrUnknownDevice)
	}
	now := r.now()
	next := []sessionKey{{Key: slices.Clone(session), Expires: now.Add(lifetime)}}
	if len(e.Sessions) > 0 && now.Before(e.Sessions[0].Expires) {
		next = append(next, e.Sessions[0])
	}
	e.Sessions = next
	r.gen++
	gen := r.gen
	r.mu.Unlock()
	return r.save(gen, false)
}

// save writes the state, at least as new as generation gen, to the state
// file atomically: a temporary file in the same directory, then rename.
// Durable saves (a new DevID or master key) also fsync the file before the
// rename; a session key refresh does not: lost to a power cut, it costs the
// device one re-authentication, while an fsync per refresh would bound the
// LBS to the disk's flush rate. Concurrent saves coalesce (group commit):
// a save finding its generation already on disk (and synced, when it must
// be) returns at once.
func (r *Registry) save(gen uint64, durable bool) error {
	if r.statePath == "" {
		return nil
	}
	r.saveMu.Lock()
	defer r.saveMu.Unlock()
	r.mu.Lock()
	if r.savedGen >= gen && (!durable || r.syncedGen >= gen) {
		// Another save wrote (and, if need be, synced) a state at least
		// as new while we waited: group commit.
		r.mu.Unlock()
		return nil
	}
	st := stateFile{Devices: make([]*entry, 0, len(r.bySerial))}
	for _, e := range r.bySerial {
		c := *e
		c.Sessions = slices.Clone(e.Sessions)
		st.Devices = append(st.Devices, &c)
	}
	cur := r.gen
	r.mu.Unlock()
	slices.SortFunc(st.Devices, func(a, b *entry) int { return strings.Compare(a.Serial, b.Serial) })
	b, err := json.MarshalIndent(st, "", " ")
	if err != nil {
		return fmt.Errorf("registry state: %w", err)
	}
	if err := writeAtomic(r.statePath, b, durable); err != nil {
		return fmt.Errorf("registry state: %w", err)
	}
	r.mu.Lock()
	r.savedGen = cur
	if durable {
		r.syncedGen = cur
	}
	r.mu.Unlock()
	return nil
}

// writeAtomic replaces path with b (mode 0600) through a temporary file
// and a rename, fsyncing the file first when durable.
func writeAtomic(path string, b []byte, durable bool) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".registry-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if durable {
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			return err
		}
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Device is what the registry knows of one device, without its keys.
type Device struct {
	Serial string
	DevID  string // empty until first authentication is confirmed
	Suite  osap.Suite
	Info   osap.DeviceInfo
	// SessionExpiry is when the current session key's lifetime ends (zero
	// without one).
	SessionExpiry time.Time
}

// Devices lists the devices by serial.
func (r *Registry) Devices() []Device {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Device, 0, len(r.bySerial))
	for _, e := range r.bySerial {
		d := Device{Serial: e.Serial, Suite: e.Suite, Info: e.Info}
		if len(e.MasterKey) > 0 {
			d.DevID = e.DevID
		}
		if len(e.Sessions) > 0 {
			d.SessionExpiry = e.Sessions[0].Expires
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b Device) int { return strings.Compare(a.Serial, b.Serial) })
	return out
}
