package osap

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeLBS accepts connections on 127.0.0.1 and answers each with reply,
// which gets the first request frame, then closes its side for writing. It records whether every connection
// was closed by the client.
type fakeLBS struct {
	ln      net.Listener
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   int
	unclean int
}

func startFakeLBS(t *testing.T, reply func(n int, req *Frame) []byte) *fakeLBS {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeLBS{ln: ln}
	s.wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			n := s.conns
			s.mu.Unlock()
			s.wg.Go(func() {
				defer nc.Close()
				nc.SetDeadline(time.Now().Add(10 * time.Second))
				r := bufio.NewReader(nc)
				raw, err := ReadFrame(r)
				if err != nil {
					return
				}
				f, _ := DecodeFrame(raw)
				nc.Write(reply(n, f))
				nc.(*net.TCPConn).CloseWrite()
				// The client must close its side whatever we sent.
				if _, err := io.Copy(io.Discard, r); err != nil {
					s.mu.Lock()
					s.unclean++
					s.mu.Unlock()
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
		if s.unclean > 0 {
			t.Errorf("%d connections not closed by the client", s.unclean)
		}
	})
	return s
}

func testClient(t *testing.T, addr string) *Client {
	t.Helper()
	c, err := NewClient(ClientConfig{Addr: addr, Serial: "GW1", VerificationCode: "ABCDEF", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClientRefusesBadResponses(t *testing.T) {
	okErr := func(group SuiteSet, seq uint16) []byte {
		b, _ := EncodeError(MsgAuthRsp, seq, group, &StatusError{Status: StatusUnsupported})
		return b
	}
	tests := []struct {
		name  string
		reply func(n int, req *Frame) []byte
		want  error
		conns int
	}{
		{name: "truncated response", reply: func(int, *Frame) []byte { b := okErr(DefaultSuites, 1); return b[:len(b)-3] }, want: ErrMalformed, conns: 1},
		{name: "response over 64 KiB", reply: func(int, *Frame) []byte { return []byte{0x21, 0xff, 0xff, 0x7f} }, want: ErrFrameTooLarge, conns: 1},
		{name: "wrong sequence", reply: func(int, *Frame) []byte { return okErr(SuiteSet(SuiteAESGCM), 9) }, want: ErrMalformed, conns: 1},
		{name: "wrong type", reply: func(int, *Frame) []byte {
			b, _ := EncodeError(MsgAccessRsp, 1, DefaultSuites, &StatusError{Status: StatusMalformed})
			return b
		}, want: ErrMalformed, conns: 1},
		{name: "suite not offered", reply: func(_ int, req *Frame) []byte {
			f := NewFrame(MsgAuthRsp, SuiteSet(SuiteAESECB), 1, statusOK())
			b, _ := f.Encode()
			return b
		}, want: ErrUnsupportedSuite, conns: 1},
		{name: "status 1 twice", reply: func(n int, req *Frame) []byte { return okErr(SuiteSet(SuiteAESCBCHMAC|SuiteAESCBC), 1) }, want: ErrUnsupportedSuite, conns: 2},
		{name: "status 1, nothing shared", reply: func(n int, req *Frame) []byte { return okErr(SuiteSet(SuiteAESECB), 1) }, want: ErrUnsupportedSuite, conns: 1},
		{name: "status 1, other protocol type", reply: func(n int, req *Frame) []byte {
			f := NewFrame(MsgAuthRsp, DefaultSuites, 1, TLV{Tag: TagStatus, Value: []byte{1}})
			f.Protocol = 2
			b, _ := f.Encode()
			return b
		}, want: ErrUnsupported, conns: 1},
		{name: "closed without answer", reply: func(int, *Frame) []byte { return nil }, want: io.EOF, conns: 1},
		{name: "busy", reply: func(int, *Frame) []byte {
			b, _ := EncodeError(MsgAuthRsp, 1, DefaultSuites, &StatusError{Status: StatusBusy, RetryAfter: 30 * time.Second})
			return b
		}, want: &StatusError{Status: StatusBusy, RetryAfter: 30 * time.Second}, conns: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startFakeLBS(t, tt.reply)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := testClient(t, s.ln.Addr().String()).Authenticate(ctx, nil)
			var wantSE *StatusError
			if errors.As(tt.want, &wantSE) {
				var se *StatusError
				if !errors.As(err, &se) || *se != *wantSE {
					t.Fatalf("Authenticate = %v, want %v", err, tt.want)
				}
			} else if !errors.Is(err, tt.want) {
				t.Fatalf("Authenticate = %v, want %v", err, tt.want)
			}
			if tt.name == "status 1 twice" && (!strings.Contains(err.Error(), "0x0c") || !strings.Contains(err.Error(), "0x06")) {
				t.Errorf("error %q does not name both sets", err)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.conns != tt.conns {
				t.Errorf("client opened %d connections, want %d", s.conns, tt.conns)
			}
		})
	}
}

func TestNewClientConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     ClientConfig
		offer   SuiteSet
		wantErr string
	}{
		{name: "defaults", cfg: ClientConfig{Addr: "a:1", Serial: "S", VerificationCode: "ABCDEF"}, offer: DefaultSuites},
		{name: "legacy allowed", cfg: ClientConfig{Addr: "a:1", Serial: "S", VerificationCode: "ABCDEF", AllowLegacy: true}, offer: AllSuites},
		{name: "legacy dropped", cfg: ClientConfig{Addr: "a:1", Serial: "S", VerificationCode: "ABCDEF", Suites: AllSuites}, offer: DefaultSuites},
		{name: "only legacy", cfg: ClientConfig{Addr: "a:1", Serial: "S", VerificationCode: "ABCDEF", Suites: SuiteSet(SuiteAESECB)}, wantErr: "allow_legacy_ciphers"},
		{name: "no address", cfg: ClientConfig{Serial: "S", VerificationCode: "ABCDEF"}, wantErr: "no LBS address"},
		{name: "no serial", cfg: ClientConfig{Addr: "a:1", VerificationCode: "ABCDEF"}, wantErr: "serial"},
		{name: "no code", cfg: ClientConfig{Addr: "a:1", Serial: "S"}, wantErr: "verification code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NewClient = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || c.Offer() != tt.offer {
				t.Fatalf("NewClient = offer %v, %v, want %v", c.Offer(), err, tt.offer)
			}
		})
	}
}

