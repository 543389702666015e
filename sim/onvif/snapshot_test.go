package onvif_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"image/jpeg"
	"sync"
	"testing"
	"time"

	"github.com/osapgw/osapgw/adapters/onvif/soap"
	sim "github.com/osapgw/osapgw/sim/onvif"
	"github.com/osapgw/osapgw/sim/onvif/onviftest"
)

// TestSnapshotSizeAndUniqueness: snapshots padded to SnapshotSize still
// decode as JPEG, each differs from the last with UniqueSnapshots, and
// OnSnapshot is told the hash of exactly what was served.
func TestSnapshotSizeAndUniqueness(t *testing.T) {
	tests := []struct {
		name   string
		size   int
		unique bool
	}{
		{name: "plain", size: 0, unique: false},
		{name: "unique", size: 0, unique: true},
		{name: "200 KB unique", size: 200 << 10, unique: true},
		{name: "2 MB", size: 2 << 20, unique: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var served [][32]byte
			cam := onviftest.Start(t, sim.Config{User: "admin", Password: "secret", SnapshotSize: tt.size, UniqueSnapshots: tt.unique,
				OnSnapshot: func(sum [32]byte) { mu.Lock(); served = append(served, sum); mu.Unlock() }})
			c := soap.New(soap.Options{Username: "admin", Password: "secret", Timeout: 5 * time.Second})
			defer c.Close()
			url := cam.URL()[:len(cam.URL())-len("/onvif/device_service")] + "/snapshot.jpg"
			var got [][]byte
			for range 2 {
				b, err := c.Get(context.Background(), url, 16<<20)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, b)
			}
			for i, b := range got {
				if len(b) < tt.size {
					t.Errorf("snapshot %d is %d bytes, want at least %d", i, len(b), tt.size)
				}
				if _, err := jpeg.Decode(bytes.NewReader(b)); err != nil {
					t.Errorf("snapshot %d does not decode: %v", i, err)
				}
				mu.Lock()
				if i >= len(served) || served[i] != sha256.Sum256(b) {
					t.Errorf("snapshot %d: OnSnapshot was not told its hash", i)
				}
				mu.Unlock()
			}
			if same := bytes.Equal(got[0], got[1]); same == tt.unique {
				t.Errorf("two snapshots equal = %v, want %v", same, !tt.unique)
			}
			if !tt.unique && tt.size == 0 && !bytes.Equal(got[0], cam.Snapshot()) {
				t.Errorf("a plain snapshot differs from Snapshot()")
			}
		})
	}
}
