package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

	"github.com/osapgw/osapgw/model"
)

// outboxV1 is testdata/outbox-v1.json: what went into
// testdata/outbox-v1.db, a store written before format 2 (see
// testdata/README.md).
type outboxV1 struct {
	Now    time.Time `json:"now"`
	Events []struct {
		ID    uint64    `json:"id"`
		Dev   string    `json:"dev"`
		Body  string    `json:"body"`
		At    time.Time `json:"at"`
		Acked bool      `json:"acked"`
	} `json:"events"`
	Credentials Credentials `json:"credentials"`
	Values      []struct {
		Dev      string          `json:"dev"`
		Resource string          `json:"resource"`
		Attr     string          `json:"attr"`
		Kind     string          `json:"kind"`
		V        json.RawMessage `json:"v"`
		At       time.Time       `json:"at"`
		Quality  string          `json:"quality"`
		Pending  bool            `json:"pending"`
	} `json:"values"`
	Announced []string `json:"announced"`
	Stats     struct {
		Count int   `json:"count"`
		Bytes int64 `json:"bytes"`
	} `json:"stats"`
}

// openOutboxV1 copies testdata/outbox-v1.db into a private directory (the
// store refuses files others can read, and git does not keep modes) and
// returns its path and the fixture's description.
func openOutboxV1(t *testing.T) (string, *outboxV1) {
	t.Helper()
	js, err := os.ReadFile(filepath.Join("testdata", "outbox-v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fx outboxV1
	if err := json.Unmarshal(js, &fx); err != nil {
		t.Fatalf("testdata/outbox-v1.json: %v", err)
	}
	db, err := os.ReadFile(filepath.Join("testdata", "outbox-v1.db"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "osapgw.db")
	if err := os.WriteFile(path, db, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, &fx
}

// v1Value converts a value of the fixture to what the store returns.
func v1Value(kind string, raw json.RawMessage) (any, error) {
	var x any
	var err error
	switch kind {
	case "null":
		return nil, nil
	case "int":
		var i int64
		err, x = json.Unmarshal(raw, &i), i
	case "float":
		var f float64
		err, x = json.Unmarshal(raw, &f), f
	case "bool":
		var b bool
		err, x = json.Unmarshal(raw, &b), b
	case "string":
		var s string
		err, x = json.Unmarshal(raw, &s), s
	case "json":
		err = json.Unmarshal(raw, &x)
	default:
		err = fmt.Errorf("unknown kind %q", kind)
	}
	return x, err
}

var cmpTime = cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })

// TestUpgradeOutboxV1 opens a store written before format 2 and checks
// that everything in it is read as it was stored, that its events come
// back such that event.report bodies made from them are byte for byte the
// old ones, and that new events go on after them.
func TestUpgradeOutboxV1(t *testing.T) {
	path, fx := openOutboxV1(t)
	// The events were captured around fx.Now: a clock there keeps MaxAge
	// from dropping them.
	clock := &fakeClock{now: fx.Now.Add(time.Minute)}
	s, err := Open(path, Options{Now: clock.Now, Logger: quietLogger(t)})
	if err != nil {
		t.Fatalf("Open(outbox-v1.db) = %v", err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		checkFile(t, path)
	}()

	if err := s.view(func(tx *bolt.Tx) error {
		if v := getU64(tx.Bucket(bucketMeta), keySchema); v != SchemaVersion {
			return fmt.Errorf("schema after Open = %d, want %d", v, SchemaVersion)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	if st := s.Stats(); st.Count != fx.Stats.Count || st.Bytes != fx.Stats.Bytes || st.Corruptions != 0 || st.Dropped != 0 {
		t.Errorf("Stats() = %+v, want Count %d, Bytes %d, no corruptions or drops", st, fx.Stats.Count, fx.Stats.Bytes)
	}

	// Credentials, values and announced devices are untouched.
	c, ok, err := s.LoadCredentials()
	if err != nil || !ok {
		t.Fatalf("LoadCredentials() = %v, %v", ok, err)
	}
	if diff := cmp.Diff(fx.Credentials, c, cmpTime); diff != "" {
		t.Errorf("credentials mismatch (-want +got):\n%s", diff)
	}
	wantLast := map[string]map[string]map[string]model.Value{}
	wantPending := map[string]map[string]model.Value{} // "dev/resource" → values
	for _, v := range fx.Values {
		x, err := v1Value(v.Kind, v.V)
		if err != nil {
			t.Fatalf("value %s/%s/%s in the fixture: %v", v.Dev, v.Resource, v.Attr, err)
		}
		mv := model.Value{V: x, At: v.At, Quality: model.Quality(v.Quality)}
		if wantLast[v.Dev] == nil {
			wantLast[v.Dev] = map[string]map[string]model.Value{}
		}
		if wantLast[v.Dev][v.Resource] == nil {
			wantLast[v.Dev][v.Resource] = map[string]model.Value{}
		}
		wantLast[v.Dev][v.Resource][v.Attr] = mv
		if v.Pending {
			k := v.Dev + "/" + v.Resource
			if wantPending[k] == nil {
				wantPending[k] = map[string]model.Value{}
			}
			wantPending[k][v.Attr] = mv
		}
	}
	for dev, want := range wantLast {
		got, err := s.LastValues(dev)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got, cmpTime); diff != "" {
			t.Errorf("LastValues(%q) mismatch (-want +got):\n%s", dev, diff)
		}
	}
	gotPending := map[string]map[string]model.Value{}
	if err := s.DrainValues(func(dev, resource string, v map[string]model.Value) error {
		gotPending[dev+"/"+resource] = v
		return errors.New("keep them pending")
	}); err == nil {
		t.Fatal("DrainValues ignored fn's error")
	}
	if len(wantPending) != 1 || len(gotPending) != 1 {
		t.Fatalf("pending groups = %d, fixture has %d; the test expects one", len(gotPending), len(wantPending))
	}
	if diff := cmp.Diff(wantPending, gotPending, cmpTime); diff != "" {
		t.Errorf("pending values mismatch (-want +got):\n%s", diff)
	}
	if ids, err := s.Announced(); err != nil || !cmp.Equal(ids, fx.Announced) {
		t.Errorf("Announced() = %q, %v; want %q", ids, err, fx.Announced)
	}

	// The pending events, and only those, each making its old body again.
	var wantIDs []uint64
	var maxID uint64
	withParams, withoutParams := 0, 0
	recs, err := s.Pending(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for _, e := range fx.Events {
		maxID = max(maxID, e.ID)
		if e.Acked {
			continue
		}
		wantIDs = append(wantIDs, e.ID)
		if i >= len(recs) {
			continue
		}
		r := recs[i]
		i++
		if r.ID != e.ID || r.Dev != e.Dev || !r.At.Equal(e.At) {
			t.Errorf("record %d = id %d dev %q at %v, want id %d dev %q at %v", i-1, r.ID, r.Dev, r.At, e.ID, e.Dev, e.At)
		}
		if r.Name == "" || r.Resource == "" {
			t.Errorf("record %d: resource %q, name %q; want both", r.ID, r.Resource, r.Name)
		}
		if body := reencodeBody1(r); string(body) != e.Body {
			t.Errorf("record %d makes the body\n%s\nwant the old\n%s", r.ID, body, e.Body)
		}
		if r.Params == nil {
			withoutParams++
		} else {
			withParams++
		}
	}
	var gotIDs []uint64
	for _, r := range recs {
		gotIDs = append(gotIDs, r.ID)
	}
	if diff := cmp.Diff(wantIDs, gotIDs); diff != "" {
		t.Fatalf("Pending ids mismatch (-want +got):\n%s", diff)
	}
	if withParams == 0 || withoutParams == 0 {
		t.Errorf("pending events with params %d, without %d; the fixture should have both", withParams, withoutParams)
	}
	if st := s.Stats(); !st.Oldest.Equal(recs[0].At) {
		t.Errorf("Stats().Oldest = %v, want %v", st.Oldest, recs[0].At)
	}

	// New events go on after the old ones (acknowledged ones included),
	// in format 2, next to the format-1 records.
	ev := Event{Dev: "cam-1", Resource: "video/1", Name: "motion", Params: map[string]any{"state": true}, At: clock.Now()}
	ids, err := s.AppendBatch(context.Background(), []Event{ev, {Resource: "gateway", Name: "started"}})
	if err != nil {
		t.Fatalf("AppendBatch on the upgraded file = %v", err)
	}
	if ids[0] <= maxID || ids[1] <= ids[0] {
		t.Errorf("new ids %v, want increasing above %d", ids, maxID)
	}
	if err := s.view(func(tx *bolt.Tx) error {
		for _, id := range ids {
			if v := tx.Bucket(bucketOutbox).Get(idKey(id)); len(v) == 0 || v[0] != outboxFormat2 {
				return fmt.Errorf("new record %d is %x, want format 2", id, v)
			}
		}
		if v := tx.Bucket(bucketOutbox).Get(idKey(wantIDs[0])); len(v) == 0 || v[0] != outboxFormat1 {
			return fmt.Errorf("old record %d is %x, want it still format 1", wantIDs[0], v)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	all, err := s.Pending(0, 100)
	if err != nil || len(all) != len(wantIDs)+2 {
		t.Fatalf("Pending after appending = %d records, %v; want %d", len(all), err, len(wantIDs)+2)
	}
	want := []Record{
		{ID: ids[0], Dev: "cam-1", Resource: "video/1", Name: "motion", Params: []byte(`{"state":true}`), At: ev.At},
		{ID: ids[1], Resource: "gateway", Name: "started", At: clock.Now()},
	}
	if diff := cmp.Diff(want, all[len(wantIDs):], cmpTime); diff != "" {
		t.Errorf("new records mismatch (-want +got):\n%s", diff)
	}

	// Old and new are acknowledged alike, and stay so across a reopen.
	if err := s.Ack(wantIDs[0], ids[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(path, Options{Now: clock.Now, Logger: quietLogger(t)}); err != nil {
		t.Fatal(err)
	}
	left, err := s.Pending(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	gotIDs = gotIDs[:0]
	for _, r := range left {
		gotIDs = append(gotIDs, r.ID)
	}
	if diff := cmp.Diff(append(wantIDs[1:len(wantIDs):len(wantIDs)], ids[1]), gotIDs); diff != "" {
		t.Errorf("Pending after acks and a reopen mismatch (-want +got):\n%s", diff)
	}
	if st := s.Stats(); st.Count != len(wantIDs) || st.Corruptions != 0 {
		t.Errorf("Stats() after acks = %+v, want Count %d, no corruptions", st, len(wantIDs))
	}
}

// TestUpgradedFileRefusedBySchema1: a build that knows only format 1
// (schema 1) refuses an upgraded file, which may hold format-2 records it
// would take for damage, and leaves it as it is.
func TestUpgradedFileRefusedBySchema1(t *testing.T) {
	path, fx := openOutboxV1(t)
	clock := &fakeClock{now: fx.Now.Add(time.Minute)}
	s, err := Open(path, Options{Now: clock.Now, Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(context.Background(), Event{Resource: "main", Name: "tick"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	schemaVersion = 1
	defer func() { schemaVersion = SchemaVersion }()
	if s, err := Open(path, Options{Now: clock.Now, Logger: quietLogger(t)}); !errors.Is(err, ErrNewerSchema) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Open by a schema-1 build = %v, want ErrNewerSchema", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("the refused file changed")
	}
}

// TestUpgradeOutboxV1DamagedBody: a format-1 record whose body does not
// parse is damage, as any record that does not decode: removed, logged,
// counted and skipped; the others are delivered.
func TestUpgradeOutboxV1DamagedBody(t *testing.T) {
	path, fx := openOutboxV1(t)
	var pending []uint64
	for _, e := range fx.Events {
		if !e.Acked {
			pending = append(pending, e.ID)
		}
	}
	bad := pending[1]
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		ob := tx.Bucket(bucketOutbox)
		v := bytes.Clone(ob.Get(idKey(bad)))
		if len(v) < 12 || v[0] != outboxFormat1 {
			return fmt.Errorf("record %d = %x, want format 1", bad, v)
		}
		// Same length, so that the stored byte count stays right: the
		// body's closing brace becomes a comma.
		v[len(v)-1] = ','
		return ob.Put(idKey(bad), v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: fx.Now.Add(time.Minute)}
	s, err := Open(path, Options{Now: clock.Now, Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close(); checkFile(t, path) }()
	recs, err := s.Pending(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for _, r := range recs {
		got = append(got, r.ID)
	}
	want := append(pending[:1:1], pending[2:]...)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Pending ids mismatch (-want +got):\n%s", diff)
	}
	if st := s.Stats(); st.Corruptions != 1 || st.Count != len(want) {
		t.Errorf("Stats() = %+v, want Corruptions 1, Count %d", st, len(want))
	}
}
