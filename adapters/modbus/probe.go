package modbus

import (
	"context"
	"time"

	"github.com/osapgw/osapgw/adapters"
)

// This file holds how a poller follows its unit's online state, and how an
// offline unit is probed: with one small request at a backoff from
// FirstProbe doubling up to skip_for, in turn with the other units' polls
// on the link, so that a dead unit costs its bus at most one timeout per
// skip_for and a unit back on the wire is polled again within skip_for.

// unitState is what a poller keeps of its unit between polls: how many
// polls in a row failed, whether the online state was reported, and, while
// the unit is offline, when it is probed next.
type unitState struct {
	failed int
	known  bool // online state reported at least once
	// probing: the unit is offline; it is not polled but probed, the next
	// probe starting at probeAt. probes counts the probes it left
	// unanswered since a poll last got an answer.
	probing bool
	probes  int
	probeAt time.Time
}

// probeDelay returns the wait before probe n of an offline unit (n probes
// left unanswered so far): from the poll that found it offline for the
// first, from the start of the probe before for the others. It is
// FirstProbe doubling with each probe, capped at limit (skip_for); a limit
// under FirstProbe is every wait. It never fails.
func probeDelay(n int, limit time.Duration) time.Duration {
	if limit <= FirstProbe {
		return limit
	}
	if n < 0 {
		n = 0
	}
	if n < 40 {
		if d := FirstProbe << n; d > 0 && d < limit {
			return d
		}
	}
	return limit
}

// polled records the end of a poll: answered (the unit answered at least
// one read) or not, with the poll's error. It reports the unit online or,
// after offlineAfter failed polls, offline, each when it changes; an
// offline unit is then no longer polled but probed (see probeDue).
func (u *unitState) polled(a *Adapter, sink adapters.Sink, answered bool, pollErr error) {
	if answered {
		u.failed, u.probing, u.probes = 0, false, 0
		if !a.online.Load() || !u.known {
			u.known = true
			a.online.Store(true)
			a.log.Info("modbus unit online")
			sink.Status(a.dev.id, true, nil)
		}
		return
	}
	u.failed++
	if u.failed < a.dev.offlineAfter {
		return
	}
	if a.online.Load() || !u.known {
		u.known = true
		a.online.Store(false)
		a.log.Warn("modbus unit offline", "err", pollErr, "failed_polls", u.failed)
		sink.Status(a.dev.id, false, pollErr)
	}
	if !u.probing {
		// The probes go on from where they were when a probe was answered
		// but the poll after it was not: a unit that flaps backs off too.
		u.probing = true
		d := probeDelay(u.probes, a.dev.skipFor)
		u.probeAt = time.Now().Add(d)
		a.log.Debug("modbus unit probed from now on", "next_probe_seconds", d.Seconds())
	}
}

// probe sends one probe to the offline unit: a read of the first register
// (or bit) of r, bounded by the device's timeout, queued on the link like
// any request. It reports whether the unit answered, an exception
// included: then the unit is polled again at once. Otherwise the next
// probe is due probeDelay after this one started.
func (u *unitState) probe(ctx context.Context, a *Adapter, sl *sharedLink, r Read) bool {
	start := time.Now()
	_, err := a.doRead(ctx, sl, Read{Table: r.Table, Address: r.Address, Count: 1})
	if ctx.Err() != nil {
		return false
	}
	alive := err == nil
	if !alive {
		kind, _ := classify(err, a.dev.timeout)
		alive = kind == failException || kind == failAddress
	}
	if alive {
		u.probing = false
		a.log.Info("modbus unit answered a probe", "probes", u.probes+1, "took_seconds", time.Since(start).Seconds())
		return true
	}
	u.probes++
	u.probeAt = start.Add(probeDelay(u.probes, a.dev.skipFor))
	a.log.Debug("modbus unit probe not answered", "err", err, "probes", u.probes, "next_probe_seconds", time.Until(u.probeAt).Seconds())
	return false
}
