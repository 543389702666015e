package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/fnv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/osapgw/osapgw/model"
)

// FuzzDecodeEvent covers the outbox formats (more seeds in
// testdata/fuzz/FuzzDecodeEvent).
func FuzzDecodeEvent(f *testing.F) {
	at := time.Unix(1764150000, 5)
	for _, ev := range []Event{
		{Dev: "cam-1", Resource: "video/1", Name: "motion", Params: map[string]any{"state": true, "x": 1e21}, At: at},
		{Resource: "outbox", Name: "outbox.overflow", At: at},
		{Dev: "d<&>", Resource: "r\u2028", Name: "n\"", Params: map[string]any{"k": "\x00<\u2029>"}},
	} {
		b, err := encodeEvent(ev)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, p := range []*Picture{{Pending: true}, {Size: 12345, Sum: [32]byte{1, 2}}, {Size: 1, ID: "0123abcd"}, {Err: "timeout"}, {ID: "x", Err: "y"}} {
		f.Add(appendEvent(nil, "cam-1", "video/1", "motion", at, p, []byte(`{"state":true}`)))
	}
	f.Add(encodeEvent1("cam-1", []byte(`{"resource":"video/1","event":"motion","params":{"state":true},"ts":1764150000000}`), at))
	f.Add(encodeEvent1("", []byte(`{"resource":"gateway","event":"started","ts":1764150000000}`), at))
	f.Add(encodeEvent1("", []byte(`{"resource":"a","event":"b","params":null,"ts":0}`), at))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff})
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 'r', 0x81, 0x00, 'n'})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeEvent(7, b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("decodeEvent(%x) = %v, want an error wrapping ErrCorrupt", b, err)
			}
			return
		}
		if at, ok := decodeEventAt(b); !ok || !at.Equal(r.At) {
			t.Errorf("decodeEventAt(%x) = %v, %v; decodeEvent says %v", b, at, ok, r.At)
		}
		if r.Params != nil && !json.Valid(r.Params) {
			t.Errorf("decodeEvent(%x): params %q are not JSON", b, r.Params)
		}
		if b[0] == outboxFormat1 {
			// The body made again from the record, as the platform gets
			// it, holds the same event.
			again := encodeEvent1(r.Dev, reencodeBody1(r), r.At)
			r2, err := decodeEvent(7, again)
			if err != nil {
				t.Fatalf("decodeEvent(%x), the body made again from %x, = %v", again, b, err)
			}
			if diff := cmp.Diff(r, r2); diff != "" {
				t.Errorf("format-1 round trip of %x mismatch (-first +second):\n%s", b, diff)
			}
			if checkEventNames(r.Dev, r.Resource, r.Name) != nil {
				return // format 2 cannot hold it; the platform would refuse it too
			}
		}
		// What decodes re-encodes as format 2 to the same bytes (for a
		// format-1 record: to a record that decodes to the same event).
		again := appendEvent(nil, r.Dev, r.Resource, r.Name, r.At, r.Picture, r.Params)
		if (b[0] == outboxFormat2 || b[0] == outboxFormat3) && !bytes.Equal(again, b) {
			t.Errorf("encode(decode(%x)) = %x", b, again)
		}
		r2, err := decodeEvent(7, again)
		if err != nil {
			t.Fatalf("decodeEvent(encode(decode(%x))) = %v", b, err)
		}
		if diff := cmp.Diff(r, r2); diff != "" {
			t.Errorf("format-2 round trip of %x mismatch (-first +second):\n%s", b, diff)
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
	for _, v := range []model.Value{model.BadValue(at, "exception 2 (illegal data address)"), {V: 1.5, At: at, Err: "x"}} {
		b, err := encodeValue(v, 0)
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