func TestCredentialsHideKeys(t *testing.T) {
	cr := Credentials{DevID: "d1", MasterKey: []byte("MASTERMASTERMAST"), SessionKey: []byte("SESSIONSESSIONSE"), Suite: SuiteAESGCM}
	var buf strings.Builder
	slog.New(slog.NewTextHandler(&buf, nil)).Info("creds", "cr", cr)
	for _, s := range []string{fmt.Sprintf("%v %+v %s", cr, cr, cr), buf.String()} {
		if strings.Contains(s, "MASTER") || strings.Contains(s, "SESSION") || strings.Contains(s, "4d4153") || !strings.Contains(s, "d1") {
			t.Errorf("credentials printed as %q: keys visible or DevID missing", s)
		}
	}
}

// TestAuthenticateBoundsTLSHandshake authenticates over TLS with an LBS
// that accepts the connection and then says nothing, under a context
// without deadline: Config.Timeout must bound the handshake as it bounds
// the exchange, or the gateway waits for ever and never retries.
func TestAuthenticateBoundsTLSHandshake(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Go(func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, nc) // silent: never answers the ClientHello
		}
	})
	c, err := NewClient(ClientConfig{Addr: ln.Addr().String(), Serial: "GW1", VerificationCode: "ABCDEF",
		TLS: &tls.Config{ServerName: "lbs.test", MinVersion: tls.VersionTLS12}, Timeout: 100 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background()) // no deadline
	defer cancel()
	done := make(chan error, 1)
	wg.Go(func() {
		_, err := c.Authenticate(ctx, nil)
		done <- err
	})
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Authenticate against a silent LBS = %v, want an error wrapping context.DeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second): // a bound for the failure, not a speed check
		t.Error("Authenticate against a silent LBS did not return: the TLS handshake is not bounded")
		cancel()
		<-done
	}
}
