package synthetic

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/model"
)

func TestSampleConf(t *testing.T) {
	body := sampleConf[strings.Index(sampleConf, "[[device]]")+len("[[device]]"):]
	a, err := New("gen-1", adapters.TOMLDecoder(body), adapters.Env{})
	if err != nil {
		t.Fatalf("New(sample.conf) = %v", err)
	}
	m, err := a.Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(); err != nil {
		t.Fatalf("model of the sample: %v", err)
	}
	if n := len(m.Resources[0].Areas[0].Attributes); n != 11 {
		t.Errorf("sample has %d attributes, want 10 values and the setpoint", n)
	}
}

func TestNewRefuses(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"negative attributes", "attributes = -1", "attributes: -1"},
		{"fast attributes", `attribute_every = "1ms"`, "attribute_every: 1ms is under 10ms"},
		{"bad rate", "event_rate = -2.0", "event_rate: -2"},
		{"unknown key", "colour = 1", `unknown keys: colour`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New("x", adapters.TOMLDecoder(tt.text), adapters.Env{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New(%q) = %v, want %q", tt.text, err, tt.want)
			}
		})
	}
}

type countSink struct {
	mu     sync.Mutex
	events []model.EventOccurrence
	attrs  int
	online bool
}

func (s *countSink) Attributes(string, string, map[string]model.Value) {
	s.mu.Lock()
	s.attrs++
	s.mu.Unlock()
}
func (s *countSink) Event(_ string, ev model.EventOccurrence) {
	s.mu.Lock()
	s.events = append(s.events, ev)
	s.mu.Unlock()
}
func (s *countSink) Status(_ string, online bool, _ error) { s.online = online }

func TestRunEmitsNumberedEvents(t *testing.T) {
	a, err := New("gen", adapters.TOMLDecoder("event_rate = 1000.0\nattribute_every = \"20ms\"\nattributes = 2"), adapters.Env{})
	if err != nil {
		t.Fatal(err)
	}
	sink := &countSink{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- a.Run(ctx, sink) }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		sink.mu.Lock()
		n, attrs := len(sink.events), sink.attrs
		sink.mu.Unlock()
		if n >= 200 && attrs >= 2 {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("after 10 s: %d events and %d attribute reports, want at least 200 and 2", n, attrs)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v", err)
	}
	for i, ev := range sink.events {
		if ev.Params["n"] != int64(i+1) || ev.Event != "tick" || ev.At.IsZero() {
			t.Fatalf("event %d = %+v, want tick n=%d with a capture time", i, ev, i+1)
		}
	}
	if !sink.online {
		t.Error("Run did not report the device online")
	}
	if err := a.Set(ctx, "main", map[string]model.Value{"setpoint": {V: 3.5}}); err != nil {
		t.Fatal(err)
	}
	got, err := a.Get(ctx, "main", []string{"setpoint"})
	if err != nil || got["setpoint"].V != 3.5 {
		t.Fatalf("Get(setpoint) = %v, %v, want 3.5", got, err)
	}
	out, err := a.Invoke(ctx, "main", "echo", map[string]any{"text": "hi"})
	if err != nil || out["text"] != "hi" {
		t.Fatalf("Invoke(echo) = %v, %v", out, err)
	}
}
