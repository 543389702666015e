package platform

import (
	"crypto/tls"
	"crypto/x509"
	"testing"

	"github.com/osapgw/osapgw/internal/testpki"
	"github.com/osapgw/osapgw/osap"
)

func TestOverTLS(t *testing.T) {
	cert, pool := testpki.Server(t)
	s := startLBS(t, LBSConfig{TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}})
	c, _ := newClient(t, s.addr, func(cfg *osap.ClientConfig) { cfg.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12} })
	ctx := testCtx(t)
	cr, err := c.Authenticate(ctx, nil)
	if err != nil {
		t.Fatalf("Authenticate over TLS = %v", err)
	}
	if _, err := c.Authenticate(ctx, &cr); err != nil {
		t.Fatalf("re-Authenticate over TLS = %v", err)
	}
	// A client that does not trust the certificate fails the handshake.
	bad, _ := newClient(t, s.addr, func(cfg *osap.ClientConfig) { cfg.TLS = &tls.Config{RootCAs: x509.NewCertPool()} })
	if _, err := bad.Authenticate(ctx, nil); err == nil {
		t.Fatal("Authenticate with an untrusted certificate succeeded")
	}
	s.logs.waitLog(t, "TLS handshake failed", -1)
}
