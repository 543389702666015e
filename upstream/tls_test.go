package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"golang.org/x/sync/errgroup"

	"github.com/osapgw/osapgw/internal/leaktest"
	"github.com/osapgw/osapgw/internal/testpki"
)

// TestSessionTLS connects over mqtts:// to a broker whose certificate the
// configured CA pool trusts, and fails (and keeps trying) with one that
// does not.
func TestSessionTLS(t *testing.T) {
	cert, pool := testpki.Server(t)
	_, otherPool := testpki.Server(t)
	tests := []struct {
		name      string
		roots     *x509.CertPool
		wantError string // in State().LastError; empty: connects
	}{
		{name: "trusted CA", roots: pool},
		{name: "untrusted CA", roots: otherPool, wantError: "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaktest.Check(t)
			srv := mochi.New(&mochi.Options{Logger: slog.New(slog.DiscardHandler)})
			if err := srv.AddHook(&recordHook{disconnects: make(chan string, 100), wills: make(chan string, 100)}, nil); err != nil {
				t.Fatal(err)
			}
			l := listeners.NewTCP(listeners.Config{ID: "tls", Address: "127.0.0.1:0", TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}})
			if err := srv.AddListener(l); err != nil {
				t.Fatal(err)
			}
			if err := srv.Serve(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = srv.Close() })

			a := &fakeAuth{das: "mqtts://" + l.Address()}
			r := newRecorder()
			s := New(Config{
				TLS:        &tls.Config{RootCAs: tt.roots},
				BackoffMin: 50 * time.Millisecond,
				BackoffMax: 200 * time.Millisecond,
				Logger:     testLogger(t),
			}, a, &memStore{}, r)
			stop := runSession(t, s)
			if tt.wantError == "" {
				recv(t, r.connected, "Handler.Connected")
				return
			}
			deadline := time.Now().Add(waitFor)
			for !strings.Contains(s.State().LastError, tt.wantError) {
				if time.Now().After(deadline) {
					t.Fatalf("State().LastError = %q, want it to mention %q", s.State().LastError, tt.wantError)
				}
				time.Sleep(10 * time.Millisecond)
			}
			stop()
			if len(r.connected) != 0 {
				t.Error("connected through a certificate the CA pool does not trust")
			}
		})
	}
}

// TestRunStopsWhileConnecting stops Run while the DAS accepts TCP but never
// answers CONNECT: Run returns, and leaves nothing running.
func TestRunStopsWhileConnecting(t *testing.T) {
	leaktest.Check(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 10)
	var g errgroup.Group
	g.Go(func() error {
		for {
			c, err := ln.Accept()
			if err != nil {
				return nil
			}
			accepted <- c
		}
	})
	defer func() {
		ln.Close()
		_ = g.Wait()
		close(accepted)
		for c := range accepted {
			c.Close()
		}
	}()

	a := &fakeAuth{das: "mqtt://" + ln.Addr().String()}
	s := newSession(t, a, &memStore{}, newRecorder(), 30*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	var run errgroup.Group
	run.Go(func() error { return s.Run(ctx) })
	c := recv(t, accepted, "connection from the session")
	accepted <- c // closed by the deferred cleanup
	for deadline := time.Now().Add(waitFor); s.State().State != PhaseConnecting; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("State() = %+v, want %v within %s of the TCP connection", s.State(), PhaseConnecting, waitFor)
		}
	}
	cancel()
	if err := run.Wait(); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	if st := s.State(); st.State != PhaseStopped || s.Connected() {
		t.Errorf("State() = %+v after Run returned, want stopped", st)
	}
	if err := s.Run(context.Background()); err == nil {
		t.Error("second Run = nil, want an error")
	}
}
