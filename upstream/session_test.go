package upstream

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sync/errgroup"

	"github.com/osapgw/osapgw/internal/leaktest"
	"github.com/osapgw/osapgw/osap"
)

func TestPublishRefusedWhenOffline(t *testing.T) {
	leaktest.Check(t)
	s := New(Config{Logger: testLogger(t)}, &fakeAuth{}, &memStore{}, newRecorder())
	called := false
	err := s.Publish(osap.KindEvent, eventHeader(1), nil, 1, func(error) { called = true })
	if !errors.Is(err, ErrNotConnected) {
		t.Errorf("Publish before Run = %v, want ErrNotConnected", err)
	}
	if err := s.Publish(osap.KindEvent, eventHeader(1), nil, 2, nil); err == nil || errors.Is(err, ErrNotConnected) {
		t.Errorf("Publish with QoS 2 = %v, want an error about the QoS", err)
	}
	if called {
		t.Error("done was called for a refused Publish")
	}
	if got := s.State(); got.State != PhaseIdle || s.Connected() {
		t.Errorf("State() = %+v, Connected() = %v; want idle and not connected", got, s.Connected())
	}
}

// TestSessionPublishAndStop connects, publishes with QoS 1 and 0, and stops:
// the platform sees {"online":true}, both messages opened and decoded,
// then {"online":false}, and the broker sends no will.
func TestSessionPublishAndStop(t *testing.T) {
	leaktest.Check(t)
	a := &fakeAuth{}
	b := startMochi(t, a.acceptsLogin)
	a.das = b.das()
	p := newPlatform(t, b.addr)
	st := &memStore{}
	r := newRecorder()
	s := newSession(t, a, st, r, 30*time.Second)
	stop := runSession(t, s)

	recv(t, r.connected, "Handler.Connected")
	if !p.nextStatus(t, a) {
		t.Fatal("first status message says online=false, want true")
	}
	if got := s.State(); got.State != PhaseConnected || got.DevID != testDevID || got.Reconnects != 0 || got.AuthFailures != 0 || !s.Connected() || s.DevID() != testDevID {
		t.Errorf("State() = %+v, Connected() = %v, want connected as %q with no reconnects or failures", got, s.Connected(), testDevID)
	}
	if diff := cmp.Diff([]bool{false}, a.calls()); diff != "" {
		t.Errorf("Authenticate calls (stored credentials passed?) (-want +got):\n%s", diff)
	}
	if c, ok, _ := st.LoadCredentials(); !ok || c.DevID != testDevID {
		t.Errorf("stored credentials = %+v, %v; want the issued ones", c, ok)
	}

	done := make(chan error, 2)
	attr := osap.AttributeReport{Resource: "main"}
	if err := s.Publish(osap.KindEvent, eventHeader(7), eventBody{Resource: "video/1", Event: "motion", Seq: 7}, 1, func(err error) { done <- err }); err != nil {
		t.Fatalf("Publish QoS 1: %v", err)
	}
	if err := s.Publish(osap.KindAttribute, osap.Header{ID: "a1", Type: osap.TypeAttributeReport, Dev: "cam-1"}, attr, 0, func(err error) { done <- err }); err != nil {
		t.Fatalf("Publish QoS 0: %v", err)
	}
	for range 2 {
		if err := recv(t, done, "publish completion"); err != nil {
			t.Errorf("done(%v), want done(nil)", err)
		}
	}
	got := map[string]osap.Header{}
	for len(got) < 2 {
		u := recv(t, p.up, "uplink")
		m, _, err := a.open(u.topic, u.payload)
		if err != nil {
			t.Fatal(err)
		}
		got[u.topic] = m.Header
	}
	want := map[string]osap.Header{
		osap.Topic(testDevID, osap.DirUp, osap.KindEvent):     eventHeader(7),
		osap.Topic(testDevID, osap.DirUp, osap.KindAttribute): {ID: "a1", Type: osap.TypeAttributeReport, Dev: "cam-1"},
	}
	if diff := cmp.Diff(want, got, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".TS" }, cmp.Ignore())); diff != "" {
		t.Errorf("uplinks by topic (-want +got):\n%s", diff)
	}

	stop()
	if err := recv(t, r.disconnected, "Handler.Disconnected"); err != nil {
		t.Errorf("Disconnected(%v) after stop, want Disconnected(nil)", err)
	}
	if p.nextStatus(t, a) {
		t.Error("status at stop says online=true, want false")
	}
	for id := recv(t, b.hook.disconnects, "broker disconnect"); id != testDevID; id = recv(t, b.hook.disconnects, "broker disconnect") {
	}
	// mochi sends a will before it reports the disconnect.
	select {
	case id := <-b.hook.wills:
		t.Errorf("broker sent the will of %q after a graceful stop", id)
	default:
	}
	if err := s.Publish(osap.KindEvent, eventHeader(8), nil, 1, nil); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Publish after stop = %v, want ErrNotConnected", err)
	}
	if got := s.State(); got.State != PhaseStopped || s.Connected() {
		t.Errorf("State() after stop = %+v, want stopped", got)
	}
}

