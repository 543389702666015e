package platform

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/osapgw/osapgw/osap"
)

func statusOf(t *testing.T, err error) osap.StatusCode {
	t.Helper()
	var se *osap.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("error %v is not a *StatusError", err)
	}
	return se.Status
}

func TestWrongVerificationCode(t *testing.T) {
	s := startLBS(t, LBSConfig{})
	c, _ := newClient(t, s.addr, func(cfg *osap.ClientConfig) { cfg.VerificationCode = "WRONG1" })
	_, err := c.Authenticate(testCtx(t), nil)
	if got := statusOf(t, err); got != osap.StatusAuthFailed {
		t.Fatalf("Authenticate with a wrong code = %v, want status 2", err)
	}
	r := s.logs.waitLog(t, "authentication refused", 2)
	if r["serial"] != "GW1" {
		t.Errorf("server logged %v, want serial GW1", r)
	}
}

func TestUnknownSerial(t *testing.T) {
	s := startLBS(t, LBSConfig{})
	c, _ := newClient(t, s.addr, func(cfg *osap.ClientConfig) { cfg.Serial = "NOPE" })
	_, err := c.Authenticate(testCtx(t), nil)
	if got := statusOf(t, err); got != osap.StatusUnknown {
		t.Fatalf("Authenticate with an unknown serial = %v, want status 3", err)
	}
	s.logs.waitLog(t, "authentication refused", 3)
}

func TestLostMasterKeyRunsFirstAuthAgain(t *testing.T) {
	// The platform lost its state: it knows the serial but not the DevID.
	s := startLBS(t, LBSConfig{})
	c, clog := newClient(t, s.addr, nil)
	stale := &osap.Credentials{DevID: "0123456789abcdef", MasterKey: make([]byte, osap.KeySize), Suite: osap.SuiteAESGCM}
	cr, err := c.Authenticate(testCtx(t), stale)
	if err != nil {
		t.Fatalf("Authenticate with a master key the LBS lost = %v, want recovery by first authentication", err)
	}
	if cr.DevID == stale.DevID || cr.DevID == "" {
		t.Errorf("DevID = %q, want a new one", cr.DevID)
	}
	s.logs.waitLog(t, "authentication refused", 4)
	if r := s.logs.waitLog(t, "device authenticated", 0); r["kind"] != "first" {
		t.Errorf("server logged %v, want a first authentication", r)
	}
	if len(clog.find("re-authentication refused, running first authentication")) != 1 {
		t.Errorf("client did not log the fall-back")
	}
}

