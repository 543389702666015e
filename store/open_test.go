package store

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/osapgw/osapgw/model"
)

func TestOpenCreatesPrivateFile(t *testing.T) {
	_, path := mustOpen(t, Options{})
	tests := []struct {
		name string
		path string
		want os.FileMode
	}{
		{name: "file", path: path, want: 0o600},
		{name: "directory", path: filepath.Dir(path), want: 0o700},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fi, err := os.Stat(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			// The umask may only remove bits; none for others may remain.
			if got := fi.Mode().Perm(); got&^tt.want != 0 || got&0o077 != 0 {
				t.Errorf("mode of %s = %#o, want %#o", tt.path, got, tt.want)
			}
		})
	}
}

func TestOpenRefusesReadableByOthers(t *testing.T) {
	tests := []struct {
		name     string
		dirMode  os.FileMode
		fileMode os.FileMode // 0: no file
		wantFix  string
	}{
		{name: "file readable by others", dirMode: 0o700, fileMode: 0o644, wantFix: "chmod 600 "},
		{name: "file readable by group", dirMode: 0o700, fileMode: 0o640, wantFix: "chmod 600 "},
		{name: "directory readable by others", dirMode: 0o755, wantFix: "chmod 700 "},
		{name: "directory writable by group", dirMode: 0o770, fileMode: 0o600, wantFix: "chmod 700 "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			if err := os.Mkdir(dir, tt.dirMode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tt.dirMode); err != nil { // past the umask
				t.Fatal(err)
			}
			path := filepath.Join(dir, "osapgw.db")
			if tt.fileMode != 0 {
				if err := os.WriteFile(path, nil, tt.fileMode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tt.fileMode); err != nil {
					t.Fatal(err)
				}
			}
			s, err := Open(path, Options{Logger: quietLogger(t)})
			if err == nil {
				s.Close()
				t.Fatalf("Open = nil, want ErrInsecure")
			}
			if !errors.Is(err, ErrInsecure) || !strings.Contains(err.Error(), tt.wantFix) {
				t.Errorf("Open = %v, want ErrInsecure saying %q", err, tt.wantFix)
			}
		})
	}
}

// newPath returns a path in a fresh private directory.
func newPath(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "osapgw.db")
}

