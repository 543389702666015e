package osap

import (
	"crypto/ecdh"
	"encoding/hex"
	"testing"
)

func TestShareKeyCheckValues(t *testing.T) {
	tests := []struct {
		code, serial, want string
	}{
		{"ABCDEF", "GW2026A0001", "51231b58b1c91164df40a9f297b102e2"},
		{"123456", "DS-2CD2T47G2", "8a7c161070d689f032de7dbb9960d2c0"},
		{"Zz9-ü", "sérial", "dddaee28c14ad15ef9459b66208e5378"},
	}
	for _, tt := range tests {
		if got := hex.EncodeToString(ShareKey(tt.code, tt.serial, "")); got != tt.want {
			t.Errorf("ShareKey(%q, %q) = %s, want %s", tt.code, tt.serial, got, tt.want)
		}
	}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMasterKeyCheckValue(t *testing.T) {
	dev, err := ecdh.P384().NewPrivateKey(mustHex(t, "798d897d0c3a79759b0f5ceba243adaea41e8898ffddd67a55104bbe0500cdbdf70dd9a701d7338813fc46dd33b2e570"))
	if err != nil {
		t.Fatal(err)
	}
	lbs, err := ecdh.P384().NewPrivateKey(mustHex(t, "eb56bc21152819181e7228395ff731bb974cd49b365d70c7c3b8189d17058bd4a45ebdf60b8fce829e4561520d6cf901"))
	if err != nil {
		t.Fatal(err)
	}
	nd := mustHex(t, "0f511f174e17b07141319657bef87134")
	nl := mustHex(t, "7cef0c57a14f25e73aa2402a8562e29f")
	const want = "9fb75181f08bcca5faa412342605e56a"
	// The LBS side parses the device's public key off the wire, and the other way round.
	devPub, err := ParsePublicKey(dev.PublicKey().Bytes())
	if err != nil {
		t.Fatal(err)
	}
	lbsPub, err := ParsePublicKey(lbs.PublicKey().Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func() ([]byte, error){
		"device": func() ([]byte, error) { return MasterKey(dev, lbsPub, nd, nl) },
		"lbs":    func() ([]byte, error) { return MasterKey(lbs, devPub, nd, nl) },
	} {
		got, err := f()
		if err != nil {
			t.Fatalf("%s: MasterKey: %v", name, err)
		}
		if hex.EncodeToString(got) != want {
			t.Errorf("%s: MasterKey = %x, want %s", name, got, want)
		}
	}
	if len(dev.PublicKey().Bytes()) != PublicKeySize {
		t.Errorf("public key is %d bytes, want %d", len(dev.PublicKey().Bytes()), PublicKeySize)
	}
}
