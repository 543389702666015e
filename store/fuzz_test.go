package store

import (
	"bytes"
	"encoding/binary"
	"hash/fnv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/osapgw/osapgw/model"
)

func FuzzDecodeEvent(f *testing.F) {
	f.Add(encodeEvent(Event{Dev: "cam-1", Body: []byte(`{"event":"motion"}`), At: time.Unix(1764150000, 5)}))
	f.Add(encodeEvent(Event{}))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeEvent(7, b)
		if err != nil {
			return
		}
		// What decodes re-encodes to the same bytes.
		again := encodeEvent(Event{Dev: r.Dev, Body: r.Body, At: r.At})
		if !bytes.Equal(again, b) && !(r.At.UnixNano() == 0 && bytes.Equal(again[9:], b[9:])) {
			t.Errorf("encode(decode(%x)) = %x", b, again)
		}
	})
}

func FuzzDecodeValue(f *testing.F) {
	at := time.Unix(1764150000, 0)
	for _, v := range []any{nil, true, int64(-1), 21.5, "x", map[string]any{"a": 1.0}} {
		b, err := encodeValue(model.Value{V: v, At: at, Quality: model.QualityGood}, flagPending)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 9, 200})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, flags, err := decodeValue(b)
		if err != nil {
			return
		}
		// What decodes re-encodes and decodes to the same value.
		again, err := encodeValue(v, flags)
		if err != nil {
			t.Fatalf("encodeValue(decodeValue(%x)) = %v", b, err)
		}
		v2, flags2, err := decodeValue(again)
		if err != nil || flags2 != flags {
			t.Fatalf("decodeValue(%x) = %v, flags %d; want flags %d", again, err, flags2, flags)
		}
		if diff := cmp.Diff(v, v2, cmp.Comparer(func(a, b float64) bool { return a == b || (a != a && b != b) })); diff != "" {
			t.Errorf("value round trip of %x mismatch (-first +second):\n%s", b, diff)
		}
	})
}

func FuzzDecodeCredentials(f *testing.F) {
	b, _ := encodeCredentials(Credentials{DevID: "GW", MasterKey: []byte{1, 2}, Suite: 8, Lifetime: time.Hour})
	f.Add(b)
	f.Add([]byte(`{"format":1}`))
	f.Add([]byte(`{"format":2,"dev_id":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeCredentials(b)
		if err != nil {
			return
		}
		again, err := encodeCredentials(c)
		if err != nil {
			t.Fatalf("encodeCredentials(decodeCredentials(%q)) = %v", b, err)
		}
		c2, err := decodeCredentials(again)
		if err != nil {
			t.Fatalf("decodeCredentials(%q) = %v", again, err)
		}
		if diff := cmp.Diff(c, c2); diff != "" {
			t.Errorf("credentials round trip of %q mismatch (-first +second):\n%s", b, diff)
		}
	})
}

func FuzzParseBoltMeta(f *testing.F) {
	good := make([]byte, boltMetaSize)
	le := binary.LittleEndian
	le.PutUint32(good[0:], boltMagic)
	le.PutUint32(good[4:], boltVersion)
	le.PutUint32(good[8:], 4096)
	le.PutUint64(good[40:], 12)
	le.PutUint64(good[48:], 3)
	h := fnv.New64a()
	h.Write(good[:boltChecksumOff])
	le.PutUint64(good[boltChecksumOff:], h.Sum64())
	f.Add(good)
	f.Add(make([]byte, boltMetaSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, ok := parseBoltMeta(b)
		if ok && (m.pageSize < 512 || m.pageSize&(m.pageSize-1) != 0) {
			t.Errorf("parseBoltMeta(%x) accepted page size %d", b, m.pageSize)
		}
	})
}

func TestParseBoltMetaOfRealFile(t *testing.T) {
	path := newPath(t)
	fillStore(t, path, 3)
	if err := precheck(path); err != nil {
		t.Fatalf("precheck(a good file) = %v", err)
	}
}