func TestOpenDamagedFileStartsAfresh(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{name: "garbage", damage: func(t *testing.T, path string) {
			writeFile(t, path, []byte(strings.Repeat("not a bbolt file ", 1000)))
		}},
		{name: "truncated", damage: func(t *testing.T, path string) {
			fillStore(t, path, 2000)
			fi, _ := os.Stat(path)
			if err := os.Truncate(path, fi.Size()/3); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "too short for a meta page", damage: func(t *testing.T, path string) {
			fillStore(t, path, 10)
			if err := os.Truncate(path, 100); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "both meta pages damaged", damage: func(t *testing.T, path string) {
			fillStore(t, path, 10)
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for _, off := range []int64{16, 4096 + 16} {
				if _, err := f.WriteAt([]byte("XXXXXXXX"), off); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{name: "data pages overwritten", damage: func(t *testing.T, path string) {
			fillStore(t, path, 2000)
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fi, _ := f.Stat()
			junk := []byte(strings.Repeat("\xff\x13", 4096))
			for off := int64(2 * 4096); off < fi.Size(); off += 3 * 4096 {
				if _, err := f.WriteAt(junk, off); err != nil {
					t.Fatal(err)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := newPath(t)
			tt.damage(t, path)
			h := &countHandler{counts: map[slog.Level]int{}}
			s, err := Open(path, Options{Logger: slog.New(h)})
			if err != nil {
				t.Fatalf("Open(damaged) = %v, want a fresh store", err)
			}
			defer func() { s.Close(); checkFile(t, path) }()
			if got := s.Stats(); got.Corruptions != 1 || got.Count != 0 {
				t.Errorf("Stats() = %+v, want Corruptions 1, Count 0", got)
			}
			if n := h.count(slog.LevelError); n != 1 {
				t.Errorf("%d error logs, want 1", n)
			}
			aside, _ := filepath.Glob(path + ".corrupt-*")
			if len(aside) != 1 {
				t.Errorf("files moved aside = %v, want one", aside)
			}
			if _, err := s.Append(context.Background(), Event{Resource: "main", Name: "tick"}); err != nil {
				t.Errorf("Append on the fresh store = %v", err)
			}
		})
	}
}

func TestOpenNewerSchemaRefused(t *testing.T) {
	path := newPath(t)
	fillStore(t, path, 1)
	setSchema(t, path, SchemaVersion+1)
	before, _ := os.ReadFile(path)
	s, err := Open(path, Options{Logger: quietLogger(t)})
	if err == nil {
		s.Close()
		t.Fatal("Open = nil, want ErrNewerSchema")
	}
	if !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), "newer osapgw") {
		t.Errorf("Open = %v, want ErrNewerSchema naming a newer osapgw", err)
	}
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Error("Open changed a file it refused")
	}
	if aside, _ := filepath.Glob(path + ".corrupt-*"); len(aside) != 0 {
		t.Errorf("moved aside %v; a newer file must be left alone", aside)
	}
}

func TestOpenMigrates(t *testing.T) {
	path := newPath(t)
	fillStore(t, path, 3)
	// Pretend a build with the next schema, whose step adds a bucket.
	schemaVersion = SchemaVersion + 1
	migrations[SchemaVersion] = func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket([]byte("added-by-next"))
		return err
	}
	defer func() {
		schemaVersion = SchemaVersion
		delete(migrations, SchemaVersion)
	}()
	s, err := Open(path, Options{Logger: quietLogger(t)})
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	if recs, _ := s.Pending(0, 10); len(recs) != 3 {
		t.Errorf("Pending after migration = %d records, want 3", len(recs))
	}
	s.Close()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error {
		if v := getU64(tx.Bucket(bucketMeta), keySchema); v != SchemaVersion+1 {
			t.Errorf("schema after migration = %d, want %d", v, SchemaVersion+1)
		}
		if tx.Bucket([]byte("added-by-next")) == nil {
			t.Error("the migration step did not run")
		}
		return nil
	})
}

func TestOpenRefusesForeignAndLocked(t *testing.T) {
	t.Run("foreign bbolt file", func(t *testing.T) {
		path := newPath(t)
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("etcd")); return err }); err != nil {
			t.Fatal(err)
		}
		db.Close()
		if s, err := Open(path, Options{Logger: quietLogger(t)}); !errors.Is(err, ErrNotStore) {
			if s != nil {
				s.Close()
			}
			t.Errorf("Open(foreign) = %v, want ErrNotStore", err)
		}
	})
	t.Run("locked", func(t *testing.T) {
		s, path := mustOpen(t, Options{})
		_ = s
		start := time.Now()
		if s2, err := Open(path, Options{Logger: quietLogger(t)}); !errors.Is(err, ErrLocked) {
			if s2 != nil {
				s2.Close()
			}
			t.Errorf("second Open = %v, want ErrLocked", err)
		}
		_ = start
	})
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// fillStore creates a store at path with n events and closes it.
func fillStore(t *testing.T, path string, n int) {
	t.Helper()
	s, err := Open(path, Options{Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	// Concurrent appends share fsyncs: much faster than appendN.
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				if _, err := s.Append(context.Background(), Event{Dev: "dev", Resource: "main", Name: "tick", Params: map[string]any{"n": i}}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func setSchema(t *testing.T, path string, v uint64) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { return putU64(tx.Bucket(bucketMeta), keySchema, v) }); err != nil {
		t.Fatal(err)
	}
}

func TestDamagedRecordsRemoved(t *testing.T) {
	path := newPath(t)
	s, err := Open(path, Options{Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ids := appendN(t, s, "d", 3)
	if err := s.PutValues("d", "main", map[string]model.Value{"x": {V: 1.5}, "y": {V: "ok"}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Damage the second event and one value in place (same length, so the
	// stored byte count stays right).
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		ob := tx.Bucket(bucketOutbox)
		v := append([]byte(nil), ob.Get(idKey(ids[1]))...)
		v[0] = 0xee
		if err := ob.Put(idKey(ids[1]), v); err != nil {
			return err
		}
		vb := tx.Bucket(bucketValues)
		k := valueKey("d", "main", "x")
		v = append([]byte(nil), vb.Get(k)...)
		v[10] = 0x7f // unknown kind
		return vb.Put(k, v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	h := &countHandler{counts: map[slog.Level]int{}}
	s, err = Open(path, Options{Logger: slog.New(h)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close(); checkFile(t, path) }()
	recs, err := s.Pending(0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].ID != ids[0] || recs[1].ID != ids[2] {
		t.Errorf("Pending = %d records, want ids %d and %d", len(recs), ids[0], ids[2])
	}
	var got []string
	if err := s.DrainValues(func(dev, res string, v map[string]model.Value) error {
		for k := range v {
			got = append(got, k)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "y" {
		t.Errorf("DrainValues offered %v, want [y]", got)
	}
	if st := s.Stats(); st.Corruptions != 2 || st.Count != 2 {
		t.Errorf("Stats() = %+v, want Corruptions 2, Count 2", st)
	}
	if n := h.count(slog.LevelError); n != 2 {
		t.Errorf("%d error logs, want 2 (one per damaged record)", n)
	}
	if recs, _ := s.Pending(0, 10); len(recs) != 2 {
		t.Errorf("second Pending = %d records, want 2", len(recs))
	}
}
