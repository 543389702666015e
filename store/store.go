package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Defaults for Options.
const (
	DefaultMaxBytes = 256 << 20
	DefaultMaxAge   = 7 * 24 * time.Hour
	// MaxEventBytes bounds the encoded size of one event (its device id,
	// resource, name and parameters as JSON, a few bytes of header, and the
	// key and bbolt's overhead).
	MaxEventBytes = 1 << 20
)

// maxBytes32 bounds Options.MaxBytes on 32-bit systems: the file may grow
// to about twice the live data before it is compacted, and compaction maps
// a second file.
const maxBytes32 = 512 << 20

// SchemaVersion is the version of the layout this build writes. Open
// migrates older files step by step (see migrations) and refuses newer ones.
//
//  1. meta, outbox (format-1 records), values, credentials buckets.
//  2. outbox records are written in format 2.
//  3. outbox records of events with a picture are written in format 3.
const SchemaVersion = 3

// schemaVersion is SchemaVersion, variable so that tests can pretend a
// newer build with a migration step.
var schemaVersion uint64 = SchemaVersion

// Bucket and key names.
var (
	bucketMeta   = []byte("meta")
	bucketOutbox = []byte("outbox")
	bucketValues = []byte("values")
	bucketCreds  = []byte("credentials")

	keySchema      = []byte("schema")
	keyCount       = []byte("outbox.count")
	keyBytes       = []byte("outbox.bytes")
	keyDropped     = []byte("outbox.dropped")
	keyOverflow    = []byte("outbox.overflow")
	keyPicDropped  = []byte("pictures.dropped")
	keyCorruptions = []byte("corruptions")
	keyCreds       = []byte("current")
)

// migrations[v] upgrades a file from schema v to v+1, inside the write
// transaction that also stores the new version. When the layout changes,
// bump SchemaVersion and add the step here (never edit a released step).
var migrations = map[uint64]func(tx *bolt.Tx) error{
	// Format-1 outbox records stay as they are (they are read, never
	// written) until acknowledged. The step changes nothing but the version,
	// so that an osapgw that knows only format 1 refuses the file
	// (ErrNewerSchema) instead of taking format-2 records for damaged or
	// expired ones and deleting them.
	1: func(*bolt.Tx) error { return nil },
	// Likewise for format-3 records (events with a picture): an osapgw
	// of schema 2 would delete them as damaged.
	2: func(*bolt.Tx) error { return nil },
}

// Options configures a Store. The zero value is usable.
type Options struct {
	// MaxBytes bounds the outbox: the sum over stored events of key, value
	// and bbolt's per-entry overhead. When an append would exceed it, the
	// oldest events are dropped. Default DefaultMaxBytes (256 MiB); at
	// most 512 MiB on 32-bit systems (Open returns ErrInvalid beyond).
	MaxBytes int64
	// MaxAge bounds the outbox by capture time: events captured longer ago
	// are dropped. Default DefaultMaxAge (7 days).
	MaxAge time.Duration
	// MaxPictureBytes bounds one picture (AttachPicture). Default
	// DefaultMaxPictureBytes (8 MiB). Pictures count against MaxBytes
	// with the outbox.
	MaxPictureBytes int64
	// Logger receives the store's logs. Default slog.Default().
	Logger *slog.Logger
	// Now returns the current time (for tests). Default time.Now.
	Now func() time.Time
	// NoSync skips fsync. Writes are then NOT durable; use it only in
	// benchmarks that compare against the durable path.
	NoSync bool

	// Unexported knobs for tests.
	compactMinBytes int64         // default 32 MiB
	compactEvery    time.Duration // how often the file size is checked; default 10 s
	tick            time.Duration // age expiry period; default 1 min
}

