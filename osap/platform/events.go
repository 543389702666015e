package platform

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"
)

// Event is one event.report the platform has stored, deduplicated on
// (DevID, ID).
type Event struct {
	// Seq is the platform-side sequence number: strictly increasing in
	// arrival order within one EventStore, starting at 1.
	Seq uint64 `json:"seq"`
	// DevID is the gateway that reported the event.
	DevID string `json:"devid"`
	// ID is the gateway's event id (its outbox sequence number).
	ID string `json:"id"`
	// Dev is the sub-device, empty for the gateway itself.
	Dev string `json:"dev"`
	// Resource and Name are taken from the body when it has them.
	Resource string `json:"resource,omitempty"`
	Name     string `json:"event,omitempty"`
	// Pictures and PictureError are taken from the body: the ids of the
	// event's pictures at the picture service, or why it has none.
	Pictures     []string `json:"pictures,omitempty"`
	PictureError string   `json:"picture_error,omitempty"`
	// Body is the application payload as the gateway sent it.
	Body json.RawMessage `json:"body,omitempty"`
	// Captured is the capture time the gateway reported; Received is when
	// the platform stored the event.
	Captured time.Time `json:"captured"`
	Received time.Time `json:"received"`
}

// EventStore keeps events in memory, indexed per device, and, when it has a
// file, appends each new one to it as a JSON line and syncs the file before
// Add returns. Reopening the file restores the events, their sequence numbers
// and the deduplication. Several DAS instances may share one store; it is
// safe for concurrent use.
type EventStore struct {
	mu     sync.Mutex
	f      *os.File // nil for a store in memory only
	path   string
	closed bool
	seq    uint64 // the last sequence number given (and written)

	cond    *sync.Cond // on mu: a sync has ended
	synced  uint64     // every line up to this seq is on disk
	syncing bool       // one Add is running fsync, mu released
	failed  error      // sticky write or sync error
	noSync  bool       // write without fsync (benchmarks of the gateway)
	byDev   map[string]*deviceEvents
}

type deviceEvents struct {
	list []Event // in Seq order
	ids  map[string]uint64
}

// maxEventLine bounds one line of the event file: a business message is at
// most osap.MaxMessageSize, and its JSON encoding in the line adds little.
const maxEventLine = 4 << 20

// OpenEventStore opens (creating it when absent) the event file at path and
// loads the events it holds; an empty path gives a store in memory only. The
// file is locked (flock) so that a second store on it fails instead of
// interleaving lines. A torn last line (a crash in the middle of a write,
// never acknowledged to the device) is cut off; any other bad line is an
// error naming path:line.
func OpenEventStore(path string) (*EventStore, error) {
	s := &EventStore{path: path, byDev: map[string]*deviceEvents{}}
	s.cond = sync.NewCond(&s.mu)
	if path == "" {
		return s, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open event store: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("open event store %q: locked by another process or store: %w", path, err)
	}
	if err := s.load(f); err != nil {
		f.Close()
		return nil, err
	}
	s.f = f
	s.synced = s.seq
	return s, nil
}

func (s *EventStore) load(f *os.File) error {
	r := bufio.NewReader(f)
	var off int64
	for line := 1; ; line++ {
		b, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// Long line: gather it.
			buf := append([]byte(nil), b...)
			for errors.Is(err, bufio.ErrBufferFull) && len(buf) <= maxEventLine {
				b, err = r.ReadSlice('\n')
				buf = append(buf, b...)
			}
			if len(buf) > maxEventLine {
				return fmt.Errorf("%s:%d: line over %d bytes", s.path, line, maxEventLine)
			}
			b = buf
		}
		if err == io.EOF {
			if len(b) > 0 {
				// A write that did not finish: it was never synced, so never
				// acknowledged. Cut it off.
				if err := f.Truncate(off); err != nil {
					return fmt.Errorf("%s:%d: cut torn line: %w", s.path, line, err)
				}
			}
			break
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", s.path, err)
		}
		off += int64(len(b))
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			continue
		}
		var ev Event
		if err := json.Unmarshal(b, &ev); err != nil {
			return fmt.Errorf("%s:%d: %w", s.path, line, err)
		}
		if ev.DevID == "" || ev.ID == "" || ev.Seq <= s.seq {
			return fmt.Errorf("%s:%d: event without devid, id or increasing seq", s.path, line)
		}
		if !s.insert(ev) {
			continue // a duplicate line left by a failed sync; the first one counts
		}
		s.seq = ev.Seq
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		return fmt.Errorf("seek %s: %w", s.path, err)
	}
	return nil
}

// insert adds ev to the index unless (DevID, ID) is there already.
func (s *EventStore) insert(ev Event) bool {
	de := s.byDev[ev.DevID]
	if de == nil {
		de = &deviceEvents{ids: map[string]uint64{}}
		s.byDev[ev.DevID] = de
	}
	if _, dup := de.ids[ev.ID]; dup {
		return false
	}
	de.ids[ev.ID] = ev.Seq
	de.list = append(de.list, ev)
	return true
}

