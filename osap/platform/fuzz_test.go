package platform

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/osapgw/osapgw/model"
	"github.com/osapgw/osapgw/osap"
)

var fuzzKinds = []string{osap.KindTopo, osap.KindAttribute, osap.KindEvent, osap.KindReply, osap.KindStatus, "other"}

// FuzzHandleUplink feeds arbitrary business message plaintexts, as a
// device could seal them, to the DAS's uplink handling: nothing may panic,
// and the device's entry must stay readable.
func FuzzHandleUplink(f *testing.F) {
	seed := func(kind byte, h osap.Header, body any) {
		b, err := osap.EncodeMessage(h, body)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(kind, b)
	}
	seed(0, osap.Header{ID: "1", Type: osap.TypeTopoAdd}, osap.TopoAdd{Devices: []model.Device{{ID: "cam-1", Kind: "onvif", Resources: []model.Resource{{Name: "video/1"}}}}})
	seed(0, osap.Header{ID: "2", Type: osap.TypeSubOffline}, osap.DeviceList{Devices: []string{"cam-1"}})
	seed(0, osap.Header{ID: "3", Type: osap.TypeTopoRemove}, osap.DeviceList{Devices: []string{"cam-1"}})
	seed(1, osap.Header{ID: "4", Type: osap.TypeAttributeReport, Dev: "cam-1"}, json.RawMessage(`{"resource":"main","values":{"t":{"v":1.5,"ts":1,"q":"good"}}}`))
	seed(2, osap.Header{ID: "5", Type: osap.TypeEventReport, Dev: "cam-1"}, json.RawMessage(`{"resource":"video/1","event":"motion","params":{"state":true},"ts":1764150000000}`))
	seed(3, osap.Header{ID: "6", Type: osap.TypeReply, Code: 404}, nil)
	seed(4, osap.Header{ID: "7", Type: osap.TypeStatus}, osap.Status{Online: false})

	keys := newFakeKeys()
	d, err := NewDAS(DASConfig{Listen: "127.0.0.1:0", Keys: keys, Logger: testLogger(f)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { d.Close() })
	ci, err := osap.NewCipher(osap.SuiteAESGCM, keys.add("gw-fuzz"))
	if err != nil {
		f.Fatal(err)
	}
	c := &conn{devID: "gw-fuzz", ciphers: []*osap.Cipher{ci}, done: make(chan struct{})}

	f.Fuzz(func(t *testing.T, kind byte, plaintext []byte) {
		msg, err := osap.DecodeMessage(plaintext)
		if err != nil {
			return
		}
		if err := d.handle(nil, c, fuzzKinds[int(kind)%len(fuzzKinds)], msg); err != nil {
			t.Fatalf("handle: %v", err) // only a failing event store errs, and memory does not fail
		}
		if _, err := d.Device("gw-fuzz"); err != nil && d.events.Len("gw-fuzz") > 0 {
			t.Fatalf("Device: %v with stored events", err)
		}
		_ = d.Devices()
	})
}

// FuzzOpenEventStore opens arbitrary event files: no panic; a file that
// opens takes one more event and gives the same events back on reopening.
func FuzzOpenEventStore(f *testing.F) {
	f.Add([]byte("{\"seq\":1,\"devid\":\"a\",\"id\":\"1\",\"body\":{}}\n{\"seq\":2,\"devid\":\"a\",\"id\":\"2\"}\n"))
	f.Add([]byte("{\"seq\":1,\"devid\":\"a\",\"id\":\"1\"}\n{\"seq\":2,\"dev"))
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "events.jsonl")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := OpenEventStore(path)
		if err != nil {
			return
		}
		before := map[string]int{}
		for _, id := range s.DevIDs() {
			before[id] = s.Len(id)
		}
		ev, added, err := s.Add(Event{DevID: "fuzz-dev", ID: "fuzz-id"})
		if err != nil {
			t.Fatalf("Add = %+v, %v", ev, err)
		}
		if added {
			before["fuzz-dev"]++
		}
		s.Close()
		s, err = OpenEventStore(path)
		if err != nil {
			t.Fatalf("reopen after Add: %v", err)
		}
		defer s.Close()
		for id, n := range before {
			if got := s.Len(id); got != n {
				t.Fatalf("%s: %d events after reopening, want %d", id, got, n)
			}
		}
	})
}