// Store is an open store file. Its methods are safe for concurrent use.
type Store struct {
	path   string
	opts   Options
	log    *slog.Logger
	reqs   chan *request
	quit   chan struct{} // closed by Close
	done   chan struct{} // closed when the committer has returned
	closer sync.Once

	dbmu sync.RWMutex // guards db against the swap in compaction
	db   *bolt.DB
	dead error // set when the file could not be reopened after compaction

	stmu      sync.Mutex
	state     state
	otherLive int64 // file bytes beyond the outbox after the last compaction
	// spool holds the size of each picture file in the spool, by event
	// id. The committer changes it after each commit (applySpool).
	spool map[uint64]int64

	// bootSeq is the outbox sequence when the file was opened: a picture
	// still pending in an event at or below it was asked for by an
	// earlier run, and never comes.
	bootSeq uint64

	// Commit figures for benchmarks: transactions, requests, time.
	commits, commitReqs, commitNanos atomic.Int64

	// noSpace counts writes refused for lack of space since Open; full
	// is set when an append is refused so and cleared by the next append
	// that succeeds (Stats().NoSpace, Stats().DiskFull).
	noSpace atomic.Uint64
	full    atomic.Bool

	// Owned by the committer goroutine.
	overflowing      bool
	episodeDrops     uint64
	nextCompactCheck time.Time
}

// state is the outbox's bookkeeping, kept in memory and in the meta bucket.
type state struct {
	count       int
	bytes       int64
	oldest      time.Time
	dropped     uint64
	overflow    uint64
	corruptions uint64

	// The picture spool: files and bytes (not stored: Open counts them),
	// pictures dropped by the bound (stored).
	pictures   int
	picBytes   int64
	picDropped uint64
	// The spool files one write adds and removes, applied once it is
	// committed (applySpool).
	added  []spoolEntry
	unlink []uint64
}

// Open opens the store at path, creating it (mode 0600, its directory 0700)
// if absent, and starts its committer. It refuses a file or directory that
// other users can read (ErrInsecure), a file of a newer schema
// (ErrNewerSchema), a bbolt file that is not a store (ErrNotStore) and a
// file held by another process (ErrLocked). A damaged file is moved aside
// and a fresh one started, with an error log and Stats().Corruptions
// counting it; Open then succeeds.
func Open(path string, opts Options) (*Store, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	if opts.MaxPictureBytes <= 0 {
		opts.MaxPictureBytes = DefaultMaxPictureBytes
	}
	if strconv.IntSize == 32 && opts.MaxBytes > maxBytes32 {
		return nil, fmt.Errorf("store: max bytes %d over %d on a 32-bit system, where bbolt maps the file (and a compaction copy) into 2 GiB of address space: %w",
			opts.MaxBytes, maxBytes32, ErrInvalid)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.compactMinBytes <= 0 {
		opts.compactMinBytes = 32 << 20
	}
	if opts.compactEvery <= 0 {
		opts.compactEvery = 10 * time.Second
	}
	if opts.tick <= 0 {
		opts.tick = time.Minute
	}
	s := &Store{
		path: path,
		opts: opts,
		log:  opts.Logger.With("component", "store", "path", path),
		reqs: make(chan *request, 1024),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	if err := checkPermissions(path); err != nil {
		return nil, err
	}
	if err := os.Remove(path + compactSuffix); err == nil {
		s.log.Info("removed an unfinished compaction", "file", path+compactSuffix)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("store: remove unfinished compaction: %w", err)
	}

	db, st, err := s.openFile(false)
	var damaged *damageError
	if errors.As(err, &damaged) {
		aside := fmt.Sprintf("%s.corrupt-%s", path, opts.Now().UTC().Format("20060102T150405.000000000Z"))
		if rerr := os.Rename(path, aside); rerr != nil {
			return nil, fmt.Errorf("store: move damaged file %q aside: %w (damage: %w)", path, rerr, err)
		}
		_ = syncDir(filepath.Dir(path))
		s.log.Error("store file damaged; moved aside and started a fresh one; stored events and credentials in it are lost",
			"moved_to", aside, "err", damaged.err)
		db, st, err = s.openFile(true)
	}
	if err != nil {
		return nil, err
	}
	s.db = db
	s.state = st
	if err := s.openSpool(); err != nil {
		db.Close()
		return nil, err
	}
	go s.commitLoop()
	return s, nil
}

// damageError marks a file that cannot be used as it is.
type damageError struct{ err error }

func (e *damageError) Error() string { return "damaged: " + e.err.Error() }
func (e *damageError) Unwrap() error { return e.err }

// openFile opens and checks the bbolt file and loads the state. fresh
// records a corruption in the new file's counters.
func (s *Store) openFile(fresh bool) (db *bolt.DB, st state, err error) {
	// bbolt panics on some damaged pages; a fault on the mapping (a page
	// beyond the end of the file) becomes a panic too in this goroutine.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			// A panic inside bolt.Open leaves its descriptor and mapping
			// behind; they are few bytes and go at exit.
			if db != nil {
				db.Close()
			}
			db, st, err = nil, state{}, &damageError{fmt.Errorf("bbolt panicked: %v", r)}
		}
	}()
	if err := precheck(s.path); err != nil {
		return nil, state{}, err
	}
	db, err = s.openBolt(s.path)
	if err != nil {
		return nil, state{}, err
	}
	st, err = s.prepare(db, fresh)
	if err != nil {
		db.Close()
		return nil, state{}, err
	}
	return db, st, nil
}