// TestSessionCredentials covers where the credentials of a connection come
// from: first authentication, stored ones used as they are, a stored key
// the DAS refuses (CONNACK 4 → re-authentication), one due for refresh,
// and an LBS that fails twice.
func TestSessionCredentials(t *testing.T) {
	tests := []struct {
		name string
		// stored: nil for none; knownKey: the platform knows the stored
		// session key (the fake LBS issued it).
		stored           *Credentials
		knownKey         bool
		lbsFailures      int
		lbsErr           error  // the failures' error; nil: the LBS cannot be reached
		wantCalls        []bool // per Authenticate call: stored credentials passed in
		wantLogins       []string
		wantAuthFailures int64
	}{
		{
			name:       "first authentication",
			wantCalls:  []bool{false},
			wantLogins: []string{testDevID + ":true"},
		},
		{
			name:       "a start re-authenticates though the stored key is valid",
			stored:     &Credentials{Lifetime: time.Hour, SessionExpiry: time.Now().Add(time.Hour)},
			knownKey:   true,
			wantCalls:  []bool{true},
			wantLogins: []string{testDevID + ":true"},
		},
		{
			name:             "LBS unreachable at start: the stored key is used",
			stored:           &Credentials{Lifetime: time.Hour, SessionExpiry: time.Now().Add(time.Hour)},
			knownKey:         true,
			lbsFailures:      1,
			wantCalls:        []bool{true},
			wantLogins:       []string{testDevID + ":true"},
			wantAuthFailures: 1,
		},
		{
			name:             "LBS unreachable at start, stored key refused by the DAS, re-authentication",
			stored:           &Credentials{Lifetime: time.Hour, SessionExpiry: time.Now().Add(time.Hour)},
			lbsFailures:      1,
			wantCalls:        []bool{true, true},
			wantLogins:       []string{testDevID + ":false", testDevID + ":true"},
			wantAuthFailures: 2,
		},
		{
			name:             "LBS unreachable at start and the stored key expired: wait for the LBS",
			stored:           &Credentials{Lifetime: time.Hour, SessionExpiry: time.Now().Add(-time.Minute)},
			knownKey:         true,
			lbsFailures:      2,
			wantCalls:        []bool{true, true, true},
			wantLogins:       []string{testDevID + ":true"},
			wantAuthFailures: 2,
		},
		{
			name:             "LBS refuses at start (unknown device): the stored key is not used",
			stored:           &Credentials{Lifetime: time.Hour, SessionExpiry: time.Now().Add(time.Hour)},
			knownKey:         true,
			lbsFailures:      1,
			lbsErr:           &osap.StatusError{Status: osap.StatusUnknown},
			wantCalls:        []bool{true, true},
			wantLogins:       []string{testDevID + ":true"},
			wantAuthFailures: 1,
		},
		{
			name:             "LBS fails twice",
			lbsFailures:      2,
			wantCalls:        []bool{false, false, false},
			wantLogins:       []string{testDevID + ":true"},
			wantAuthFailures: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaktest.Check(t)
			a := &fakeAuth{fail: tt.lbsFailures, failErr: tt.lbsErr}
			b := startMochi(t, a.acceptsLogin)
			a.das = b.das()
			st := &memStore{}
			if tt.stored != nil {
				c := *tt.stored
				c.DevID, c.Suite, c.DASAddress = testDevID, osap.SuiteAESGCM, a.das
				c.MasterKey = make([]byte, osap.KeySize)
				c.SessionKey = make([]byte, osap.KeySize)
				_, _ = rand.Read(c.SessionKey)
				if tt.knownKey {
					a.keys = append(a.keys, c.SessionKey)
				}
				_ = st.SaveCredentials(c)
			}
			r := newRecorder()
			s := newSession(t, a, st, r, 30*time.Second)
			runSession(t, s)
			recv(t, r.connected, "Handler.Connected")

			if diff := cmp.Diff(tt.wantCalls, a.calls()); diff != "" {
				t.Errorf("Authenticate calls (stored credentials passed?) (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantLogins, b.hook.loginLog()); diff != "" {
				t.Errorf("logins at the DAS (-want +got):\n%s", diff)
			}
			if got := s.State(); got.AuthFailures != tt.wantAuthFailures || got.State != PhaseConnected {
				t.Errorf("State() = %+v, want connected with %d auth failures", got, tt.wantAuthFailures)
			}
		})
	}
}

