package soap

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"
	"time"
)

// challenge is a parsed HTTP Digest challenge (RFC 7616).
type challenge struct {
	realm, nonce, opaque, algorithm string
	qop                             bool // qop=auth offered
	stale                           bool
}

// parseChallenges reads WWW-Authenticate values and returns the best
// digest challenge (SHA-256 over MD5) and whether Basic is offered.
func parseChallenges(values []string) (*challenge, bool) {
	var best *challenge
	basic := false
	for _, v := range values {
		for _, one := range splitChallenges(v) {
			scheme, rest, _ := strings.Cut(strings.TrimSpace(one), " ")
			switch strings.ToLower(scheme) {
			case "basic":
				basic = true
			case "digest":
				p := parseParams(rest)
				ch := &challenge{realm: p["realm"], nonce: p["nonce"], opaque: p["opaque"], algorithm: p["algorithm"]}
				if ch.algorithm == "" {
					ch.algorithm = "MD5"
				}
				if _, ok := hashFor(ch.algorithm); !ok || ch.nonce == "" {
					continue
				}
				for _, q := range strings.Split(p["qop"], ",") {
					if strings.TrimSpace(q) == "auth" {
						ch.qop = true
					}
				}
				ch.stale = strings.EqualFold(p["stale"], "true")
				if best == nil || strings.HasPrefix(strings.ToUpper(ch.algorithm), "SHA-256") && !strings.HasPrefix(strings.ToUpper(best.algorithm), "SHA-256") {
					best = ch
				}
			}
		}
	}
	return best, basic
}

// splitChallenges splits a header value holding several challenges
// ("Digest a=1, b=2, Basic realm=x") at each scheme token.
func splitChallenges(v string) []string {
	var out []string
	start := 0
	inQuote := false
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '"':
			inQuote = !inQuote
		case ',':
			if inQuote {
				continue
			}
			rest := strings.TrimLeft(v[i+1:], " ")
			word, _, _ := strings.Cut(rest, " ")
			if w := strings.ToLower(word); (w == "digest" || w == "basic" || w == "bearer" || w == "negotiate") && !strings.Contains(word, "=") {
				out = append(out, v[start:i])
				start = i + 1
			}
		}
	}
	return append(out, v[start:])
}

// parseParams parses auth-params (k=v or k="v", comma separated).
func parseParams(s string) map[string]string {
	p := map[string]string{}
	for len(s) > 0 {
		s = strings.TrimLeft(s, " ,")
		k, rest, ok := strings.Cut(s, "=")
		if !ok {
			break
		}
		k = strings.ToLower(strings.TrimSpace(k))
		rest = strings.TrimLeft(rest, " ")
		var v string
		if strings.HasPrefix(rest, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(rest); i++ {
				if rest[i] == '\\' && i+1 < len(rest) {
					i++
					b.WriteByte(rest[i])
					continue
				}
				if rest[i] == '"' {
					break
				}
				b.WriteByte(rest[i])
			}
			v = b.String()
			if i < len(rest) {
				i++
			}
			s = rest[i:]
		} else {
			v, s, _ = strings.Cut(rest, ",")
			v = strings.TrimSpace(v)
		}
		p[k] = v
	}
	return p
}

func hashFor(alg string) (func() hash.Hash, bool) {
	switch strings.ToUpper(strings.TrimSuffix(strings.ToUpper(alg), "-SESS")) {
	case "MD5":
		return md5.New, true
	case "SHA-256":
		return sha256.New, true
	}
	return nil, false
}

func hexHash(h func() hash.Hash, s string) string {
	x := h()
	x.Write([]byte(s))
	return hex.EncodeToString(x.Sum(nil))
}

// authorization computes the Authorization header value for a request.
func (ch *challenge) authorization(method, uri, user, pass string, nc uint32, cnonce string) string {
	h, _ := hashFor(ch.algorithm)
	ha1 := hexHash(h, user+":"+ch.realm+":"+pass)
	if strings.HasSuffix(strings.ToUpper(ch.algorithm), "-SESS") {
		ha1 = hexHash(h, ha1+":"+ch.nonce+":"+cnonce)
	}
	ha2 := hexHash(h, method+":"+uri)
	ncs := fmt.Sprintf("%08x", nc)
	var resp string
	if ch.qop {
		resp = hexHash(h, ha1+":"+ch.nonce+":"+ncs+":"+cnonce+":auth:"+ha2)
	} else {
		resp = hexHash(h, ha1+":"+ch.nonce+":"+ha2)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `Digest username=%q, realm=%q, nonce=%q, uri=%q, algorithm=%s, response=%q`, user, ch.realm, ch.nonce, uri, ch.algorithm, resp)
	if ch.qop {
		fmt.Fprintf(&b, `, qop=auth, nc=%s, cnonce=%q`, ncs, cnonce)
	}
	if ch.opaque != "" {
		fmt.Fprintf(&b, `, opaque=%q`, ch.opaque)
	}
	return b.String()
}

// DigestResponse computes the response of RFC 7616 for a server that
// checks a request (the simulator uses it): alg is "MD5" or "SHA-256".
func DigestResponse(alg, user, realm, pass, method, uri, nonce, nc, cnonce, qop string) string {
	h, ok := hashFor(alg)
	if !ok {
		return ""
	}
	ha1 := hexHash(h, user+":"+realm+":"+pass)
	ha2 := hexHash(h, method+":"+uri)
	if qop == "" {
		return hexHash(h, ha1+":"+nonce+":"+ha2)
	}
	return hexHash(h, ha1+":"+nonce+":"+nc+":"+cnonce+":"+qop+":"+ha2)
}

// ParseAuthorization parses a Digest Authorization header's parameters
// (for servers); it returns nil when the header is not Digest.
func ParseAuthorization(v string) map[string]string {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(v), " ")
	if !strings.EqualFold(scheme, "digest") {
		return nil
	}
	return parseParams(rest)
}

// PasswordDigest computes WS-UsernameToken's digest:
// Base64(SHA-1(nonce ‖ created ‖ password)).
func PasswordDigest(nonce []byte, created, password string) string {
	h := sha1.New()
	h.Write(nonce)
	h.Write([]byte(created))
	h.Write([]byte(password))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// usernameToken returns the wsse:Security header.
func usernameToken(user, pass string, nonce []byte, created time.Time) string {
	c := created.UTC().Format("2006-01-02T15:04:05.000Z")
	var b strings.Builder
	b.WriteString(`<wsse:Security s:mustUnderstand="1" xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"><wsse:UsernameToken><wsse:Username>`)
	escape(&b, user)
	b.WriteString(`</wsse:Username><wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest">`)
	b.WriteString(PasswordDigest(nonce, c, pass))
	b.WriteString(`</wsse:Password><wsse:Nonce EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary">`)
	b.WriteString(base64.StdEncoding.EncodeToString(nonce))
	b.WriteString(`</wsse:Nonce><wsu:Created>` + c + `</wsu:Created></wsse:UsernameToken></wsse:Security>`)
	return b.String()
}

func escape(b *strings.Builder, s string) {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;")
	b.WriteString(r.Replace(s))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return b
}

func randomHex(n int) string { return hex.EncodeToString(randomBytes(n)) }

func uuid() string {
	b := randomBytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// UUID returns a random version 4 UUID (message ids, discovery probes).
func UUID() string { return uuid() }
