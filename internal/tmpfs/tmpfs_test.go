package tmpfs

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMountFill mounts a 1 MiB tmpfs, fills it, and checks that it is
// full and holds about its size.
func TestMountFill(t *testing.T) {
	dir := Mount(t, 1<<20)
	n := Fill(t, filepath.Join(dir, "ballast"))
	if n < 900<<10 || n > 1<<20 {
		t.Errorf("Fill wrote %d bytes to a 1 MiB tmpfs, want about 1 MiB", n)
	}
	if free := Free(t, dir); free != 0 {
		t.Errorf("Free after Fill = %d, want 0", free)
	}
	if err := os.WriteFile(filepath.Join(dir, "more"), make([]byte, 8192), 0o600); err == nil {
		t.Error("writing to a full tmpfs succeeded, want ENOSPC")
	}
}
