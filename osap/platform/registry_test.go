package platform

import (
	"bytes"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/osapgw/osapgw/osap"
)

// TestRegistryConcurrentRefresh refreshes many devices at once and checks
// that the state file holds the last key of each after the writes
// coalesced.
func TestRegistryConcurrentRefresh(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	reg, err := NewRegistry(path)
	if err != nil {
		t.Fatal(err)
	}
	const devices, rounds = 8, 20
	ids := make([]string, devices)
	for i := range devices {
		serial := fmt.Sprintf("GW%d", i)
		reg.Add(serial, "ABCDEF")
		if ids[i], err = reg.devIDFor(serial); err != nil {
			t.Fatal(err)
		}
		if err := reg.confirm(serial, ids[i], bytes.Repeat([]byte{byte(i)}, 16), osap.SuiteAESGCM, osap.DeviceInfo{Kind: "gateway"}, make([]byte, 16), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for i := range devices {
		wg.Go(func() {
			for r := range rounds {
				if err := reg.refresh(ids[i], bytes.Repeat([]byte{byte(r)}, 16), time.Hour); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	again, err := NewRegistry(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		suite, keys, err := again.SessionKeys(id)
		if err != nil || suite != osap.SuiteAESGCM || len(keys) != 2 || keys[0][0] != rounds-1 || keys[1][0] != rounds-2 {
			t.Errorf("device %d after reload: %v %x %v, want the last two keys", i, suite, keys, err)
		}
		if serial, ok := again.DeviceSerial(id); !ok || serial != fmt.Sprintf("GW%d", i) {
			t.Errorf("DeviceSerial(%q) after reload = %q, %v", id, serial, ok)
		}
	}
}