// Add stores ev under the next sequence number and returns it with Seq set,
// and true; or, when (ev.DevID, ev.ID) is stored already, the stored event
// and false. With a file, Add returns once the event (or the stored one it
// duplicates) is written and synced; concurrent Adds share one fsync (group
// commit). On error the caller must not acknowledge the event. A write or
// sync error is sticky: the store refuses every later Add, since what
// reached the disk is no longer known.
func (s *EventStore) Add(ev Event) (Event, bool, error) {
	if ev.DevID == "" || ev.ID == "" {
		return Event{}, false, fmt.Errorf("add event: %w: devid %q, id %q", ErrInvalidRequest, ev.DevID, ev.ID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Event{}, false, fmt.Errorf("add event %q of %q: %w", ev.ID, ev.DevID, ErrStoreClosed)
	}
	if s.failed != nil {
		return Event{}, false, fmt.Errorf("add event %q of %q: %w", ev.ID, ev.DevID, s.failed)
	}
	if de := s.byDev[ev.DevID]; de != nil {
		if seq, dup := de.ids[ev.ID]; dup {
			if err := s.waitSynced(seq); err != nil {
				return Event{}, false, fmt.Errorf("add event %q of %q: %w", ev.ID, ev.DevID, err)
			}
			return de.find(seq), false, nil
		}
	}
	ev.Seq = s.seq + 1
	if s.f != nil {
		line, err := json.Marshal(ev)
		if err != nil {
			return Event{}, false, fmt.Errorf("add event %q of %q: %w", ev.ID, ev.DevID, err)
		}
		line = append(line, '\n')
		if _, err := s.f.Write(line); err != nil {
			s.failed = fmt.Errorf("write %s: %w", s.path, err)
			return Event{}, false, fmt.Errorf("add event %q of %q: %w", ev.ID, ev.DevID, s.failed)
		}
	}
	s.seq = ev.Seq
	s.insert(ev)
	if err := s.waitSynced(ev.Seq); err != nil {
		return Event{}, false, fmt.Errorf("add event %q of %q: %w", ev.ID, ev.DevID, err)
	}
	return ev, true, nil
}

// waitSynced returns once every line up to seq is synced, syncing itself
// when no other caller is. s.mu is held, and released during the fsync.
func (s *EventStore) waitSynced(seq uint64) error {
	for s.f != nil && !s.noSync && s.synced < seq {
		if s.failed != nil {
			return s.failed
		}
		if s.syncing {
			s.cond.Wait()
			continue
		}
		s.syncing = true
		target, f := s.seq, s.f
		s.mu.Unlock()
		err := f.Sync()
		s.mu.Lock()
		s.syncing = false
		if err != nil {
			s.failed = fmt.Errorf("sync %s: %w", s.path, err)
		} else {
			s.synced = target
		}
		s.cond.Broadcast()
	}
	return nil
}

func (de *deviceEvents) find(seq uint64) Event {
	i := sort.Search(len(de.list), func(i int) bool { return de.list[i].Seq >= seq })
	if i < len(de.list) && de.list[i].Seq == seq {
		return de.list[i]
	}
	return Event{}
}

// Events returns up to limit events of devID with a sequence number above
// after, in arrival order. A limit of 0 or less means no limit.
func (s *EventStore) Events(devID string, after uint64, limit int) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	de := s.byDev[devID]
	if de == nil {
		return []Event{}
	}
	i := sort.Search(len(de.list), func(i int) bool { return de.list[i].Seq > after })
	rest := de.list[i:]
	if limit > 0 && len(rest) > limit {
		rest = rest[:limit]
	}
	return append([]Event{}, rest...)
}

// Len returns how many events of devID are stored.
func (s *EventStore) Len(devID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if de := s.byDev[devID]; de != nil {
		return len(de.list)
	}
	return 0
}

// DevIDs returns the devices that have events, sorted.
func (s *EventStore) DevIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.byDev))
	for id := range s.byDev {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Close releases the file. The store must not be used afterwards. It
// returns the error of closing the file, if any.
func (s *EventStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for s.syncing {
		s.cond.Wait()
	}
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	if err != nil {
		return fmt.Errorf("close event store %s: %w", s.path, err)
	}
	return nil
}

// SetSync chooses whether Add waits for the event to reach the disk
// (fsync) before it returns, which is the default. Without it, events
// still reach the file, but a crash of the machine (not of the process)
// can lose the last ones after they were acknowledged. Benchmarks of the
// gateway turn it off so that the emulator's disk is not what they measure.
func (s *EventStore) SetSync(on bool) {
	s.mu.Lock()
	s.noSync = !on
	s.mu.Unlock()
}
