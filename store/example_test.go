package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// exampleDir returns a fresh private directory for an example.
func exampleDir() string {
	dir, err := os.MkdirTemp("", "store-example")
	if err != nil {
		panic(err)
	}
	return filepath.Join(dir, "state")
}

func Example() {
	dir := exampleDir()
	defer os.RemoveAll(filepath.Dir(dir))
	s, err := Open(filepath.Join(dir, "osapgw.db"), Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	ctx := context.Background()
	// The bridge appends an event before acknowledging it to the adapter.
	id1, _ := s.Append(ctx, Event{Dev: "cam-1", Resource: "video/1", Name: "motion",
		Params: map[string]any{"state": true, "region": 2}, At: time.Now()})
	id2, _ := s.Append(ctx, Event{Dev: "cam-1", Resource: "video/1", Name: "tamper", At: time.Now()})
	fmt.Println(id2 > id1)

	// The OSAP client sends the oldest pending events, and acks each on
	// PUBACK. The parameters come back as a JSON object, keys sorted.
	recs, _ := s.Pending(0, 100)
	for _, r := range recs {
		fmt.Printf("%s %s %s params=%s\n", r.Dev, r.Resource, r.Name, r.Params)
		s.Ack(r.ID)
	}
	fmt.Println(s.Stats().Count)
	// Output:
	// true
	// cam-1 video/1 motion params={"region":2,"state":true}
	// cam-1 video/1 tamper params=
	// 0
}
