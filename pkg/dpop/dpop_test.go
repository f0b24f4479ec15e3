package dpop_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tollgate/tollgate/pkg/dpop"
)

var (
	now      = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	tokenURL = "https://auth.example.com/oauth/token"
)

// proofMaker signs proofs with one key.
type proofMaker struct {
	t   testing.TB
	key any // the private key
	alg jose.SignatureAlgorithm
	// header overrides the protected header's members.
	header map[jose.HeaderKey]any
	// jwk is the key embedded in the header (the public one by default).
	jwk *jose.JSONWebKey
}

func newMaker(t testing.TB) *proofMaker {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &proofMaker{t: t, key: k, alg: jose.ES256}
}

func (m *proofMaker) public() *jose.JSONWebKey {
	switch k := m.key.(type) {
	case *ecdsa.PrivateKey:
		return &jose.JSONWebKey{Key: &k.PublicKey}
	case *rsa.PrivateKey:
		return &jose.JSONWebKey{Key: &k.PublicKey}
	case ed25519.PrivateKey:
		return &jose.JSONWebKey{Key: k.Public()}
	}
	return nil
}

// make returns a proof of claims (iat, jti filled when absent).
func (m *proofMaker) make(claims map[string]any) string {
	m.t.Helper()
	if _, ok := claims["iat"]; !ok {
		claims["iat"] = now.Unix()
	}
	if _, ok := claims["jti"]; !ok {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		claims["jti"] = base64.RawURLEncoding.EncodeToString(b)
	}
	opts := (&jose.SignerOptions{}).WithType("dpop+jwt")
	jwk := m.jwk
	if jwk == nil {
		jwk = m.public()
	}
	opts = opts.WithHeader("jwk", jwk)
	for k, v := range m.header {
		opts = opts.WithHeader(k, v)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: m.alg, Key: m.key}, opts)
	if err != nil {
		m.t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		m.t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		m.t.Fatal(err)
	}
	return s
}

