package platform

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func addEvents(t *testing.T, s *EventStore, devID string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if _, _, err := s.Add(Event{DevID: devID, ID: id, Body: []byte(`{"resource":"r","event":"e","ts":1}`), Received: time.Unix(1, 0)}); err != nil {
			t.Fatalf("Add(%s, %s): %v", devID, id, err)
		}
	}
}

func ids(evs []Event) string {
	var b strings.Builder
	for _, ev := range evs {
		b.WriteString(ev.DevID + "/" + ev.ID + " ")
	}
	return strings.TrimSpace(b.String())
}

func TestEventStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	s, err := OpenEventStore(path)
	if err != nil {
		t.Fatal(err)
	}
	addEvents(t, s, "a", "1", "2")
	addEvents(t, s, "b", "1")
	ev, added, err := s.Add(Event{DevID: "a", ID: "2"})
	if err != nil || added || ev.Seq != 2 {
		t.Errorf("Add(duplicate) = %+v, %v, %v; want the stored event with seq 2, false, nil", ev, added, err)
	}
	if _, err := OpenEventStore(path); err == nil {
		t.Error("second OpenEventStore on a file in use succeeded")
	}
	if _, _, err := s.Add(Event{DevID: "a"}); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("Add without id = %v, want ErrInvalidRequest", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Add(Event{DevID: "a", ID: "9"}); !errors.Is(err, ErrStoreClosed) {
		t.Errorf("Add after Close = %v, want ErrStoreClosed", err)
	}

	// A torn last line is cut off; the rest comes back.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":4,"devid":"a","id":"3","bo`)
	f.Close()
	s, err = OpenEventStore(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	for _, tt := range []struct {
		dev   string
		after uint64
		limit int
		want  string
	}{
		{dev: "a", want: "a/1 a/2"},
		{dev: "a", after: 1, want: "a/2"},
		{dev: "a", limit: 1, want: "a/1"},
		{dev: "b", want: "b/1"},
		{dev: "b", after: 3, want: ""},
		{dev: "c", want: ""},
	} {
		if got := ids(s.Events(tt.dev, tt.after, tt.limit)); got != tt.want {
			t.Errorf("Events(%q, %d, %d) = %q, want %q", tt.dev, tt.after, tt.limit, got, tt.want)
		}
	}
	addEvents(t, s, "a", "3", "1")
	if got := s.Events("a", 0, 0); ids(got) != "a/1 a/2 a/3" || got[2].Seq != 4 {
		t.Errorf("after reopen: %+v, want a/1 a/2 a/3 with a/3 at seq 4", got)
	}
	raw, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	for _, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Errorf("line %q in the file is not JSON", l)
		}
	}
	if len(lines) != 4 {
		t.Errorf("file has %d lines, want 4:\n%s", len(lines), raw)
	}
}

func TestEventStoreBadFile(t *testing.T) {
	tests := []struct {
		name    string
		content string
		wantErr string // empty: opens
		want    string
	}{
		{name: "empty", content: "", want: ""},
		{name: "bad line in the middle", content: "{\"seq\":1,\"devid\":\"a\",\"id\":\"1\"}\nnot json\n{\"seq\":2,\"devid\":\"a\",\"id\":\"2\"}\n", wantErr: "events.jsonl:2:"},
		{name: "seq going back", content: "{\"seq\":2,\"devid\":\"a\",\"id\":\"1\"}\n{\"seq\":1,\"devid\":\"a\",\"id\":\"2\"}\n", wantErr: "events.jsonl:2:"},
		{name: "no devid", content: "{\"seq\":1,\"id\":\"1\"}\n", wantErr: "events.jsonl:1:"},
		{name: "duplicate line left by a failed sync", content: "{\"seq\":1,\"devid\":\"a\",\"id\":\"1\"}\n{\"seq\":2,\"devid\":\"a\",\"id\":\"1\"}\n{\"seq\":3,\"devid\":\"a\",\"id\":\"2\"}\n", want: "a/1 a/2"},
		{name: "blank lines", content: "\n{\"seq\":1,\"devid\":\"a\",\"id\":\"1\"}\n\n", want: "a/1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "events.jsonl")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := OpenEventStore(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("OpenEventStore = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("OpenEventStore: %v", err)
			}
			defer s.Close()
			if got := ids(s.Events("a", 0, 0)); got != tt.want {
				t.Errorf("events = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEventStoreInMemory(t *testing.T) {
	s, err := OpenEventStore("")
	if err != nil {
		t.Fatal(err)
	}
	addEvents(t, s, "a", "1", "1", "2")
	if got := ids(s.Events("a", 0, 0)); got != "a/1 a/2" {
		t.Errorf("events = %q, want a/1 a/2", got)
	}
	if got := s.DevIDs(); len(got) != 1 || got[0] != "a" {
		t.Errorf("DevIDs = %v, want [a]", got)
	}
}
