package upstream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/osapgw/osapgw/osap"
)

// eventBody is the body of the test events.
type eventBody struct {
	Resource string `json:"resource"`
	Event    string `json:"event"`
	Seq      int    `json:"seq"`
}

func eventHeader(id int) osap.Header {
	return osap.Header{ID: strconv.Itoa(id), TS: time.Now().UnixMilli(), Type: osap.TypeEventReport, Dev: "cam-1"}
}

type pubResult struct {
	id  int
	err error
}

// publishAll publishes events 1..n with QoS 1, one every gap, and sends
// again every one that is refused (ErrNotConnected) or not acknowledged,
// as the bridge does from its outbox. It returns when all n are
// acknowledged. progress, if not nil, is called with the number acked so
// far after each PUBACK.
func publishAll(ctx context.Context, s *Session, n int, gap time.Duration, progress func(acked int)) (retries int, err error) {
	results := make(chan pubResult, 16*n)
	todo := make([]int, 0, n)
	for i := 1; i <= n; i++ {
		todo = append(todo, i)
	}
	acked := 0
	outstanding := map[int]bool{} // accepted by Publish, done not called yet
	var twice error
	handle := func(r pubResult) {
		if !outstanding[r.id] {
			twice = fmt.Errorf("done called for event %d that has no publish outstanding", r.id)
			return
		}
		delete(outstanding, r.id)
		if r.err != nil {
			if !errors.Is(r.err, ErrConnectionLost) {
				// Any failure is retried; only the reason is unexpected.
				retries++
			}
			todo = append(todo, r.id)
			return
		}
		acked++
		if progress != nil {
			progress(acked)
		}
	}
	for acked < n {
		if twice != nil {
			return retries, twice
		}
		for drained := false; !drained; {
			select {
			case r := <-results:
				handle(r)
			default:
				drained = true
			}
		}
		if acked == n {
			break
		}
		if len(todo) == 0 {
			select {
			case r := <-results:
				handle(r)
			case <-ctx.Done():
				return retries, ctx.Err()
			}
			continue
		}
		id := todo[0]
		err := s.Publish(osap.KindEvent, eventHeader(id), eventBody{Resource: "video/1", Event: "motion", Seq: id}, 1,
			func(err error) { results <- pubResult{id: id, err: err} })
		switch {
		case err == nil:
			outstanding[id] = true
			todo = todo[1:]
			sleep(ctx, gap)
		case errors.Is(err, ErrNotConnected):
			retries++
			sleep(ctx, 20*time.Millisecond)
		default:
			return retries, fmt.Errorf("publish %d: %w", id, err)
		}
		if ctx.Err() != nil {
			return retries, ctx.Err()
		}
	}
	return retries, twice
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// collectEvents waits until the platform has received every event 1..n
// and returns how often each arrived and which session keys sealed them.
func collectEvents(t *testing.T, p *platform, a *fakeAuth, n int) (counts map[int]int, keys map[int]bool) {
	t.Helper()
	counts, keys = map[int]int{}, map[int]bool{}
	deadline := time.After(waitFor)
	for len(counts) < n {
		var u uplink
		select {
		case u = <-p.up:
		case <-deadline:
			var missing []int
			for i := 1; i <= n; i++ {
				if counts[i] == 0 {
					missing = append(missing, i)
				}
			}
			t.Fatalf("platform received %d of %d events; missing %v", len(counts), n, missing)
		}
		if !strings.HasSuffix(u.topic, "/up/event") {
			continue
		}
		m, k, err := a.open(u.topic, u.payload)
		if err != nil {
			t.Fatalf("open event: %v", err)
		}
		var b eventBody
		if err := m.DecodeBody(&b); err != nil {
			t.Fatalf("event body: %v", err)
		}
		if m.ID != strconv.Itoa(b.Seq) || m.Type != osap.TypeEventReport || m.Dev != "cam-1" {
			t.Fatalf("event %+v with body %+v: header does not match the body", m.Header, b)
		}
		counts[b.Seq]++
		keys[k] = true
	}
	return counts, keys
}
