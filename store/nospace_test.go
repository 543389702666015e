package store

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoSpace fills a small tmpfs until appends fail, checks the error,
// that nothing stored was lost, and that appends work again once space is
// freed. It needs root (to mount) and skips otherwise.
func TestNoSpace(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	ballast := filepath.Join(dir, "ballast")
	writeFile(t, ballast, make([]byte, 512<<10))
	path := filepath.Join(dir, "state", "osapgw.db")
	s, err := Open(path, Options{Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	params := map[string]any{"text": strings.Repeat("x", 4000)}
	var stored []uint64
	var failure error
	for range 10000 {
		id, err := s.Append(context.Background(), Event{Dev: "d", Resource: "main", Name: "tick", Params: params})
		if err != nil {
			failure = err
			break
		}
		stored = append(stored, id)
	}
	if !errors.Is(failure, ErrNoSpace) {
		t.Fatalf("Append on a full disk = %v, want ErrNoSpace", failure)
	}
	t.Logf("%d events stored before: %v", len(stored), failure)
	// Another failure, then the stored events are all there.
	if _, err := s.Append(context.Background(), Event{Dev: "d", Resource: "main", Name: "tick", Params: params}); !errors.Is(err, ErrNoSpace) {
		t.Errorf("second Append on a full disk = %v, want ErrNoSpace", err)
	}
	checkIDs(t, s, stored)
	if st := s.Stats(); st.Count != len(stored) {
		t.Errorf("Stats().Count = %d, want %d", st.Count, len(stored))
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	id, err := s.Append(context.Background(), Event{Dev: "d", Resource: "main", Name: "tick", Params: params})
	if err != nil {
		t.Fatalf("Append once space is back = %v", err)
	}
	if id <= stored[len(stored)-1] {
		t.Errorf("id after recovery %d, want above %d", id, stored[len(stored)-1])
	}
	stored = append(stored, id)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path)
	s2, err := Open(path, Options{Logger: quietLogger(t)})
	if err != nil {
		t.Fatalf("reopen = %v", err)
	}
	defer s2.Close()
	checkIDs(t, s2, stored)
}

// checkIDs asserts that the outbox holds exactly ids, in order.
func checkIDs(t *testing.T, s *Store, ids []uint64) {
	t.Helper()
	recs, err := s.Pending(0, len(ids)+10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(ids) {
		t.Fatalf("Pending = %d records, want %d", len(recs), len(ids))
	}
	for i, r := range recs {
		if r.ID != ids[i] {
			t.Fatalf("record %d has id %d, want %d", i, r.ID, ids[i])
		}
	}
}