func (s *Store) openBolt(path string) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      time.Second,
		NoSync:       s.opts.NoSync,
		FreelistType: bolt.FreelistMapType,
	})
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("store: open %q: %w", path, ErrLocked)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch):
		return nil, &damageError{fmt.Errorf("bbolt open: %w", err)}
	}
	return nil, fmt.Errorf("store: open %q: %w", path, err)
}

// prepare checks the file's consistency, creates or migrates the schema and
// returns the outbox state.
func (s *Store) prepare(db *bolt.DB, fresh bool) (state, error) {
	var errs []error
	if err := db.View(func(tx *bolt.Tx) error {
		for e := range tx.Check() {
			errs = append(errs, e)
		}
		return nil
	}); err != nil {
		return state{}, fmt.Errorf("store: check: %w", err)
	}
	if len(errs) > 0 {
		return state{}, &damageError{fmt.Errorf("consistency check: %w", errors.Join(errs...))}
	}
	var st state
	err := db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			empty := true
			_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
			if !empty {
				return fmt.Errorf("store: %q: %w", s.path, ErrNotStore)
			}
			var err error
			if meta, err = tx.CreateBucket(bucketMeta); err != nil {
				return err
			}
			ob, err := tx.CreateBucket(bucketOutbox)
			if err != nil {
				return err
			}
			// A new file continues above any id an earlier file may have
			// handed out: ids start at the current time in microseconds.
			if seed := s.opts.Now().UnixMicro(); seed > 0 {
				if err := ob.SetSequence(uint64(seed)); err != nil {
					return err
				}
			}
			for _, name := range [][]byte{bucketValues, bucketCreds} {
				if _, err := tx.CreateBucket(name); err != nil {
					return err
				}
			}
			if err := putU64(meta, keySchema, schemaVersion); err != nil {
				return err
			}
			if fresh {
				if err := putU64(meta, keyCorruptions, 1); err != nil {
					return err
				}
			}
		}
		v := getU64(meta, keySchema)
		if v > schemaVersion {
			return fmt.Errorf("store: %q has schema version %d, this osapgw knows up to %d; run a newer osapgw or move the file away: %w",
				s.path, v, schemaVersion, ErrNewerSchema)
		}
		if v == 0 {
			return &damageError{errors.New("meta bucket without a schema version")}
		}
		for ; v < schemaVersion; v++ {
			step, ok := migrations[v]
			if !ok {
				return fmt.Errorf("store: no migration from schema %d: %w", v, ErrNewerSchema)
			}
			if err := step(tx); err != nil {
				return fmt.Errorf("store: migrate schema %d to %d: %w", v, v+1, err)
			}
			if err := putU64(meta, keySchema, v+1); err != nil {
				return err
			}
			s.log.Info("migrated store schema", "from", v, "to", v+1)
		}
		for _, name := range [][]byte{bucketOutbox, bucketValues, bucketCreds} {
			if tx.Bucket(name) == nil {
				return &damageError{fmt.Errorf("bucket %q missing", name)}
			}
		}
		st = state{
			count:       int(getU64(meta, keyCount)),
			bytes:       int64(getU64(meta, keyBytes)),
			dropped:     getU64(meta, keyDropped),
			overflow:    getU64(meta, keyOverflow),
			corruptions: getU64(meta, keyCorruptions),
			picDropped:  getU64(meta, keyPicDropped),
		}
		st.oldest = oldest(tx.Bucket(bucketOutbox))
		s.bootSeq = tx.Bucket(bucketOutbox).Sequence()
		return nil
	})
	return st, err
}

