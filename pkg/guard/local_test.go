package guard

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

const testIssuer = "https://tollgate.example"

// keyServer serves a JWK Set of public keys and counts its fetches.
type keyServer struct {
	mu      sync.Mutex
	set     jose.JSONWebKeySet
	status  int
	fetches atomic.Int32
	srv     *httptest.Server
}

func newKeyServer(t testing.TB, keys ...jose.JSONWebKey) *keyServer {
	t.Helper()
	ks := &keyServer{status: http.StatusOK}
	ks.set.Keys = keys
	ks.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		ks.fetches.Add(1)
		ks.mu.Lock()
		defer ks.mu.Unlock()
		if ks.status != http.StatusOK {
			w.WriteHeader(ks.status)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_ = json.NewEncoder(w).Encode(ks.set)
	}))
	t.Cleanup(ks.srv.Close)
	return ks
}

func (ks *keyServer) publish(keys ...jose.JSONWebKey) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.set.Keys = keys
}

func (ks *keyServer) fail(status int) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.status = status
}

// signingKey is a private key with the public JWK a JWK Set publishes.
type signingKey struct {
	private any
	alg     jose.SignatureAlgorithm
	kid     string
}

func newECKey(t testing.TB, kid string) signingKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{private: k, alg: jose.ES256, kid: kid}
}

