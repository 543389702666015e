package soap

import (
	"encoding/base64"
	"strings"
	"testing"
)

// The examples of RFC 7616, section 3.9.1.
func TestDigestRFC7616(t *testing.T) {
	tests := []struct {
		alg  string
		want string
	}{
		{"MD5", "8ca523f5e9506fed4657c9700eebdbec"},
		{"SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			ch := &challenge{realm: "http-auth@example.org", nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque: "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS", algorithm: tt.alg, qop: true}
			h := ch.authorization("GET", "/dir/index.html", "Mufasa", "Circle of Life", 1, "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")
			if !strings.Contains(h, `response="`+tt.want+`"`) || !strings.Contains(h, "nc=00000001") || !strings.Contains(h, "qop=auth") {
				t.Errorf("authorization = %s, want response %s", h, tt.want)
			}
			if got := DigestResponse(tt.alg, "Mufasa", "http-auth@example.org", "Circle of Life", "GET", "/dir/index.html", ch.nonce, "00000001", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", "auth"); got != tt.want {
				t.Errorf("DigestResponse = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestParseChallenges(t *testing.T) {
	tests := []struct {
		name      string
		values    []string
		wantAlg   string // "" for no digest
		wantQop   bool
		wantBasic bool
	}{
		{name: "md5 default", values: []string{`Digest realm="r", nonce="n", qop="auth"`}, wantAlg: "MD5", wantQop: true},
		{name: "sha256 preferred across headers", values: []string{`Digest realm="r", nonce="n", algorithm=MD5`, `Digest realm="r", nonce="m", algorithm=SHA-256, qop="auth"`}, wantAlg: "SHA-256", wantQop: true},
		{name: "basic only", values: []string{`Basic realm="cam"`}, wantBasic: true},
		{name: "unknown algorithm skipped", values: []string{`Digest realm="r", nonce="n", algorithm=SHA-512-256`}},
		{name: "no nonce", values: []string{`Digest realm="r"`}},
		{name: "auth-int only", values: []string{`Digest realm="r", nonce="n", qop="auth-int"`}, wantAlg: "MD5"},
		{name: "escaped quote", values: []string{`Digest realm="a \"b\"", nonce="n"`}, wantAlg: "MD5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch, basic := parseChallenges(tt.values)
			alg := ""
			if ch != nil {
				alg = ch.algorithm
			}
			if alg != tt.wantAlg || basic != tt.wantBasic || ch != nil && ch.qop != tt.wantQop {
				t.Errorf("parseChallenges(%q) = %+v, %v; want alg %q qop %v basic %v", tt.values, ch, basic, tt.wantAlg, tt.wantQop, tt.wantBasic)
			}
		})
	}
}

// A widely published WS-Security UsernameToken example.
func TestPasswordDigest(t *testing.T) {
	nonce, _ := base64.StdEncoding.DecodeString("LKqI6G/AikKCQrN0zqZFlg==")
	if got := PasswordDigest(nonce, "2010-09-16T07:50:45Z", "userpassword"); got != "tuOSpGlFlIXsozq4HFNeeGeFLEI=" {
		t.Errorf("PasswordDigest = %s", got)
	}
}

func FuzzParseChallenges(f *testing.F) {
	f.Add(`Digest realm="a, b", nonce="n", qop="auth", Basic realm="x"`)
	f.Fuzz(func(t *testing.T, v string) {
		ch, _ := parseChallenges([]string{v})
		if ch != nil && ch.nonce == "" {
			t.Fatalf("challenge without nonce accepted from %q", v)
		}
	})
}
