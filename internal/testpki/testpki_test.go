package testpki

import (
	"crypto/x509"
	"testing"
)

func TestServer(t *testing.T) {
	cert, pool := Server(t)
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.1"}); err != nil {
		t.Errorf("Verify(own pool) = %v, want nil", err)
	}
	_, other := Server(t)
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: other, DNSName: "127.0.0.1"}); err == nil {
		t.Error("Verify(another call's pool) = nil, want an error")
	}
}