func TestDeviceLostCredentialsKeepsDevID(t *testing.T) {
	s := startLBS(t, LBSConfig{})
	c, _ := newClient(t, s.addr, nil)
	ctx := testCtx(t)
	cr1, err := c.Authenticate(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	cr2, err := c.Authenticate(ctx, nil) // the gateway's store was wiped
	if err != nil {
		t.Fatal(err)
	}
	if cr2.DevID != cr1.DevID {
		t.Errorf("second first authentication gave DevID %q, want the same %q", cr2.DevID, cr1.DevID)
	}
	// The old master key is gone from the platform: re-auth with it fails.
	if _, err := c.Authenticate(ctx, &cr1); err != nil {
		t.Fatalf("re-authentication with the replaced master key: %v (the client must not lock out)", err)
	}
}

func TestNoSharedSuite(t *testing.T) {
	s := startLBS(t, LBSConfig{Suites: osap.SuiteSet(osap.SuiteAESCBCHMAC)})
	c, _ := newClient(t, s.addr, func(cfg *osap.ClientConfig) { cfg.Suites = osap.SuiteSet(osap.SuiteAESGCM) })
	_, err := c.Authenticate(testCtx(t), nil)
	if !errors.Is(err, osap.ErrUnsupportedSuite) || !strings.Contains(err.Error(), "aes-128-gcm") || !strings.Contains(err.Error(), "aes-128-cbc-hmac-sha256") {
		t.Fatalf("Authenticate with no shared suite = %v, want ErrUnsupportedSuite naming both sets", err)
	}
	s.logs.waitLog(t, "authentication refused", 1)
}

func TestStoredSuiteDroppedByLBS(t *testing.T) {
	reg, err := NewRegistry("")
	if err != nil {
		t.Fatal(err)
	}
	reg.Add("GW1", "ABCDEF")
	gcm := startLBS(t, LBSConfig{Registry: reg})
	c, _ := newClient(t, gcm.addr, nil)
	ctx := testCtx(t)
	cr, err := c.Authenticate(ctx, nil)
	if err != nil || cr.Suite != osap.SuiteAESGCM {
		t.Fatalf("Authenticate = %+v, %v", cr, err)
	}
	// The platform now supports only CBC+HMAC: 0x4 gets status 1, and the
	// client runs first authentication, which picks CBC+HMAC.
	cbc := startLBS(t, LBSConfig{Registry: reg, Suites: osap.SuiteSet(osap.SuiteAESCBCHMAC)})
	c2, _ := newClient(t, cbc.addr, nil)
	cr2, err := c2.Authenticate(ctx, &cr)
	if err != nil || cr2.Suite != osap.SuiteAESCBCHMAC || cr2.DevID != cr.DevID {
		t.Fatalf("Authenticate after the LBS dropped GCM = %+v, %v, want CBC+HMAC and the same DevID", cr2, err)
	}
	cbc.logs.waitLog(t, "authentication refused", 1)
}

// TestRetryWithIntersection puts in front of the LBS a proxy that answers
// the first connection with status 1 and a set sharing one suite with the
// offer: the client retries once with the intersection.
func TestRetryWithIntersection(t *testing.T) {
	s := startLBS(t, LBSConfig{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			nc, err := ln.Accept()
			if err != nil {
				return err
			}
			if _, err := osap.ReadFrame(bufio.NewReader(nc)); err != nil {
				return err
			}
			b, _ := osap.EncodeError(osap.MsgAuthRsp, 1, osap.SuiteSet(osap.SuiteAESCBCHMAC|osap.SuiteAESECB), &osap.StatusError{Status: osap.StatusUnsupported})
			nc.Write(b)
			nc.Close()
			nc, err = ln.Accept()
			if err != nil {
				return err
			}
			defer nc.Close()
			up, err := net.Dial("tcp", s.addr)
			if err != nil {
				return err
			}
			defer up.Close()
			go func() { io.Copy(up, nc); up.(*net.TCPConn).CloseWrite() }()
			_, err = io.Copy(nc, up)
			return err
		}()
	}()
	c, _ := newClient(t, ln.Addr().String(), nil)
	cr, err := c.Authenticate(testCtx(t), nil)
	if err != nil || cr.Suite != osap.SuiteAESCBCHMAC {
		t.Fatalf("Authenticate through the refusing proxy = %+v, %v, want CBC+HMAC after the retry", cr, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestLegacySuites(t *testing.T) {
	legacy := osap.SuiteSet(osap.SuiteAESCBC | osap.SuiteAESECB)
	s := startLBS(t, LBSConfig{Suites: legacy})
	if _, err := osap.NewClient(osap.ClientConfig{Addr: s.addr, Serial: "GW1", VerificationCode: "ABCDEF", Suites: legacy}); !errors.Is(err, osap.ErrUnsupportedSuite) {
		t.Errorf("NewClient with only legacy suites and no AllowLegacy = %v, want ErrUnsupportedSuite", err)
	}
	c, _ := newClient(t, s.addr, nil)
	if _, err := c.Authenticate(testCtx(t), nil); !errors.Is(err, osap.ErrUnsupportedSuite) {
		t.Fatalf("Authenticate against a legacy-only LBS = %v, want ErrUnsupportedSuite", err)
	}
	s.logs.waitLog(t, "authentication refused", 1)
	c, clog := newClient(t, s.addr, func(cfg *osap.ClientConfig) { cfg.AllowLegacy = true })
	cr, err := c.Authenticate(testCtx(t), nil)
	if err != nil || cr.Suite != osap.SuiteAESCBC {
		t.Fatalf("Authenticate with AllowLegacy = %+v, %v, want aes-128-cbc", cr, err)
	}
	if len(clog.find("offering legacy cipher suites without integrity protection")) == 0 {
		t.Errorf("client did not warn about legacy suites")
	}
	s.logs.waitLog(t, "legacy cipher suite negotiated", -1)
	if _, err := c.Authenticate(testCtx(t), &cr); err != nil {
		t.Fatalf("re-authentication under aes-128-cbc: %v", err)
	}
}

// rawExchange writes b to the LBS (closing our side when half is set) and
// returns the response it answers, then checks that the LBS closed.
func rawExchange(t *testing.T, addr string, b []byte, closeWrite bool) *osap.Frame {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write(b); err != nil {
		t.Fatal(err)
	}
	if closeWrite {
		nc.(*net.TCPConn).CloseWrite()
	}
	r := bufio.NewReader(nc)
	raw, err := osap.ReadFrame(r)
	if err != nil {
		t.Fatalf("no response from the LBS: %v", err)
	}
	f, err := osap.DecodeFrame(raw)
	if err != nil {
		t.Fatalf("response %x: %v", raw, err)
	}
	if _, err := r.ReadByte(); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Errorf("after the response: %v, want the LBS to close", err)
	}
	return f
}

func isReset(err error) bool { return err != nil && strings.Contains(err.Error(), "connection reset") }

func wantStatus(t *testing.T, f *osap.Frame, typ osap.MsgType, st osap.StatusCode) {
	t.Helper()
	err := osap.ResponseError(f)
	var se *osap.StatusError
	if f.Type != typ || !errors.As(err, &se) || se.Status != st || len(f.App) != 0 {
		t.Fatalf("response %v %v (app %d bytes), want %v with status %d and no application payload", f.Type, err, len(f.App), typ, st)
	}
}

func TestMalformedInput(t *testing.T) {
	s := startLBS(t, LBSConfig{})
	good, err := osap.AuthReq{Serial: "GW1", PublicKey: make([]byte, osap.PublicKeySize), Nonce: make([]byte, osap.NonceSize)}.Encode(1, osap.DefaultSuites, make([]byte, osap.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	flagClear := append([]byte{byte(osap.MsgAuthReq) << 4}, good[1:]...)
	noSerial, _ := osap.NewFrame(osap.MsgAuthReq, osap.DefaultSuites, 1).Encode()
	badSeq, _ := osap.AuthReq{Serial: "GW1", PublicKey: make([]byte, osap.PublicKeySize), Nonce: make([]byte, osap.NonceSize)}.Encode(7, osap.DefaultSuites, make([]byte, osap.KeySize))
	tests := []struct {
		name       string
		in         []byte
		closeWrite bool
		wantType   osap.MsgType
		want       osap.StatusCode
	}{
		{name: "truncated frame", in: good[:len(good)/2], closeWrite: true, wantType: osap.MsgAuthRsp, want: osap.StatusMalformed},
		{name: "truncated fixed header", in: good[:2], closeWrite: true, wantType: osap.MsgAuthRsp, want: osap.StatusMalformed},
		{name: "frame over 64 KiB", in: append([]byte{0x11}, osap.AppendRemainingLength(nil, 70000)...), wantType: osap.MsgAuthRsp, want: osap.StatusMalformed},
		{name: "garbage", in: []byte("GET / HTTP/1.1\r\nHost: lbs\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n\r\n" + strings.Repeat("x", 64)), wantType: osap.MsgAuthRsp, want: osap.StatusMalformed},
		{name: "ECDH flag clear", in: flagClear, wantType: osap.MsgAuthRsp, want: osap.StatusUnsupported},
		{name: "required tag missing", in: noSerial, wantType: osap.MsgAuthRsp, want: osap.StatusMalformed},
		{name: "sequence not 1", in: badSeq, wantType: osap.MsgAuthRsp, want: osap.StatusMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := rawExchange(t, s.addr, tt.in, tt.closeWrite)
			wantStatus(t, f, tt.wantType, tt.want)
			s.logs.waitLog(t, "authentication refused", int(tt.want))
		})
	}
}

func TestSlowLoris(t *testing.T) {
	s := startLBS(t, LBSConfig{ReadTimeout: 200 * time.Millisecond})
	nc, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	// One byte, then nothing: the LBS must give up on its own.
	if _, err := nc.Write([]byte{0x11}); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("Read = %v, want the LBS to close", err)
	}
	s.logs.waitLog(t, "read deadline passed, closing", -1)
}

// TestClientDeadline checks the client side: an LBS that never answers
// makes Authenticate fail with the context's deadline, its conn closed.
func TestClientDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err == nil {
			accepted <- nc
		}
		close(accepted)
	}()
	c, _ := newClient(t, ln.Addr().String(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = c.Authenticate(ctx, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Authenticate against a silent LBS = %v, want DeadlineExceeded", err)
	}
	nc := <-accepted
	if nc == nil {
		t.Fatal("no connection")
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, nc); err != nil && !isReset(err) {
		t.Fatalf("server side read = %v, want EOF: the client closed its conn", err)
	}
}

func TestBusy(t *testing.T) {
	s := startLBS(t, LBSConfig{MaxConns: 1})
	hold, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	// Wait until the held connection occupies the only slot.
	for range 500 {
		if len(s.lbs.sem) == 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	c, _ := newClient(t, s.addr, nil)
	_, err = c.Authenticate(testCtx(t), nil)
	var se *osap.StatusError
	if !errors.As(err, &se) || se.Status != osap.StatusBusy || se.RetryAfter != time.Second {
		t.Fatalf("Authenticate on a full LBS = %v, want status 5 retry after 1s", err)
	}
	s.logs.waitLog(t, "authentication refused", 5)
}

func TestLoadBalancing(t *testing.T) {
	a, b := &fakeDAS{url: "mqtt://127.0.0.1:1", n: 5}, &fakeDAS{url: "mqtt://127.0.0.1:2", n: 2}
	s := startLBS(t, LBSConfig{DAS: []AccessService{a, b}})
	c, _ := newClient(t, s.addr, nil)
	ctx := testCtx(t)
	cr, err := c.Authenticate(ctx, nil)
	if err != nil || cr.DASAddress != b.url {
		t.Fatalf("Authenticate = %q, %v, want the DAS with fewer devices %q", cr.DASAddress, err, b.url)
	}
	b.n = 5 // tie: the first
	cr, err = c.Authenticate(ctx, &cr)
	if err != nil || cr.DASAddress != a.url {
		t.Fatalf("re-Authenticate = %q, %v, want the first of the tied %q", cr.DASAddress, err, a.url)
	}
}

func TestServeStopsWithOpenConnections(t *testing.T) {
	reg, _ := NewRegistry("")
	l := NewLBS(LBSConfig{Registry: reg, ReadTimeout: time.Hour, Logger: slog.New(&logRecorder{})})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Serve(ctx, ln) }()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.Write([]byte{0x11})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after ctx ended with a connection open")
	}
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("Read = %v, want the LBS to have closed", err)
	}
}

func TestLoadRegistry(t *testing.T) {
	tests := []struct {
		name    string
		toml    string
		wantErr string
	}{
		{name: "good", toml: "[[device]]\nserial = \"GW1\"\nverification_code = \"ABCDEF\"\n[[device]]\nserial = \"GW2\"\nverification_code = \"123456\"\n"},
		{name: "unknown key", toml: "[[device]]\nserial = \"GW1\"\nverification_code = \"ABCDEF\"\ncolour = \"red\"\n", wantErr: "device.colour"},
		{name: "short code", toml: "[[device]]\nserial = \"GW1\"\nverification_code = \"ABC\"\n", wantErr: `device "GW1": verification_code has 3 characters`},
		{name: "duplicate", toml: "[[device]]\nserial = \"GW1\"\nverification_code = \"ABCDEF\"\n[[device]]\nserial = \"GW1\"\nverification_code = \"ABCDEF\"\n", wantErr: "listed twice"},
		{name: "no serial", toml: "[[device]]\nverification_code = \"ABCDEF\"\n", wantErr: "device 1: no serial"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "devices.toml")
			if err := writeFile(p, tt.toml); err != nil {
				t.Fatal(err)
			}
			r, err := LoadRegistry(p, filepath.Join(dir, "state.json"))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("LoadRegistry = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || r.Len() != 2 {
				t.Fatalf("LoadRegistry = %v, %v", r, err)
			}
			if _, ok := r.shareKey("GW2", ""); !ok {
				t.Errorf("GW2 not registered")
			}
		})
	}
}