func (k signingKey) public() jose.JSONWebKey {
	var pub any
	switch p := k.private.(type) {
	case *ecdsa.PrivateKey:
		pub = p.Public()
	case *rsa.PrivateKey:
		pub = p.Public()
	case ed25519.PrivateKey:
		pub = p.Public()
	}
	return jose.JSONWebKey{Key: pub, KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

// sign signs claims as Tollgate does, with typ in the header ("" for none).
func (k signingKey) sign(t testing.TB, typ string, claims map[string]any) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.private, KeyID: k.kid}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	v, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// goodClaims are the claims of a client's JWT access token issued at now.
func goodClaims(now time.Time) map[string]any {
	return map[string]any{
		"iss": testIssuer, "sub": "42", "aud": []string{testIssuer}, "exp": now.Add(5 * time.Minute).Unix(),
		"iat": now.Unix(), "jti": "j1", "client_id": "42", "scope": "events reports", "account_id": 7,
	}
}

func with(c map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(c))
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func newTestLocal(t testing.TB, ks *keyServer, now *time.Time, opts LocalOptions) *Local {
	t.Helper()
	opts.Issuer = testIssuer
	opts.JWKSURL = ks.srv.URL
	opts.HTTPClient = ks.srv.Client()
	opts.Now = func() time.Time { return *now }
	l, err := NewLocal(opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLocalVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	key := newECKey(t, "k1")
	other := newECKey(t, "k1") // the same kid, another key: a forger's
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rs := signingKey{private: rsaKey, alg: jose.RS256, kid: "r1"}
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ed := signingKey{private: edPriv, alg: jose.EdDSA, kid: "e1"}
	ks := newKeyServer(t, key.public(), rs.public(), ed.public())
	good := goodClaims(now)

	tampered := func() string {
		v := key.sign(t, "at+jwt", good)
		parts := strings.Split(v, ".")
		parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"` + testIssuer + `","sub":"1","exp":9999999999,"jti":"x","client_id":"1","scope":"admin","account_id":1}`))
		return strings.Join(parts, ".")
	}
	unsigned := func(alg string) string {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"` + alg + `","typ":"at+jwt","kid":"k1"}`))
		p, _ := json.Marshal(good)
		return h + "." + base64.RawURLEncoding.EncodeToString(p) + "."
	}
	hs256WithPublicKey := func() string {
		// The classic confusion: HMAC keyed with the public key's bytes.
		pub := key.public()
		secret, _ := pub.MarshalJSON()
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: jose.JSONWebKey{Key: secret, KeyID: "k1"}},
			(&jose.SignerOptions{}).WithType("at+jwt"))
		if err != nil {
			t.Fatal(err)
		}
		p, _ := json.Marshal(good)
		obj, err := s.Sign(p)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := obj.CompactSerialize()
		return v
	}
	wrongAlgForKey := func() string {
		// The ES256 key's kid, signed by RSA: the key's alg must match.
		r := signingKey{private: rsaKey, alg: jose.RS256, kid: "k1"}
		return r.sign(t, "at+jwt", good)
	}

	tests := []struct {
		name     string
		token    string
		audience string
		want     error
		id       Identity
	}{
		{name: "good ES256", token: key.sign(t, "at+jwt", good),
			id: Identity{ClientID: 42, AccountID: 7, Subject: "42", Scopes: []string{"events", "reports"}}},
		{name: "good RS256, user token", token: rs.sign(t, "at+jwt", with(good, "sub", "12", "username", "ann")),
			id: Identity{ClientID: 42, AccountID: 7, Subject: "12", Scopes: []string{"events", "reports"}}},
		{name: "good EdDSA, typ application/at+jwt", token: ed.sign(t, "application/at+jwt", with(good, "scope", nil)),
			id: Identity{ClientID: 42, AccountID: 7, Subject: "42", Scopes: []string{}}},
		{name: "no sub: the client", token: key.sign(t, "at+jwt", with(good, "sub", nil)),
			id: Identity{ClientID: 42, AccountID: 7, Subject: "42", Scopes: []string{"events", "reports"}}},
		{name: "audience wanted and held (array)", audience: testIssuer, token: key.sign(t, "at+jwt", good),
			id: Identity{ClientID: 42, AccountID: 7, Subject: "42", Scopes: []string{"events", "reports"}}},
		{name: "audience wanted and held (string)", audience: "https://api.example", token: key.sign(t, "at+jwt", with(good, "aud", "https://api.example")),
			id: Identity{ClientID: 42, AccountID: 7, Subject: "42", Scopes: []string{"events", "reports"}}},
		{name: "expired within the leeway", token: key.sign(t, "at+jwt", with(good, "exp", now.Add(-2*time.Second).Unix())),
			id: Identity{ClientID: 42, AccountID: 7, Subject: "42", Scopes: []string{"events", "reports"}}},

		{name: "expired", token: key.sign(t, "at+jwt", with(good, "exp", now.Add(-time.Minute).Unix())), want: ErrInvalidToken},
		{name: "no exp", token: key.sign(t, "at+jwt", with(good, "exp", nil)), want: ErrInvalidToken},
		{name: "issued in the future", token: key.sign(t, "at+jwt", with(good, "iat", now.Add(time.Minute).Unix())), want: ErrInvalidToken},
		{name: "not yet valid", token: key.sign(t, "at+jwt", with(good, "nbf", now.Add(time.Minute).Unix())), want: ErrInvalidToken},
		{name: "another issuer", token: key.sign(t, "at+jwt", with(good, "iss", "https://evil.example")), want: ErrInvalidToken},
		{name: "audience wanted, not held", audience: "https://api.example", token: key.sign(t, "at+jwt", good), want: ErrInvalidToken},
		{name: "audience wanted, malformed", audience: testIssuer, token: key.sign(t, "at+jwt", with(good, "aud", 5)), want: ErrInvalidToken},
		{name: "no typ", token: key.sign(t, "", good), want: ErrInvalidToken},
		{name: "typ JWT (an ID token, say)", token: key.sign(t, "JWT", good), want: ErrInvalidToken},
		{name: "signed by another key under the same kid", token: other.sign(t, "at+jwt", good), want: ErrInvalidToken},
		{name: "payload changed after signing", token: tampered(), want: ErrInvalidToken},
		{name: "alg none", token: unsigned("none"), want: ErrInvalidToken},
		{name: "HS256 keyed with the public key", token: hs256WithPublicKey(), want: ErrInvalidToken},
		{name: "RS256 under an ES256 key's kid", token: wrongAlgForKey(), want: ErrInvalidToken},
		{name: "no jti", token: key.sign(t, "at+jwt", with(good, "jti", nil)), want: ErrInvalidToken},
		{name: "no account", token: key.sign(t, "at+jwt", with(good, "account_id", nil)), want: ErrInvalidToken},
		{name: "client id not a number", token: key.sign(t, "at+jwt", with(good, "client_id", "x")), want: ErrInvalidToken},
		{name: "claims not JSON", token: func() string {
			s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key.private, KeyID: "k1"}}, (&jose.SignerOptions{}).WithType("at+jwt"))
			obj, _ := s.Sign([]byte("not json"))
			v, _ := obj.CompactSerialize()
			return v
		}(), want: ErrInvalidToken},
		{name: "bound to a DPoP key", token: key.sign(t, "at+jwt", with(good, "cnf", map[string]string{"jkt": "abc"})), want: ErrNotLocal},
		{name: "opaque token", token: "tg_at_abc.def", want: ErrNotLocal},
		{name: "API key", token: "tgk_1_abcdef", want: ErrNotLocal},
		{name: "oversized", token: strings.Repeat("a", maxLocalToken) + ".b.c", want: ErrNotLocal},
		{name: "three dots but garbage", token: "a.b.c", want: ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newTestLocal(t, ks, &now, LocalOptions{Audience: tt.audience})
			id, err := l.Verify(context.Background(), tt.token)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("Verify: %v, want %v", err, tt.want)
			}
			if tt.want == nil {
				b1, _ := json.Marshal(id)
				b2, _ := json.Marshal(tt.id)
				if string(b1) != string(b2) {
					t.Errorf("identity %s, want %s", b1, b2)
				}
			}
		})
	}
}

