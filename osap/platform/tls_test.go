package platform

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/osapgw/osapgw/osap"
)

// lbsTestCert returns a server certificate for 127.0.0.1 and a pool
// trusting it.
func lbsTestCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lbs"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func TestOverTLS(t *testing.T) {
	cert, pool := lbsTestCert(t)
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
