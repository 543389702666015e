package modbus

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/model"
	sim "github.com/osapgw/osapgw/sim/modbus"
)

// Downlink writes under stalls (issue 15, item 7): a write whose caller
// gave up (the bridge answered 408) before it reached the wire is never
// sent, even once the unit answers again; one on the wire when its
// caller gave up says that its outcome is unknown.

// stallConf is sensorConf with the unit's timeout and the bus's
// inter-request delay under test.
func stallConf(t testing.TB, url, timeout, delay string) string {
	conf := sensorConf(url, 1, `request_delay = "`+delay+`"`)
	return replaceOnce(t, conf, `timeout = "300ms"`, `timeout = "`+timeout+`"`)
}

// TestQueuedWriteNotSentAfterDeadline stalls the unit on a read, queues a
// set behind it whose deadline passes while it waits for the bus (the
// read's timeout, then the inter-request delay), and checks that the set
// fails as a timeout that was not sent, and that the register still holds
// its old value after the unit recovers.
func TestQueuedWriteNotSentAfterDeadline(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 3 s")
	}
	url, _, sensors := simTCP(t, time.Hour, 1)
	s := sensors[1]
	old := s.Holding(0)
	// The link: a read of input 20 stalls for the unit's timeout (1 s),
	// then the bus rests 2 s; the set's deadline (1.5 s) falls in between,
	// after the link took it and before its turn on the wire.
	pool := NewPool()
	a, err := New("sensor-1", adaptersTOML(stallConf(t, url, "1s", "2s")), envForTest(t), WithPool(pool))
	if err != nil {
		t.Fatal(err)
	}
	// Hold the link the whole test, as Run does in the gateway: a link
	// whose last holder leaves stops, and drops what it was given.
	sl := pool.acquire(a.dev.link, a.dev.requestDelay)
	defer pool.release(sl)
	s.SetFault(sim.Fault{Delay: time.Hour, From: 20, To: 27})
	readDone := make(chan error, 1)
	go func() {
		_, err := a.Get(context.Background(), "main", []string{"energy"})
		readDone <- err
	}()
	waitFor(t, "the stalled read to reach the unit", func() bool { return s.Requests() >= 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	err = a.Set(ctx, "main", map[string]model.Value{"setpoint": {V: 25.0}})
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, errNotSent) {
		t.Errorf("Set() = %v, want a deadline before the write was sent", err)
	}
	if err := <-readDone; !errors.Is(err, adapters.ErrTimeout) {
		t.Errorf("stalled Get() = %v, want %v", err, adapters.ErrTimeout)
	}
	s.SetFault(sim.Fault{})
	// The link serves requests in turn: this read comes after the set
	// would have been written.
	vals, err := a.Get(context.Background(), "main", []string{"setpoint"})
	if err != nil {
		t.Fatalf("Get() after recovery = %v", err)
	}
	if got := vals["setpoint"].V; got != 21.5 {
		t.Errorf("setpoint after recovery = %v, want 21.5 (the set never written)", got)
	}
	if got := s.Holding(0); got != old {
		t.Errorf("holding 0 after recovery = %d, want %d", got, old)
	}
}

// TestUnansweredWriteMayHaveApplied checks the message of a write that was
// on the wire when its time ran out, by the caller's deadline or the
// unit's timeout: 408 (adapters.ErrTimeout or a deadline), saying that
// the write may have been applied, as it was.
func TestUnansweredWriteMayHaveApplied(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for late answers")
	}
	tests := []struct {
		name     string
		timeout  string        // the unit's
		deadline time.Duration // the caller's
		want     error
	}{
		{name: "caller's deadline", timeout: "5s", deadline: 200 * time.Millisecond, want: context.DeadlineExceeded},
		{name: "unit's timeout", timeout: "200ms", deadline: time.Minute, want: adapters.ErrTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, _, sensors := simTCP(t, time.Hour, 1)
			s := sensors[1]
			a, err := New("sensor-1", adaptersTOML(stallConf(t, url, tt.timeout, "0s")), envForTest(t), WithPool(NewPool()))
			if err != nil {
				t.Fatal(err)
			}
			s.SetFault(sim.Fault{Delay: time.Second})
			ctx, cancel := context.WithTimeout(context.Background(), tt.deadline)
			defer cancel()
			err = a.Set(ctx, "main", map[string]model.Value{"mode": {V: int64(2)}})
			if !errors.Is(err, tt.want) {
				t.Errorf("Set() = %v, want %v", err, tt.want)
			}
			const phrase = "device did not answer in time; the write may have been applied"
			if err == nil || !strings.Contains(err.Error(), phrase) {
				t.Errorf("Set() = %v, want it to say %q", err, phrase)
			}
			waitFor(t, "the late write to land", func() bool { return s.Holding(1) == 2 })
		})
	}
}
