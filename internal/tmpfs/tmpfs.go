// Package tmpfs gives tests a small file system that fills up: Mount
// mounts a size-limited tmpfs on a fresh directory (and unmounts it when
// the test ends), Fill writes a file until the file system is full.
//
// Mounting needs root (CAP_SYS_ADMIN) on Linux. Where it cannot mount,
// Mount skips the test with the reason, except when the environment
// variable CI is "true": CI runs as root and must run these tests, so
// there it fails the test instead.
package tmpfs

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"github.com/osapgw/osapgw/internal/testenv"
)

// Mount mounts a tmpfs of size bytes (rounded up to pages by the kernel)
// on a new directory under t.TempDir(), mode 0700, and returns the
// directory. It unmounts it in t.Cleanup. It skips the test when it
// cannot mount (not Linux, not root, no permission), or fails it when CI
// is "true".
func Mount(t testing.TB, size int64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := mount(dir, size); err != nil {
		testenv.Missing(t, "cannot mount a %d-byte tmpfs on %s (needs root on Linux): %v", size, dir, err)
	}
	t.Cleanup(func() {
		if err := unmount(dir); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// Fill writes zeros to a new file at path until the file system is full,
// syncs it, and returns how many bytes it holds. It fails the test on any
// error but ENOSPC.
func Fill(t testing.TB, path string) int64 {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	var n int64
	for {
		w, err := f.Write(buf)
		n += int64(w)
		if errors.Is(err, syscall.ENOSPC) {
			break
		}
		if err != nil {
			t.Fatalf("fill %s: %v", path, err)
		}
	}
	if err := f.Sync(); err != nil && !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("fill %s: sync: %v", path, err)
	}
	return n
}

// Free returns the bytes available to an unprivileged user in the file
// system holding path.
func Free(t testing.TB, path string) int64 {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("tmpfs: Free needs Linux")
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		t.Fatalf("statfs %s: %v", path, err)
	}
	return int64(st.Bavail) * int64(st.Bsize) // Bsize is int32 on 32-bit ARM
}