// precheck reads bbolt's meta pages and reports a file shorter than its
// high-water mark: bbolt would map the missing pages and the process would
// die of SIGBUS on the first read.
func precheck(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: open %q: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("store: stat %q: %w", path, err)
	}
	size := fi.Size()
	if size == 0 {
		return nil
	}
	var best *boltMeta
	for _, off := range []int64{0, 4096, 16384, 65536} {
		m, ok := readBoltMeta(f, off)
		if !ok {
			continue
		}
		if best == nil || m.txid > best.txid {
			best = &m
		}
		if off == 0 {
			// The second meta page sits one page in.
			if m2, ok := readBoltMeta(f, int64(m.pageSize)); ok && m2.txid > best.txid {
				best = &m2
			}
		}
	}
	if best == nil {
		return &damageError{errors.New("no valid bbolt meta page")}
	}
	if need := int64(best.pgid) * int64(best.pageSize); size < need {
		return &damageError{fmt.Errorf("file has %d bytes, its meta page needs %d (truncated)", size, need)}
	}
	return nil
}

// Close stops the committer after it has finished the writes already
// handed to it, and closes the file. It returns the error of closing the
// file, if any; calls after the first return nil.
func (s *Store) Close() error {
	var err error
	s.closer.Do(func() {
		close(s.quit)
		<-s.done
		s.dbmu.Lock()
		defer s.dbmu.Unlock()
		if s.db != nil {
			err = s.db.Close()
			s.db = nil
		}
		if err != nil {
			err = fmt.Errorf("store: close: %w", err)
		}
	})
	return err
}

// view runs fn in a read transaction on the current file.
func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	s.dbmu.RLock()
	defer s.dbmu.RUnlock()
	if s.dead != nil {
		return s.dead
	}
	if s.db == nil {
		return ErrClosed
	}
	return s.db.View(fn)
}

// checkPermissions creates the directory of path (0700) if needed and
// refuses a directory or file that other users can read.
func checkPermissions(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("store: create directory %q: %w", dir, err)
	}
	if runtime.GOOS == "windows" {
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("store: stat %q: %w", dir, err)
	}
	if p := fi.Mode().Perm(); p&0o077 != 0 {
		return fmt.Errorf("store: directory %q has mode %#o and other users can read it; fix it with: chmod 700 %s: %w",
			dir, p, dir, ErrInsecure)
	}
	fi, err = os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: stat %q: %w", path, err)
	}
	if p := fi.Mode().Perm(); p&0o077 != 0 {
		return fmt.Errorf("store: file %q has mode %#o and other users can read it; fix it with: chmod 600 %s: %w",
			path, p, path, ErrInsecure)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func putU64(b *bolt.Bucket, k []byte, v uint64) error {
	return b.Put(k, binary.BigEndian.AppendUint64(nil, v))
}

func getU64(b *bolt.Bucket, k []byte) uint64 {
	v := b.Get(k)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// oldest returns the capture time of the first record in the outbox.
func oldest(ob *bolt.Bucket) time.Time {
	_, v := ob.Cursor().First()
	if v == nil {
		return time.Time{}
	}
	at, _ := decodeEventAt(v)
	return at
}

// isNoSpace reports whether err means the file system or the file is full.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) ||
		errors.Is(err, syscall.EFBIG) || errors.Is(err, berrors.ErrMaxSizeReached)
}

// noteWrite records the outcome of a write for Stats: every write
// refused for lack of space counts in NoSpace; only appends (isAppend)
// set DiskFull, when refused so, or clear it, when they succeed.
func (s *Store) noteWrite(err error, isAppend bool) {
	full := err != nil && (isNoSpace(err) || errors.Is(err, ErrNoSpace))
	if full {
		s.noSpace.Add(1)
	}
	if isAppend && (err == nil || full) {
		s.full.Store(full)
	}
}

// wrapWrite names the place and maps a full disk to ErrNoSpace.
func wrapWrite(place string, err error) error {
	if isNoSpace(err) {
		return fmt.Errorf("store: %s: %w: %w", place, ErrNoSpace, err)
	}
	return fmt.Errorf("store: %s: %w", place, err)
}