// TestSessionDownlink sends four downlinks: one that is not a sealed
// message, one sealed under a key the gateway does not have, one sealed
// with the session key whose body is not JSON, and a good one; the good
// one reaches Handler.Downlink, opened and decoded, the unreadable one
// Handler.Unreadable with its id, and the others nothing.
func TestSessionDownlink(t *testing.T) {
	leaktest.Check(t)
	a := &fakeAuth{}
	b := startMochi(t, nil)
	a.das = b.das()
	p := newPlatform(t, b.addr)
	r := newRecorder()
	s := newSession(t, a, &memStore{}, r, 30*time.Second)
	runSession(t, s)
	recv(t, r.connected, "Handler.Connected")

	p.raw(t, osap.Topic(testDevID, osap.DirDown, "request"), []byte("not sealed"))
	stranger, err := osap.NewCipher(osap.SuiteAESGCM, make([]byte, osap.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	p.publish(t, stranger, "request", osap.Header{ID: "x", Type: osap.TypeAttributeSet}, osap.AttributeSet{Resource: "main"})
	gen := `{"id":"41","ts":1,"type":"attribute.set","dev":"boiler-1","code":0}`
	pt := append(binary.BigEndian.AppendUint16(nil, uint16(len(gen))), gen+`{"resource":"main",`...)
	topic := osap.Topic(testDevID, osap.DirDown, "request")
	garbled, err := a.ciphers()[0].Seal(nil, rand.Reader, []byte(topic), pt)
	if err != nil {
		t.Fatal(err)
	}
	p.raw(t, topic, garbled)
	want := osap.AttributeSet{Resource: "main", Values: map[string]any{"setpoint": "21.5"}}
	p.publish(t, a.ciphers()[0], "request", osap.Header{ID: "42", TS: 1764150000000, Type: osap.TypeAttributeSet, Dev: "boiler-1"}, want)

	m := recv(t, r.downlinks, "downlink")
	if diff := cmp.Diff(osap.Header{ID: "42", TS: 1764150000000, Type: osap.TypeAttributeSet, Dev: "boiler-1"}, m.Header); diff != "" {
		t.Errorf("downlink header (-want +got):\n%s", diff)
	}
	var got osap.AttributeSet
	if err := m.DecodeBody(&got); err != nil {
		t.Fatalf("DecodeBody: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("downlink body (-want +got):\n%s", diff)
	}
	ue := recv(t, r.unreadable, "unreadable downlink")
	if want := (osap.Header{ID: "41", Type: osap.TypeAttributeSet, Dev: "boiler-1"}); ue.Header != want || !errors.Is(ue.Err, osap.ErrMalformed) {
		t.Errorf("Unreadable(%+v, %v), want %+v and ErrMalformed", ue.Header, ue.Err, want)
	}
	select {
	case m := <-r.downlinks:
		t.Errorf("another downlink reached Handler.Downlink: %+v", m.Header)
	case ue := <-r.unreadable:
		t.Errorf("another downlink reached Handler.Unreadable: %+v", ue.Header)
	default:
	}
}

// TestSessionKeyRefresh runs the key refresh flow against the in-process
// broker, which checks every login password against the newest key.
func TestSessionKeyRefresh(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for session key refreshes (seconds)")
	}
	leaktest.Check(t)
	a := &fakeAuth{lifetime: 2 * time.Second}
	b := startMochi(t, a.acceptsLogin)
	a.das = b.das()
	refreshes := keyRefreshFlow(t, a, b.addr)
	for _, l := range b.hook.loginLog() {
		if l != testDevID+":true" {
			t.Errorf("logins %v: want every one accepted (a fresh password under the newest key)", b.hook.loginLog())
			break
		}
	}
	// One login per key: the first and each refresh's, but for a last
	// refresh that the stop came before the reconnection of.
	if n := len(b.hook.loginLog()); n != refreshes+1 && n != refreshes {
		t.Errorf("%d logins after %d refreshes, want %d or %d", n, refreshes, refreshes, refreshes+1)
	}
}

// keyRefreshFlow gives the session key a 2 s lifetime, so it is refreshed
// every 1.6 s, while events go up and downlinks come down at a steady
// pace, and checks that every event and every downlink gets through and
// that events went up sealed under more than one key. It returns the
// number of refreshes.
func keyRefreshFlow(t *testing.T, a *fakeAuth, addr string) (refreshes int) {
	t.Helper()
	p := newPlatform(t, addr)
	r := newRecorder()
	s := newSession(t, a, &memStore{}, r, 30*time.Second)
	stop := runSession(t, s)
	recv(t, r.connected, "Handler.Connected")

	const events, downlinks = 80, 40
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitFor)
	defer cancel()
	var g errgroup.Group
	g.Go(func() error {
		_, err := publishAll(ctx, s, events, 50*time.Millisecond, nil)
		return err
	})
	g.Go(func() error {
		for i := 1; i <= downlinks; i++ {
			// The platform seals with the newest key it issued.
			topic := osap.Topic(testDevID, osap.DirDown, "request")
			payload, err := a.ciphers()[0].SealMessage(rand.Reader, topic, osap.Header{ID: strconv.Itoa(i), Type: osap.TypeOperationInvoke},
				osap.OperationInvoke{Resource: "ptz/1", Operation: "goto_preset"})
			if err != nil {
				return err
			}
			if tok := p.c.Publish(topic, 1, false, payload); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
				return fmt.Errorf("platform publish %d: %v", i, tok.Error())
			}
			sleep(ctx, 100*time.Millisecond)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		t.Fatalf("publishing: %v", err)
	}
	counts, keys := collectEvents(t, p, a, events)
	got := map[string]bool{}
	for len(got) < downlinks {
		got[recv(t, r.downlinks, "downlink").ID] = true
	}

	// Stop before counting: the key is refreshed every 1.6 s, so a
	// running session could refresh between two of the counts below.
	stop()
	for len(r.disconnected) > 0 {
		switch err := <-r.disconnected; {
		case errors.Is(err, ErrKeyRefresh):
			refreshes++
		case err == nil: // the stop
		default:
			t.Errorf("Disconnected(%v), want only key refreshes and the stop", err)
		}
	}
	if refreshes == 0 || len(keys) < 2 {
		t.Errorf("%d refreshes, events sealed under %d keys; want at least 1 and 2", refreshes, len(keys))
	}
	// The stop may come between a refresh and the reconnection with its
	// key, so the last refresh may have no reconnection.
	if st := s.State(); st.Reconnects != int64(refreshes) && st.Reconnects != int64(refreshes-1) {
		t.Errorf("State().Reconnects = %d after %d refreshes, want %d or %d", st.Reconnects, refreshes, refreshes-1, refreshes)
	}
	if calls := a.calls(); len(calls) != refreshes+1 {
		t.Errorf("%d Authenticate calls for %d refreshes, want %d", len(calls), refreshes, refreshes+1)
	}
	t.Logf("%d events (%d copies), %d downlinks, %d key refreshes", events, total(counts), downlinks, refreshes)
	return refreshes
}

// TestSessionAlwaysRefused has a DAS that refuses every login: the session
// re-authenticates after each refusal (with its stored DevID, not from
// scratch), backs off between rounds, and counts the failures.
func TestSessionAlwaysRefused(t *testing.T) {
	leaktest.Check(t)
	a := &fakeAuth{}
	b := startMochi(t, func(string, string) bool { return false })
	a.das = b.das()
	r := newRecorder()
	s := newSession(t, a, &memStore{}, r, 30*time.Second)
	stop := runSession(t, s)
	deadline := time.Now().Add(waitFor)
	for s.State().AuthFailures < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("State() = %+v, want at least 3 auth failures", s.State())
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	calls := a.calls()
	if len(calls) < 3 || calls[0] {
		t.Fatalf("Authenticate calls %v: want a first authentication then re-authentications", calls)
	}
	for i, stored := range calls[1:] {
		if !stored {
			t.Errorf("Authenticate call %d without the stored credentials, want re-authentication", i+2)
		}
	}
	if st := s.State(); !strings.Contains(st.LastError, "refused the credentials with CONNACK") {
		t.Errorf("State().LastError = %q, want the CONNACK refusal", st.LastError)
	}
	if len(r.connected) != 0 {
		t.Error("Handler.Connected called though every login was refused")
	}
}

func total(m map[int]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// TestSessionDASGone gives the session a DAS where nothing listens: after
// a few failed connections it asks the LBS again, gets another DAS and
// connects there.
func TestSessionDASGone(t *testing.T) {
	leaktest.Check(t)
	b := startMochi(t, nil)
	a := &fakeAuth{dasSeq: []string{fmt.Sprintf("mqtt://127.0.0.1:%d", freePort(t)), b.das()}}
	r := newRecorder()
	s := newSession(t, a, &memStore{}, r, 30*time.Second)
	runSession(t, s)
	recv(t, r.connected, "Handler.Connected")
	if diff := cmp.Diff([]bool{false, true}, a.calls()); diff != "" {
		t.Errorf("Authenticate calls (stored credentials passed?) (-want +got):\n%s", diff)
	}
	if st := s.State(); !strings.Contains(st.LastError, "connection refused") || st.AuthFailures != 0 {
		t.Errorf("State() = %+v, want the refused connection as last error and no auth failures", st)
	}
}

// TestSessionStopWhilePublishing stops the session in the middle of a burst
// of QoS 1 publishes: every publish Publish accepted gets exactly one done,
// and every one acknowledged with done(nil) reached the platform.
func TestSessionStopWhilePublishing(t *testing.T) {
	leaktest.Check(t)
	a := &fakeAuth{}
	b := startMochi(t, nil)
	a.das = b.das()
	p := newPlatform(t, b.addr)
	r := newRecorder()
	s := newSession(t, a, &memStore{}, r, 30*time.Second)
	stop := runSession(t, s)
	recv(t, r.connected, "Handler.Connected")

	const n = 400
	results := make(chan pubResult, n)
	accepted, refused := 0, 0
	var g errgroup.Group
	for i := 1; i <= n; i++ {
		if i == n/4 {
			g.Go(func() error { stop(); return nil })
		}
		err := s.Publish(osap.KindEvent, eventHeader(i), eventBody{Resource: "video/1", Event: "motion", Seq: i}, 1,
			func(err error) { results <- pubResult{id: i, err: err} })
		switch {
		case err == nil:
			accepted++
		case errors.Is(err, ErrNotConnected):
			refused++
		default:
			t.Fatalf("Publish %d: %v", i, err)
		}
	}
	_ = g.Wait()

	acked := map[int]bool{}
	seen := map[int]bool{}
	for range accepted {
		res := recv(t, results, "done")
		if seen[res.id] {
			t.Errorf("done called twice for event %d", res.id)
		}
		seen[res.id] = true
		if res.err == nil {
			acked[res.id] = true
		} else if !errors.Is(res.err, ErrConnectionLost) {
			t.Errorf("done(%v) for event %d, want nil or ErrConnectionLost", res.err, res.id)
		}
	}
	select {
	case res := <-results:
		t.Errorf("done called for event %d after every accepted publish had its own", res.id)
	default:
	}
	if refused == 0 || len(acked) == 0 {
		t.Fatalf("%d publishes acknowledged, %d refused; the stop did not fall in the burst", len(acked), refused)
	}
	for missing := len(acked); missing > 0; {
		u := recv(t, p.up, "acknowledged event")
		if !strings.HasSuffix(u.topic, "/up/event") {
			continue
		}
		m, _, err := a.open(u.topic, u.payload)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := strconv.Atoi(m.ID)
		if acked[id] {
			delete(acked, id)
			missing--
		}
	}
	t.Logf("%d accepted, %d refused after the stop began", accepted, refused)
}

// TestStartFallbackRules: which authentication errors carry the LBS's
// verdict, and which kept keys may be used while it cannot be reached.
func TestStartFallbackRules(t *testing.T) {
	answered := []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), false},
		{"busy", fmt.Errorf("0x6: %w", &osap.StatusError{Status: osap.StatusBusy}), false},
		{"internal error", &osap.StatusError{Status: osap.StatusInternal}, false},
		{"unknown device", fmt.Errorf("0x6: %w", &osap.StatusError{Status: osap.StatusUnknown}), true},
		{"master key unknown", &osap.StatusError{Status: osap.StatusNoMasterKey}, true},
		{"does not open", fmt.Errorf("0x6: %w", osap.ErrDecrypt), true},
		{"malformed", osap.ErrMalformed, true},
	}
	for _, tt := range answered {
		if got := lbsAnswered(tt.err); got != tt.want {
			t.Errorf("lbsAnswered(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
	now := time.Now()
	key := make([]byte, osap.KeySize)
	c := func(expiry time.Time, lifetime time.Duration) *Credentials {
		return &Credentials{DevID: testDevID, SessionKey: key, DASAddress: "mqtt://127.0.0.1:1", SessionExpiry: expiry, Lifetime: lifetime}
	}
	keys := []struct {
		name string
		c    *Credentials
		want bool
	}{
		{"none", nil, false},
		{"alive", c(now.Add(time.Hour), 2*time.Hour), true},
		{"past its refresh point, alive", c(now.Add(time.Minute), 2*time.Hour), true},
		{"expired", c(now.Add(-time.Second), 2*time.Hour), false},
		{"no lifetime", c(time.Time{}, 0), true},
		{"no key", &Credentials{DevID: testDevID, DASAddress: "mqtt://127.0.0.1:1", SessionExpiry: now.Add(time.Hour)}, false},
	}
	for _, tt := range keys {
		if got := alive(tt.c, now); got != tt.want {
			t.Errorf("alive(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
}