func TestSessionKeysDropExpiredPrevious(t *testing.T) {
	reg, _ := NewRegistry("")
	reg.Add("GW1", "ABCDEF")
	now := time.Unix(1764150000, 0)
	reg.now = func() time.Time { return now }
	id, err := reg.devIDFor("GW1")
	if err != nil {
		t.Fatal(err)
	}
	k1, k2 := []byte("k1k1k1k1k1k1k1k1"), []byte("k2k2k2k2k2k2k2k2")
	if err := reg.confirm("GW1", id, make([]byte, 16), osap.SuiteAESGCM, osap.DeviceInfo{}, k1, time.Hour); err != nil {
		t.Fatal(err)
	}
	now = now.Add(50 * time.Minute)
	if err := reg.refresh(id, k2, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, keys, _ := reg.SessionKeys(id); len(keys) != 2 {
		t.Fatalf("SessionKeys 50 min in = %d keys, want 2", len(keys))
	}
	now = now.Add(11 * time.Minute) // k1 issued 61 min ago with 1 h
	if _, keys, _ := reg.SessionKeys(id); len(keys) != 1 || string(keys[0]) != string(k2) {
		t.Fatalf("SessionKeys after k1 expired = %q, want [k2]", keys)
	}
	if _, _, err := reg.SessionKeys("nobody"); !errors.Is(err, ErrUnknownDevice) {
		t.Errorf("SessionKeys(unknown) = %v, want ErrUnknownDevice", err)
	}
}

func writeFile(p, s string) error { return os.WriteFile(p, []byte(s), 0o600) }

// TestApplyCfmNotVerifying runs first authentication by hand up to 0x8 and
// sends a 0x9 sealed with the wrong key: the LBS closes without answering
// and records nothing.
func TestApplyCfmNotVerifying(t *testing.T) {
	s := startLBS(t, LBSConfig{})
	nc, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(nc)
	recv := func() *osap.Frame {
		t.Helper()
		raw, err := osap.ReadFrame(r)
		if err != nil {
			t.Fatal(err)
		}
		f, err := osap.DecodeFrame(raw)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	share := osap.ShareKey("ABCDEF", "GW1", "")
	priv, err := osap.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, osap.NonceSize)
	b, _ := osap.AuthReq{Serial: "GW1", PublicKey: priv.PublicKey().Bytes(), Nonce: nonce}.Encode(1, osap.DefaultSuites, share)
	nc.Write(b)
	f := recv()
	shareC, _ := osap.NewCipher(osap.SuiteAESGCM, share)
	rsp, err := osap.DecodeAuthRsp(f, shareC)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := osap.ParsePublicKey(rsp.PublicKey)
	master, _ := osap.MasterKey(priv, pub, nonce, rsp.Nonce)
	masterC, _ := osap.NewCipher(osap.SuiteAESGCM, master)
	b, _ = osap.ApplyReq{Serial: "GW1", Nonce: nonce}.Encode(2, masterC, rand.Reader)
	nc.Write(b)
	apply, err := osap.DecodeApplyRsp(recv(), masterC)
	if err != nil {
		t.Fatal(err)
	}
	wrongC, _ := osap.NewCipher(osap.SuiteAESGCM, master) // the master key, not the session key
	b, _ = osap.ApplyCfm{DevID: apply.DevID, Nonce: nonce}.Encode(3, wrongC, rand.Reader)
	nc.Write(b)
	if _, err := r.ReadByte(); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("after a 0x9 that does not verify: %v, want the LBS to close without a response", err)
	}
	s.logs.waitLog(t, "authentication refused", 2)
	if _, _, err := s.reg.SessionKeys(apply.DevID); !errors.Is(err, ErrUnknownDevice) {
		t.Errorf("SessionKeys after a refused 0x9 = %v, want ErrUnknownDevice", err)
	}
}

// TestBadMACWireBytes: the LBS answers a 0x1 whose MAC does not verify
// with the frame docs/protocol.md shows (osap/testdata/golden.json's
// "0x2 status 2 (bad MAC of 0x1, ...)"): status 2 and its message, on the
// suite it chose, then closes.
func TestBadMACWireBytes(t *testing.T) {
	s := startLBS(t, LBSConfig{})
	req, err := osap.AuthReq{Serial: "GW1", PublicKey: make([]byte, osap.PublicKeySize), Nonce: make([]byte, osap.NonceSize)}.Encode(1, osap.DefaultSuites, make([]byte, osap.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write(req); err != nil {
		t.Fatal(err)
	}
	raw, err := osap.ReadFrame(bufio.NewReader(nc))
	if err != nil {
		t.Fatalf("no response from the LBS: %v", err)
	}
	const want = "212301080001001d010006070001020800134d414320646f6573206e6f7420766572696679"
	if got := hex.EncodeToString(raw); got != want {
		t.Fatalf("response to a bad MAC = %s, want %s", got, want)
	}
}