func TestLocalKeys(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	k1, k2 := newECKey(t, "k1"), newECKey(t, "k2")

	t.Run("a new key is fetched once, then at most once per MinRefill", func(t *testing.T) {
		ks := newKeyServer(t, k1.public())
		l := newTestLocal(t, ks, &now, LocalOptions{MinRefill: 10 * time.Second})
		if _, err := l.Verify(t.Context(), k1.sign(t, "at+jwt", goodClaims(now))); err != nil {
			t.Fatal(err)
		}
		// A token of a key not published: one fetch within MinRefill, however many tokens.
		for range 5 {
			if _, err := l.Verify(t.Context(), k2.sign(t, "at+jwt", goodClaims(now))); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("unknown key: %v, want ErrInvalidToken", err)
			}
		}
		if n := ks.fetches.Load(); n != 1 {
			t.Fatalf("%d fetches, want 1 (the unknown kid must not refetch within MinRefill)", n)
		}
		ks.publish(k1.public(), k2.public()) // a rotation publishes the next key
		later := now.Add(11 * time.Second)
		l.now = func() time.Time { return later }
		if _, err := l.Verify(t.Context(), k2.sign(t, "at+jwt", goodClaims(later))); err != nil {
			t.Fatalf("after MinRefill, the published key: %v", err)
		}
		if n := ks.fetches.Load(); n != 2 {
			t.Fatalf("%d fetches, want 2", n)
		}
		if _, err := l.Verify(t.Context(), k1.sign(t, "at+jwt", goodClaims(later))); err != nil {
			t.Fatal(err)
		}
		if n := ks.fetches.Load(); n != 2 {
			t.Fatalf("%d fetches after a known key, want 2", n)
		}
	})

	t.Run("a retired key stops verifying at the refresh", func(t *testing.T) {
		ks := newKeyServer(t, k1.public(), k2.public())
		clock := now
		l := newTestLocal(t, ks, &clock, LocalOptions{Refresh: time.Minute})
		if _, err := l.Verify(t.Context(), k1.sign(t, "at+jwt", goodClaims(clock))); err != nil {
			t.Fatal(err)
		}
		ks.publish(k2.public())
		clock = clock.Add(2 * time.Minute)
		if _, err := l.Verify(t.Context(), k1.sign(t, "at+jwt", goodClaims(clock))); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("retired key: %v, want ErrInvalidToken", err)
		}
	})

	t.Run("unavailable keys", func(t *testing.T) {
		ks := newKeyServer(t, k1.public())
		ks.fail(http.StatusInternalServerError)
		clock := now
		l := newTestLocal(t, ks, &clock, LocalOptions{Refresh: time.Minute})
		if _, err := l.Verify(t.Context(), k1.sign(t, "at+jwt", goodClaims(clock))); !errors.Is(err, ErrKeysUnavailable) {
			t.Fatalf("no JWK Set: %v, want ErrKeysUnavailable", err)
		}
		// Within MinRefill no new fetch; still unavailable.
		if _, err := l.Verify(t.Context(), k1.sign(t, "at+jwt", goodClaims(clock))); !errors.Is(err, ErrKeysUnavailable) {
			t.Fatalf("no JWK Set, again: %v, want ErrKeysUnavailable", err)
		}
		ks.fail(http.StatusOK)
		clock = clock.Add(time.Minute)
		if _, err := l.Verify(t.Context(), k1.sign(t, "at+jwt", goodClaims(clock))); err != nil {
			t.Fatalf("JWK Set back: %v", err)
		}
		// A known key stays good while the JWK Set cannot be fetched.
		ks.fail(http.StatusBadGateway)
		clock = clock.Add(2 * time.Minute)
		if _, err := l.Verify(t.Context(), k1.sign(t, "at+jwt", goodClaims(clock))); err != nil {
			t.Fatalf("known key, JWK Set down: %v", err)
		}
	})

	t.Run("only public signing keys with a kid are taken", func(t *testing.T) {
		priv := jose.JSONWebKey{Key: k2.private, KeyID: "k2", Algorithm: "ES256"} // a private key published by mistake
		enc := k1.public()
		enc.Use = "enc"
		oct := jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "k3", Algorithm: "HS256"}
		noKid := newECKey(t, "").public()
		ks := newKeyServer(t, priv, enc, oct, noKid)
		l := newTestLocal(t, ks, &now, LocalOptions{})
		for _, tok := range []string{k2.sign(t, "at+jwt", goodClaims(now)), k1.sign(t, "at+jwt", goodClaims(now))} {
			if _, err := l.Verify(t.Context(), tok); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("a key that is no public signing key: %v, want ErrInvalidToken", err)
			}
		}
	})

	t.Run("an oversized JWK Set is refused", func(t *testing.T) {
		big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"keys":[` + strings.Repeat(" ", maxJWKS) + `]}`))
		}))
		t.Cleanup(big.Close)
		l, err := NewLocal(LocalOptions{Issuer: testIssuer, JWKSURL: big.URL, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Verify(t.Context(), k1.sign(t, "at+jwt", goodClaims(now))); !errors.Is(err, ErrKeysUnavailable) {
			t.Fatalf("oversized JWK Set: %v, want ErrKeysUnavailable", err)
		}
	})
}

func TestNewLocalNeedsIssuer(t *testing.T) {
	if _, err := NewLocal(LocalOptions{}); err == nil {
		t.Fatal("NewLocal without an issuer succeeded")
	}
	l, err := NewLocal(LocalOptions{Issuer: testIssuer + "/"})
	if err != nil {
		t.Fatal(err)
	}
	if l.jwksURL != testIssuer+"/.well-known/jwks.json" {
		t.Errorf("default JWK Set URL %q", l.jwksURL)
	}
}

// TestProtectVerifyLocally: on a VerifyLocally route a good JWT needs no
// check, a bad one is refused at once, and everything Local cannot decide
// goes to the check endpoint.
func TestProtectVerifyLocally(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	key := newECKey(t, "k1")
	ks := newKeyServer(t, key.public())
	local := newTestLocal(t, ks, &now, LocalOptions{})
	check := &fakeCheck{answer: allow}
	cs := httptest.NewServer(check)
	t.Cleanup(cs.Close)
	g := New(Options{CheckURL: cs.URL, HTTPClient: cs.Client(), Local: local, CacheTTL: -1})
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := IdentityFrom(r.Context())
		_ = json.NewEncoder(w).Encode(id)
	})
	accountFromQuery := AccountFrom(func(r *http.Request) string { return r.URL.Query().Get("account") })
	localRoute := g.Protect(handler, Scopes("events"), VerifyLocally(), accountFromQuery)
	checkedRoute := g.Protect(handler, Scopes("events"), accountFromQuery)
	adminRoute := g.Protect(handler, Scopes("admin"), VerifyLocally())

	good := key.sign(t, "at+jwt", goodClaims(now))
	expired := key.sign(t, "at+jwt", with(goodClaims(now), "exp", now.Add(-time.Hour).Unix()))
	bound := key.sign(t, "at+jwt", with(goodClaims(now), "cnf", map[string]string{"jkt": "abc"}))
	tests := []struct {
		name      string
		route     http.Handler
		target    string
		header    []string
		status    int
		checked   bool
		challenge string
	}{
		{"good JWT: no round trip", localRoute, "/", []string{"Authorization", "Bearer " + good}, 200, false, ""},
		{"good JWT, its own account", localRoute, "/?account=7", []string{"Authorization", "bearer " + good}, 200, false, ""},
		{"good JWT, another account: the check decides", localRoute, "/?account=8", []string{"Authorization", "Bearer " + good}, 200, true, ""},
		{"good JWT, route not local", checkedRoute, "/", []string{"Authorization", "Bearer " + good}, 200, true, ""},
		{"expired JWT", localRoute, "/", []string{"Authorization", "Bearer " + expired}, 401, false, `Bearer realm="tollgate", error="invalid_token"`},
		{"scope missing", adminRoute, "/", []string{"Authorization", "Bearer " + good}, 403, false, `Bearer realm="tollgate", error="insufficient_scope", scope="admin"`},
		{"bound to a DPoP key", localRoute, "/", []string{"Authorization", "Bearer " + bound}, 200, true, ""},
		{"opaque token", localRoute, "/", []string{"Authorization", "Bearer tg_at_abc"}, 200, true, ""},
		{"API key", localRoute, "/", []string{"X-API-Key", "tgk_1_abc"}, 200, true, ""},
		{"JWT and an API key", localRoute, "/", []string{"Authorization", "Bearer " + good, "X-API-Key", "tgk_1_abc"}, 200, true, ""},
		{"Basic", localRoute, "/", []string{"Authorization", "Basic eDp5"}, 200, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := check.count()
			req := httptest.NewRequest(http.MethodGet, tt.target, nil)
			for i := 0; i+1 < len(tt.header); i += 2 {
				req.Header.Add(tt.header[i], tt.header[i+1])
			}
			w := httptest.NewRecorder()
			tt.route.ServeHTTP(w, req)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if got := check.count() > before; got != tt.checked {
				t.Errorf("check endpoint asked: %v, want %v", got, tt.checked)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tt.challenge)
			}
			if tt.status == 200 && !tt.checked {
				var id Identity
				if err := json.Unmarshal(w.Body.Bytes(), &id); err != nil || id.ClientID != 42 || id.AccountID != 7 {
					t.Errorf("identity %s (%v)", w.Body, err)
				}
			}
		})
	}

	t.Run("JWK Set unavailable: the check decides", func(t *testing.T) {
		ks2 := newKeyServer(t)
		ks2.fail(http.StatusServiceUnavailable)
		l2 := newTestLocal(t, ks2, &now, LocalOptions{})
		g2 := New(Options{CheckURL: cs.URL, HTTPClient: cs.Client(), Local: l2, CacheTTL: -1})
		before := check.count()
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Authorization", "Bearer "+good)
		w := httptest.NewRecorder()
		g2.Protect(handler, VerifyLocally()).ServeHTTP(w, req)
		if w.Code != 200 || check.count() != before+1 {
			t.Fatalf("status %d, checks %d → %d", w.Code, before, check.count())
		}
	})
}