func newVerifier(t testing.TB) *dpop.Verifier {
	t.Helper()
	v, err := dpop.New(dpop.Options{Replay: dpop.NewMemory(0, func() time.Time { return now }), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVerifyAccepts(t *testing.T) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, ek, _ := ed25519.GenerateKey(rand.Reader)
	makers := map[string]*proofMaker{"ES256": newMaker(t), "RS256": {t: t, key: rk, alg: jose.RS256},
		"PS256": {t: t, key: rk, alg: jose.PS256}, "EdDSA": {t: t, key: ek, alg: jose.EdDSA}}
	for name, m := range makers {
		t.Run(name, func(t *testing.T) {
			v := newVerifier(t)
			proof := m.make(map[string]any{"htm": "POST", "htu": "https://AUTH.example.com:443/oauth/token?x=1#f"})
			jkt, err := v.Verify(t.Context(), proof, dpop.Request{Method: "POST", URL: tokenURL})
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			tp, _ := m.public().Thumbprint(0x5) // crypto.SHA256
			if want := base64.RawURLEncoding.EncodeToString(tp); jkt != want {
				t.Errorf("jkt = %q, want %q", jkt, want)
			}
		})
	}
}

// TestVerifyRefuses: every check of RFC 9449 §4.3 refuses a proof that
// breaks it, as ErrInvalid.
func TestVerifyRefuses(t *testing.T) {
	m := newMaker(t)
	good := func() map[string]any { return map[string]any{"htm": "GET", "htu": "https://api.example.com/v1/events"} }
	with := func(k string, v any) map[string]any { c := good(); c[k] = v; return c }
	without := func(k string) map[string]any { c := good(); delete(c, k); return c }
	req := dpop.Request{Method: "GET", URL: "https://api.example.com/v1/events?page=2", AccessToken: "tg_at_token"}
	ath := dpop.AccessTokenHash(req.AccessToken)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	hs := func() string {
		// HS256 with a symmetric jwk: the classic confusion.
		key := []byte("0123456789abcdef0123456789abcdef")
		opts := (&jose.SignerOptions{}).WithType("dpop+jwt").WithHeader("jwk", map[string]string{"kty": "oct", "k": base64.RawURLEncoding.EncodeToString(key)})
		s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: key}, opts)
		p, _ := json.Marshal(with("ath", ath))
		jws, _ := s.Sign(p)
		out, _ := jws.CompactSerialize()
		return out
	}
	none := func() string {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"typ":"dpop+jwt","alg":"none","jwk":` + mustJSON(m.public()) + `}`))
		p, _ := json.Marshal(with("ath", ath))
		return h + "." + base64.RawURLEncoding.EncodeToString(p) + "."
	}
	tampered := func() string {
		p := m.make(with("ath", ath))
		parts := strings.Split(p, ".")
		c, _ := json.Marshal(map[string]any{"htm": "GET", "htu": "https://api.example.com/v1/events", "ath": ath, "iat": now.Unix(), "jti": "x"})
		return parts[0] + "." + base64.RawURLEncoding.EncodeToString(c) + "." + parts[2]
	}
	cases := []struct {
		name  string
		proof func() string
	}{
		{"none", none},
		{"HS256", hs},
		{"private key in jwk", func() string {
			pm := *m
			pm.jwk = &jose.JSONWebKey{Key: m.key}
			return pm.make(with("ath", ath))
		}},
		{"another key's jwk", func() string {
			pm := *m
			pm.jwk = &jose.JSONWebKey{Key: &ek.PublicKey}
			return pm.make(with("ath", ath))
		}},
		{"RSA jwk, ES256 signature", func() string {
			pm := *m
			pm.jwk = &jose.JSONWebKey{Key: &rk.PublicKey}
			return pm.make(with("ath", ath))
		}},
		{"typ JWT", func() string {
			pm := *m
			pm.header = map[jose.HeaderKey]any{"typ": "JWT"}
			return pm.make(with("ath", ath))
		}},
		{"tampered claims", tampered},
		{"wrong htm", func() string { c := with("ath", ath); c["htm"] = "POST"; return m.make(c) }},
		{"lower-case htm", func() string { c := with("ath", ath); c["htm"] = "get"; return m.make(c) }},
		{"wrong htu path", func() string {
			c := with("ath", ath)
			c["htu"] = "https://api.example.com/v1/contacts"
			return m.make(c)
		}},
		{"wrong htu host", func() string {
			c := with("ath", ath)
			c["htu"] = "https://evil.example.com/v1/events"
			return m.make(c)
		}},
		{"wrong htu scheme", func() string { c := with("ath", ath); c["htu"] = "http://api.example.com/v1/events"; return m.make(c) }},
		{"htu relative", func() string { c := with("ath", ath); c["htu"] = "/v1/events"; return m.make(c) }},
		{"htu not a string", func() string { c := with("ath", ath); c["htu"] = 7; return m.make(c) }},
		{"no htm", func() string { c := without("htm"); c["ath"] = ath; return m.make(c) }},
		{"no htu", func() string { c := without("htu"); c["ath"] = ath; return m.make(c) }},
		{"no jti", func() string { c := with("ath", ath); c["jti"] = ""; return m.make(c) }},
		{"long jti", func() string { c := with("ath", ath); c["jti"] = strings.Repeat("j", 257); return m.make(c) }},
		{"stale iat", func() string { c := with("ath", ath); c["iat"] = now.Add(-61 * time.Second).Unix(); return m.make(c) }},
		{"future iat", func() string { c := with("ath", ath); c["iat"] = now.Add(11 * time.Second).Unix(); return m.make(c) }},
		{"iat a string", func() string { c := with("ath", ath); c["iat"] = "now"; return m.make(c) }},
		{"huge iat", func() string { c := with("ath", ath); c["iat"] = 1e300; return m.make(c) }},
		{"no ath", func() string { return m.make(good()) }},
		{"wrong ath", func() string { return m.make(with("ath", dpop.AccessTokenHash("another token"))) }},
		{"oversized", func() string { return m.make(with("ath", ath)) + strings.Repeat("A", dpop.MaxProofBytes) }},
		{"not a JWS", func() string { return "not.a.jws" }},
		{"JSON serialization", func() string { return `{"payload":"e30","signatures":[]}` }},
		{"empty", func() string { return "" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := newVerifier(t)
			_, err := v.Verify(t.Context(), tc.proof(), req)
			if !errors.Is(err, dpop.ErrInvalid) {
				t.Errorf("Verify = %v, want ErrInvalid", err)
			}
		})
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestVerifyRefusesReplay: a proof is good once, for any request it matches;
// another proof of the same key is good.
func TestVerifyRefusesReplay(t *testing.T) {
	m := newMaker(t)
	v := newVerifier(t)
	req := dpop.Request{Method: "POST", URL: tokenURL}
	proof := m.make(map[string]any{"htm": "POST", "htu": tokenURL, "jti": "once"})
	if _, err := v.Verify(t.Context(), proof, req); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if _, err := v.Verify(t.Context(), proof, req); !errors.Is(err, dpop.ErrInvalid) {
		t.Errorf("second use: %v, want ErrInvalid", err)
	}
	if _, err := v.Verify(t.Context(), m.make(map[string]any{"htm": "POST", "htu": tokenURL}), req); err != nil {
		t.Errorf("a new proof of the same key: %v", err)
	}
	// The same jti from another key is another proof.
	if _, err := v.Verify(t.Context(), newMaker(t).make(map[string]any{"htm": "POST", "htu": tokenURL, "jti": "once"}), req); err != nil {
		t.Errorf("the same jti from another key: %v", err)
	}
}

// TestVerifyWindowEdges: iat may be MaxAge old and MaxSkew ahead.
func TestVerifyWindowEdges(t *testing.T) {
	m := newMaker(t)
	req := dpop.Request{Method: "POST", URL: tokenURL}
	for _, d := range []time.Duration{-dpop.DefaultMaxAge, dpop.DefaultMaxSkew, 0} {
		v := newVerifier(t)
		if _, err := v.Verify(t.Context(), m.make(map[string]any{"htm": "POST", "htu": tokenURL, "iat": now.Add(d).Unix()}), req); err != nil {
			t.Errorf("iat now%+v: %v", d, err)
		}
	}
}

func TestNewRefusesSymmetricAlgorithms(t *testing.T) {
	for _, a := range []jose.SignatureAlgorithm{jose.HS256, "none", ""} {
		if _, err := dpop.New(dpop.Options{Algorithms: []jose.SignatureAlgorithm{a}, Replay: dpop.NewMemory(0, nil)}); err == nil {
			t.Errorf("New with %q: no error", a)
		}
	}
	if _, err := dpop.New(dpop.Options{}); err == nil {
		t.Error("New without a replay store: no error")
	}
}

func TestFromHeader(t *testing.T) {
	cases := []struct {
		name    string
		values  []string
		want    string
		invalid bool
	}{
		{"none", nil, "", false},
		{"one", []string{" a.b.c "}, "a.b.c", false},
		{"repeated", []string{"a.b.c", "d.e.f"}, "", true},
		{"empty", []string{" "}, "", true},
		{"oversized", []string{strings.Repeat("a", dpop.MaxProofBytes+1)}, "", true},
	}
	for _, tc := range cases {
		h := http.Header{}
		for _, v := range tc.values {
			h.Add("DPoP", v)
		}
		got, err := dpop.FromHeader(h)
		if got != tc.want || errors.Is(err, dpop.ErrInvalid) != tc.invalid {
			t.Errorf("%s: FromHeader = %q, %v", tc.name, got, err)
		}
	}
}

func TestNormalizeURL(t *testing.T) {
	cases := map[string]string{
		"HTTPS://Auth.Example.COM:443/oauth/token?x#y": "https://auth.example.com/oauth/token",
		"http://a.example:80":                          "http://a.example/",
		"http://a.example:8080/p":                      "http://a.example:8080/p",
		"https://[::1]:443/x":                          "https://[::1]/x",
		"HTTPS://[::1]:8443":                           "https://[::1]:8443/",
		"https://a.example/a%2Fb":                      "https://a.example/a%2Fb",
	}
	for in, want := range cases {
		if got, err := dpop.NormalizeURL(in); err != nil || got != want {
			t.Errorf("NormalizeURL(%q) = %q, %v, want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"/relative", "ftp://a.example/", "https://user@a.example/", "mailto:a@b", "https://", "http://:", "https://:443/"} {
		if got, err := dpop.NormalizeURL(bad); err == nil {
			t.Errorf("NormalizeURL(%q) = %q, want an error", bad, got)
		}
	}
}

func TestMemoryForgetsAndFills(t *testing.T) {
	at := now
	m := dpop.NewMemory(2, func() time.Time { return at })
	ctx := t.Context()
	for _, k := range []string{"a", "b"} {
		if ok, err := m.Fresh(ctx, k, time.Minute); !ok || err != nil {
			t.Fatalf("Fresh(%s) = %v, %v", k, ok, err)
		}
	}
	if ok, err := m.Fresh(ctx, "a", time.Minute); ok || err != nil {
		t.Errorf("Fresh(a) again = %v, %v, want false", ok, err)
	}
	if _, err := m.Fresh(ctx, "c", time.Minute); !errors.Is(err, dpop.ErrFull) {
		t.Errorf("Fresh(c) when full: %v, want ErrFull", err)
	}
	at = at.Add(time.Minute)
	if ok, err := m.Fresh(ctx, "a", time.Minute); !ok || err != nil {
		t.Errorf("Fresh(a) after it expired = %v, %v", ok, err)
	}
}

// TestVerifyRefusesAlgorithmsNotListed: a proof signed with an asymmetric
// algorithm the verifier was not given is refused.
func TestVerifyRefusesAlgorithmsNotListed(t *testing.T) {
	v, err := dpop.New(dpop.Options{Algorithms: []jose.SignatureAlgorithm{jose.ES256}, Replay: dpop.NewMemory(0, nil), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if got := v.Algorithms(); len(got) != 1 || got[0] != "ES256" {
		t.Errorf("Algorithms = %v, want [ES256]", got)
	}
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	m := &proofMaker{t: t, key: rk, alg: jose.RS256}
	if _, err := v.Verify(t.Context(), m.make(map[string]any{"htm": "POST", "htu": tokenURL}), dpop.Request{Method: "POST", URL: tokenURL}); !errors.Is(err, dpop.ErrInvalid) {
		t.Errorf("an RS256 proof to an ES256-only verifier: %v, want ErrInvalid", err)
	}
}
