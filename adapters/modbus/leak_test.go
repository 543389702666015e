package modbus

import (
	"context"
	"errors"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/osapgw/osapgw/adapters"
	sim "github.com/osapgw/osapgw/sim/modbus"
)

func openFDs(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count file descriptors: %v", err)
	}
	return len(ents)
}

// TestNoLeaksAcrossReconnects opens and closes 1,000 links (each Get on an
// idle pool starts a link and stops it), then makes 1,000 requests time out
// on one link (each closes its connection and the next reconnects), and
// checks that goroutines and file descriptors come back to where they were.
func TestNoLeaksAcrossReconnects(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 reconnects: skipped with -short")
	}
	url, srv, sensors := simTCP(t, time.Hour, 1)
	pool := NewPool()
	a, err := New("leaky", adaptersTOML(sensorConf(url, 1, "")), envForTest(t), WithPool(pool))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := a.Get(ctx, "main", []string{"setpoint"}); err != nil { // warm up
		t.Fatal(err)
	}
	runtime.GC()
	g0, fd0 := runtime.NumGoroutine(), openFDs(t)
	acc0 := srv.Accepted()

	a.dev.timeout = 2 * time.Second // the machine may be loaded
	failed := 0
	for i := 0; i < 1000; i++ {
		if _, err := a.Get(ctx, "main", []string{"setpoint"}); err != nil {
			failed++
			t.Logf("Get #%d: %v", i, err)
		}
	}
	if failed > 100 {
		t.Fatalf("%d of 1,000 Gets failed", failed)
	}
	if pool.Len() != 0 {
		t.Fatalf("pool holds %d links after every Get returned", pool.Len())
	}

	sensors[1].SetFault(sim.Fault{Drop: true})
	a.dev.timeout = 30 * time.Millisecond
	sl := pool.acquire(a.dev.link, 0)
	// Each timeout closes the connection and the next read reconnects. On
	// a loaded machine a connect may time out too; the link then backs off
	// and the loop waits for it.
	timeouts := 0
	for i := 0; timeouts < 1000; i++ {
		if i == 2000 {
			t.Fatalf("only %d timeouts in 2,000 reads", timeouts)
		}
		_, err := a.doRead(ctx, sl, Read{Table: Holding, Address: 0, Count: 1})
		switch {
		case errors.Is(err, adapters.ErrTimeout):
			timeouts++
		case errors.Is(err, adapters.ErrOffline):
			time.Sleep(maxBackoffForTest)
		default:
			t.Fatalf("read #%d with answers dropped = %v, want a timeout", i, err)
		}
	}
	pool.release(sl)
	sensors[1].SetFault(sim.Fault{})

	if got := srv.Accepted() - acc0; got < 2000 {
		t.Errorf("server accepted %d connections, want 2000 (1,000 links + 1,000 reconnects)", got)
	}
	var g, fd int
	waitFor(t, "goroutines and fds back to the start", func() bool {
		runtime.GC()
		g, fd = runtime.NumGoroutine(), openFDs(t)
		return g <= g0 && fd <= fd0
	})
	t.Logf("after 2,000 reconnects: %d goroutines (were %d), %d fds (were %d)", g, g0, fd, fd0)
}

// maxBackoffForTest outlasts the backoff after a few failed connects.
const maxBackoffForTest = 4 * minBackoff
