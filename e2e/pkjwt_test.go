package e2e

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/storage"
)

const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// clientKey is a private_key_jwt client's signing key.
type clientKey struct {
	priv crypto.Signer
	alg  jose.SignatureAlgorithm
	kid  string
}

func newClientKey(t *testing.T, alg jose.SignatureAlgorithm, kid string) clientKey {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch alg {
	case jose.RS256, jose.PS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	return clientKey{priv: priv, alg: alg, kid: kid}
}

// set returns the public JWK Set of keys, as JSON.
func keySet(t *testing.T, keys ...clientKey) string {
	t.Helper()
	var set jose.JSONWebKeySet
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sign signs claims as a compact JWS with k.
func (k clientKey) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if k.kid != "" {
		opts = opts.WithHeader("kid", k.kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.priv}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

// claimsFor are good assertion claims of client id at the fixture's clock.
func (f *fixture) claimsFor(id int64) map[string]any {
	sub := strconv.FormatInt(id, 10)
	now := f.clock.now()
	return map[string]any{"iss": sub, "sub": sub, "aud": f.cfg.Issuer, "iat": now.Unix(),
		"exp": now.Add(time.Minute).Unix(), "jti": rand.Text()}
}

func set(c map[string]any, kv ...any) map[string]any {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

// tokenWithAssertion asks for a client_credentials token with assertion.
func (f *fixture) tokenWithAssertion(assertion string, extra ...string) response {
	f.t.Helper()
	// An assertion is a credential until it expires: none may reach a log.
	if len(assertion) > 40 {
		f.secrets = append(f.secrets, assertion)
	}
	return f.post("/oauth/token", formCT, form(append([]string{"grant_type", "client_credentials",
		"client_assertion_type", assertionType, "client_assertion", assertion}, extra...)...))
}

// pkjwtClient stores a private_key_jwt client with inline keys.
func (f *fixture) pkjwtClient(name string, jwks string, mod ...func(*storage.Client)) storage.Client {
	f.t.Helper()
	c := storage.Client{AccountID: f.root.ID, Name: name, GrantTypes: []string{"client_credentials"}, Scopes: []string{"read"},
		TokenEndpointAuthMethod: storage.AuthPrivateKeyJWT, JWKS: jwks}
	for _, m := range mod {
		m(&c)
	}
	return f.client(c)
}

// TestPrivateKeyJWT: a client registered with public keys gets tokens with
// signed assertions (RS256, PS256, ES256, EdDSA), at the token endpoint,
// introspection and revocation; every hostile assertion is invalid_client.
func TestPrivateKeyJWT(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		es := newClientKey(t, jose.ES256, "es")
		c := f.pkjwtClient("pkjwt", keySet(t, es, newClientKey(t, jose.RS256, "rs")))

		t.Run("algorithms", func(t *testing.T) {
			for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA} {
				k := newClientKey(t, alg, "k-"+string(alg))
				cl := f.pkjwtClient("pkjwt "+string(alg), keySet(t, k))
				res := f.tokenWithAssertion(k.sign(t, f.claimsFor(cl.ID)), "scope", "read")
				if res.status != http.StatusOK {
					t.Fatalf("%s: status %d, body %s", alg, res.status, res.body)
				}
				if !f.active(res.json(t)["access_token"].(string)) {
					t.Fatalf("%s: the token is not active", alg)
				}
			}
		})

		t.Run("aud is the issuer or the token endpoint", func(t *testing.T) {
			for _, aud := range []any{f.cfg.Issuer, f.cfg.Issuer + "/oauth/token", []string{"https://other.example", f.cfg.Issuer}} {
				res := f.tokenWithAssertion(es.sign(t, set(f.claimsFor(c.ID), "aud", aud)), "client_id", strconv.FormatInt(c.ID, 10))
				if res.status != http.StatusOK {
					t.Fatalf("aud %v: status %d, body %s", aud, res.status, res.body)
				}
			}
		})

		t.Run("hostile", func(t *testing.T) {
			other := newClientKey(t, jose.ES256, "es") // same kid, not registered
			id := strconv.FormatInt(c.ID, 10)
			b64 := base64.RawURLEncoding.EncodeToString
			claims, _ := json.Marshal(f.claimsFor(c.ID))
			none := b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64(claims) + "."
			hsSigner, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(keySet(t, es))}, nil)
			hsJWS, _ := hsSigner.Sign(claims)
			hs, _ := hsJWS.CompactSerialize()
			now := f.clock.now()
			replayed := es.sign(t, f.claimsFor(c.ID))
			if res := f.tokenWithAssertion(replayed); res.status != http.StatusOK {
				t.Fatalf("first use: status %d, body %s", res.status, res.body)
			}
			for _, tc := range []struct{ name, assertion string }{
				{"alg none", none},
				{"HS256 keyed with the public JWK Set", hs},
				{"unregistered key", other.sign(t, f.claimsFor(c.ID))},
				{"unknown kid", newClientKey(t, jose.ES256, "nope").sign(t, f.claimsFor(c.ID))},
				{"wrong aud", es.sign(t, set(f.claimsFor(c.ID), "aud", "https://evil.example"))},
				{"wrong iss", es.sign(t, set(f.claimsFor(c.ID), "iss", strconv.FormatInt(f.cc.ID, 10)))},
				{"sub is another client", es.sign(t, set(f.claimsFor(f.cc.ID)))},
				{"expired", es.sign(t, set(f.claimsFor(c.ID), "exp", now.Add(-time.Minute).Unix()))},
				{"exp an hour ahead", es.sign(t, set(f.claimsFor(c.ID), "exp", now.Add(time.Hour).Unix()))},
				{"no exp", es.sign(t, set(f.claimsFor(c.ID), "exp", nil))},
				{"future iat", es.sign(t, set(f.claimsFor(c.ID), "iat", now.Add(10*time.Minute).Unix()))},
				{"no jti", es.sign(t, set(f.claimsFor(c.ID), "jti", nil))},
				{"replayed jti", replayed},
				{"oversized", es.sign(t, set(f.claimsFor(c.ID), "pad", strings.Repeat("x", 9000)))},
				{"garbage", "a.b.c"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					wantError(t, f.tokenWithAssertion(tc.assertion), http.StatusUnauthorized, "invalid_client")
				})
			}
			t.Run("wrong type", func(t *testing.T) {
				wantError(t, f.post("/oauth/token", formCT, form("grant_type", "client_credentials", "client_assertion_type", "urn:x",
					"client_assertion", es.sign(t, f.claimsFor(c.ID)))), http.StatusUnauthorized, "invalid_client")
			})
			t.Run("assertion without type", func(t *testing.T) {
				wantError(t, f.post("/oauth/token", formCT, form("grant_type", "client_credentials",
					"client_assertion", es.sign(t, f.claimsFor(c.ID)))), http.StatusBadRequest, "invalid_request")
			})
			t.Run("assertion and Basic", func(t *testing.T) {
				wantError(t, f.post("/oauth/token", formCT, form("grant_type", "client_credentials", "client_assertion_type", assertionType,
					"client_assertion", es.sign(t, f.claimsFor(c.ID))), "Authorization", basic(c.ID, f.secretOf[c.ID])), http.StatusBadRequest, "invalid_request")
			})
			t.Run("client_id of another client", func(t *testing.T) {
				wantError(t, f.tokenWithAssertion(es.sign(t, f.claimsFor(c.ID)), "client_id", strconv.FormatInt(f.cc.ID, 10)), http.StatusBadRequest, "invalid_request")
			})
			t.Run("secret of a private_key_jwt client", func(t *testing.T) {
				wantError(t, f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basic(c.ID, f.secretOf[c.ID])),
					http.StatusUnauthorized, "invalid_client")
				wantError(t, f.post("/oauth/token", formCT, form("grant_type", "client_credentials", "client_id", id, "client_secret", f.secretOf[c.ID])),
					http.StatusUnauthorized, "invalid_client")
			})
			t.Run("assertion of a client_secret client", func(t *testing.T) {
				// f.cc has no keys: even a well-formed assertion naming it
				// is refused.
				wantError(t, f.tokenWithAssertion(es.sign(t, f.claimsFor(f.cc.ID))), http.StatusUnauthorized, "invalid_client")
			})
			t.Run("assertion of a client_secret client that has keys", func(t *testing.T) {
				// Keys left on a record whose method is a secret (written
				// behind the management API's back) are no credential.
				k := newClientKey(t, jose.EdDSA, "s")
				sc := f.pkjwtClient("secret with keys", keySet(t, k), func(c *storage.Client) { c.TokenEndpointAuthMethod = storage.AuthSecretBasic })
				wantError(t, f.tokenWithAssertion(k.sign(t, f.claimsFor(sc.ID))), http.StatusUnauthorized, "invalid_client")
			})
			t.Run("disabled client", func(t *testing.T) {
				k := newClientKey(t, jose.EdDSA, "d")
				off := f.pkjwtClient("pkjwt off", keySet(t, k), func(c *storage.Client) { c.Status = storage.StatusDisabled })
				wantError(t, f.tokenWithAssertion(k.sign(t, f.claimsFor(off.ID))), http.StatusUnauthorized, "invalid_client")
			})
		})

		t.Run("introspection and revocation", func(t *testing.T) {
			k := newClientKey(t, jose.EdDSA, "rs")
			rs := f.pkjwtClient("pkjwt resource server", keySet(t, k), func(c *storage.Client) { c.MayIntrospect = true })
			tok := f.tokenCC(f.cc)
			res := f.post("/oauth/introspect", formCT, form("token", tok, "client_assertion_type", assertionType, "client_assertion", k.sign(t, f.claimsFor(rs.ID))))
			if res.status != http.StatusOK || res.json(t)["active"] != true {
				t.Fatalf("introspect with an assertion: status %d, body %s", res.status, res.body)
			}
			wantError(t, f.post("/oauth/introspect", formCT, form("token", tok, "client_assertion_type", assertionType,
				"client_assertion", k.sign(t, set(f.claimsFor(rs.ID), "aud", "https://evil.example")))), http.StatusUnauthorized, "invalid_client")

			own := f.tokenWithAssertion(es.sign(t, f.claimsFor(c.ID)))
			if own.status != http.StatusOK {
				t.Fatalf("token: status %d, body %s", own.status, own.body)
			}
			ownTok := own.json(t)["access_token"].(string)
			bad := f.post("/oauth/revoke", formCT, form("token", ownTok, "client_assertion_type", assertionType,
				"client_assertion", es.sign(t, set(f.claimsFor(c.ID), "exp", f.clock.now().Add(-time.Hour).Unix()))))
			wantError(t, bad, http.StatusUnauthorized, "invalid_client")
			if !f.active(ownTok) {
				t.Fatal("a refused revocation revoked the token")
			}
			rev := f.post("/oauth/revoke", formCT, form("token", ownTok, "client_assertion_type", assertionType, "client_assertion", es.sign(t, f.claimsFor(c.ID))))
			if rev.status != http.StatusOK {
				t.Fatalf("revoke with an assertion: status %d, body %s", rev.status, rev.body)
			}
			if f.active(ownTok) {
				t.Fatal("the revoked token is still active")
			}
		})

		t.Run("replay after expiry of the remembered jti", func(t *testing.T) {
			// A jti is remembered until its assertion expires; after that the
			// assertion itself is expired.
			a := es.sign(t, f.claimsFor(c.ID))
			if res := f.tokenWithAssertion(a); res.status != http.StatusOK {
				t.Fatalf("status %d, body %s", res.status, res.body)
			}
			f.clock.advance(2 * time.Minute)
			wantError(t, f.tokenWithAssertion(a), http.StatusUnauthorized, "invalid_client")
		})
	}, manyFailures)
}

// manyFailures lets the hostile-input tests fail often without being held
// back; TestPrivateKeyJWTBruteForce tests the counting.
func manyFailures(c *config.Config) {
	c.BruteForce.Threshold, c.BruteForce.SourceThreshold = 1000, 1000
}

// keyServer serves a JWK Set at /jwks.json and counts requests; delay
// slows every answer.
type keyServer struct {
	srv   *httptest.Server
	body  atomic.Pointer[string]
	hits  atomic.Int32
	delay atomic.Int64
}

func newKeyServer(t *testing.T, jwks string) *keyServer {
	ks := &keyServer{}
	ks.body.Store(&jwks)
	ks.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ks.hits.Add(1)
		if d := time.Duration(ks.delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write([]byte(*ks.body.Load()))
	}))
	t.Cleanup(ks.srv.Close)
	return ks
}

func allowHTTPJWKS(c *config.Config) { c.Credentials.JWKSAllowHTTP = true }

// TestPrivateKeyJWTRemoteKeys: keys from a jwks_uri are fetched, cached,
// refetched on a new kid, and an unreachable or slow jwks_uri is
// invalid_client in bounded time.
func TestPrivateKeyJWTRemoteKeys(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		k1 := newClientKey(t, jose.ES256, "k1")
		ks := newKeyServer(t, keySet(t, k1))
		c := f.pkjwtClient("remote", "", func(c *storage.Client) { c.JWKSURI = ks.srv.URL + "/jwks.json" })
		for i := range 3 {
			if res := f.tokenWithAssertion(k1.sign(t, f.claimsFor(c.ID))); res.status != http.StatusOK {
				t.Fatalf("token %d: status %d, body %s", i, res.status, res.body)
			}
		}
		if got := ks.hits.Load(); got != 1 {
			t.Fatalf("fetches for 3 tokens: got %d, want 1 (cached)", got)
		}
		// The client rotates to k2: its first assertion refetches the set.
		k2 := newClientKey(t, jose.ES256, "k2")
		rotated := keySet(t, k2)
		ks.body.Store(&rotated)
		f.clock.advance(time.Minute)
		if res := f.tokenWithAssertion(k2.sign(t, f.claimsFor(c.ID))); res.status != http.StatusOK {
			t.Fatalf("token with the new key: status %d, body %s", res.status, res.body)
		}
		// Unknown kids do not make a fetch each.
		before := ks.hits.Load()
		for range 5 {
			wantError(t, f.tokenWithAssertion(newClientKey(t, jose.ES256, "x").sign(t, f.claimsFor(c.ID))), http.StatusUnauthorized, "invalid_client")
		}
		if got := ks.hits.Load() - before; got > 1 {
			t.Fatalf("fetches for 5 unknown kids: got %d, want at most 1", got)
		}

		t.Run("slow", func(t *testing.T) {
			k := newClientKey(t, jose.ES256, "s")
			slow := newKeyServer(t, keySet(t, k))
			slow.delay.Store(int64(10 * time.Second))
			sc := f.pkjwtClient("slow", "", func(c *storage.Client) { c.JWKSURI = slow.srv.URL + "/jwks.json" })
			start := time.Now()
			wantError(t, f.tokenWithAssertion(k.sign(t, f.claimsFor(sc.ID))), http.StatusUnauthorized, "invalid_client")
			if d := time.Since(start); d > 6*time.Second {
				t.Fatalf("a slow jwks_uri held the request %v", d)
			}
		})
		t.Run("unreachable", func(t *testing.T) {
			k := newClientKey(t, jose.ES256, "u")
			gone := newKeyServer(t, keySet(t, k))
			gone.srv.Close()
			uc := f.pkjwtClient("unreachable", "", func(c *storage.Client) { c.JWKSURI = gone.srv.URL + "/jwks.json" })
			wantError(t, f.tokenWithAssertion(k.sign(t, f.claimsFor(uc.ID))), http.StatusUnauthorized, "invalid_client")
		})
		t.Run("not a key set", func(t *testing.T) {
			k := newClientKey(t, jose.ES256, "n")
			bad := newKeyServer(t, `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`)
			bc := f.pkjwtClient("bad keys", "", func(c *storage.Client) { c.JWKSURI = bad.srv.URL + "/jwks.json" })
			wantError(t, f.tokenWithAssertion(k.sign(t, f.claimsFor(bc.ID))), http.StatusUnauthorized, "invalid_client")
		})
	}, allowHTTPJWKS)
}

// TestPrivateKeyJWTRefusesInternalJWKSURI: without jwks_allow_http a
// jwks_uri of a loopback or link-local host is refused at registration and,
// for a record that has one anyway, at fetch time: Tollgate never
// requests it.
func TestPrivateKeyJWTRefusesInternalJWKSURI(t *testing.T) {
	f := newFixture(t, "embedded")
	k := newClientKey(t, jose.ES256, "k")
	ks := newKeyServer(t, keySet(t, k))
	admin := f.admUser("alice")
	for _, uri := range []string{ks.srv.URL + "/jwks.json", "https://127.0.0.1/jwks.json", "https://169.254.169.254/latest/meta-data/",
		"https://[::1]/jwks", "https://localhost/jwks", "ftp://keys.example.com/jwks"} {
		res := f.admDo(t, admin, http.MethodPost, "/clients", admBody(map[string]any{"name": "internal", "grant_types": []string{"client_credentials"},
			"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": uri}))
		admProblem(t, res, http.StatusUnprocessableEntity, "jwks_uri")
	}
	// Stored behind the API's back (or before a setting changed).
	c := f.pkjwtClient("internal", "", func(c *storage.Client) { c.JWKSURI = ks.srv.URL + "/jwks.json" })
	wantError(t, f.tokenWithAssertion(k.sign(t, f.claimsFor(c.ID))), http.StatusUnauthorized, "invalid_client")
	meta := f.pkjwtClient("metadata", "", func(c *storage.Client) { c.JWKSURI = "https://169.254.169.254/latest/meta-data/" })
	wantError(t, f.tokenWithAssertion(k.sign(t, f.claimsFor(meta.ID))), http.StatusUnauthorized, "invalid_client")
	if got := ks.hits.Load(); got != 0 {
		t.Fatalf("the loopback jwks_uri was fetched %d times", got)
	}
}

// TestPrivateKeyJWTManagement: registration through the management API:
// keys validated, no secret shown or accepted, a switch back to a secret.
func TestPrivateKeyJWTManagement(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		admin := f.admUser("alice")
		k := newClientKey(t, jose.EdDSA, "k")
		var jwks map[string]any
		_ = json.Unmarshal([]byte(keySet(t, k)), &jwks)
		created := f.admWant(t, admin, http.MethodPost, "/clients", admBody(map[string]any{"name": "signer", "grant_types": []string{"client_credentials"},
			"token_endpoint_auth_method": "private_key_jwt", "jwks": jwks}), http.StatusCreated)
		if _, ok := created["client_secret"]; ok {
			t.Errorf("a private_key_jwt client was shown a secret: %v", created)
		}
		if created["token_endpoint_auth_method"] != "private_key_jwt" || created["jwks"] == nil {
			t.Errorf("created client = %v", created)
		}
		id := admID(t, created)
		if res := f.tokenWithAssertion(k.sign(t, f.claimsFor(id))); res.status != http.StatusOK {
			t.Fatalf("token: status %d, body %s", res.status, res.body)
		}
		path := admPath("/clients", id)
		got := f.admWant(t, admin, http.MethodGet, path, "", http.StatusOK)
		if got["token_endpoint_auth_method"] != "private_key_jwt" {
			t.Errorf("GET: token_endpoint_auth_method = %v", got["token_endpoint_auth_method"])
		}
		admProblem(t, f.admDo(t, admin, http.MethodPost, path+"/rotate", "{}"), http.StatusConflict)

		// Refused key sets.
		priv, _ := jose.JSONWebKey{Key: k.priv, KeyID: "p"}.MarshalJSON()
		for name, bad := range map[string]string{
			"private key":  `{"keys":[` + string(priv) + `]}`,
			"symmetric":    `{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0"}]}`,
			"alg none":     `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","alg":"none"}]}`,
			"not a set":    `"keys"`,
			"empty":        `{"keys":[]}`,
			"both sources": "",
		} {
			body := `{"name":"bad","token_endpoint_auth_method":"private_key_jwt","jwks":` + bad + `}`
			if name == "both sources" {
				body = `{"name":"bad","token_endpoint_auth_method":"private_key_jwt","jwks":` + keySet(t, k) + `,"jwks_uri":"https://keys.example.com/jwks"}`
			}
			res := f.admDo(t, admin, http.MethodPost, "/clients", body)
			if res.status != http.StatusUnprocessableEntity && res.status != http.StatusBadRequest {
				t.Errorf("%s: status %d, want 422 or 400 (body %s)", name, res.status, res.body)
			}
			if strings.Contains(string(res.body), `"d"`) {
				t.Errorf("%s: the answer echoes key material: %s", name, res.body)
			}
		}
		admProblem(t, f.admDo(t, admin, http.MethodPost, "/clients", `{"name":"nokeys","token_endpoint_auth_method":"private_key_jwt"}`),
			http.StatusUnprocessableEntity, "jwks")
		admProblem(t, f.admDo(t, admin, http.MethodPost, "/clients", `{"name":"bad method","token_endpoint_auth_method":"none"}`),
			http.StatusUnprocessableEntity, "token_endpoint_auth_method")
		admProblem(t, f.admDo(t, admin, http.MethodPost, "/keys", `{"name":"key","token_endpoint_auth_method":"private_key_jwt","jwks":`+keySet(t, k)+`}`),
			http.StatusUnprocessableEntity, "token_endpoint_auth_method")

		// Back to a secret: the keys go, the tokens die, a rotation gives
		// a secret that works.
		tok := f.tokenWithAssertion(k.sign(t, f.claimsFor(id))).json(t)["access_token"].(string)
		f.admWant(t, admin, http.MethodPatch, path, `{"token_endpoint_auth_method":"client_secret_basic"}`, http.StatusOK)
		if f.active(tok) {
			t.Error("a token minted with the keys survived the switch to a secret")
		}
		wantError(t, f.tokenWithAssertion(k.sign(t, f.claimsFor(id))), http.StatusUnauthorized, "invalid_client")
		rotated := f.admWant(t, admin, http.MethodPost, path+"/rotate", `{"overlap_seconds":0}`, http.StatusOK)
		s := rotated["client_secret"].(string)
		f.secrets = append(f.secrets, s)
		if res := f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basic(id, s)); res.status != http.StatusOK {
			t.Fatalf("token with the new secret: status %d, body %s", res.status, res.body)
		}
	})
}

// TestPrivateKeyJWTBruteForce: refused assertions count against the client
// id like wrong secrets: past the threshold even a good assertion waits.
func TestPrivateKeyJWTBruteForce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		k := newClientKey(t, jose.ES256, "k")
		c := f.pkjwtClient("target", keySet(t, k))
		forged := newClientKey(t, jose.ES256, "k")
		for i := range f.cfg.BruteForce.Threshold {
			wantError(t, f.tokenWithAssertion(forged.sign(t, f.claimsFor(c.ID))), http.StatusUnauthorized, "invalid_client")
			_ = i
		}
		res := f.tokenWithAssertion(forged.sign(t, f.claimsFor(c.ID)))
		if res.status != http.StatusTooManyRequests || res.header.Get("Retry-After") == "" {
			t.Fatalf("after %d forged assertions: status %d, Retry-After %q, want 429 with Retry-After (body %s)",
				f.cfg.BruteForce.Threshold, res.status, res.header.Get("Retry-After"), res.body)
		}
	}, func(c *config.Config) { c.BruteForce.SourceThreshold = 1000 })
}

// TestConsolePrivateKeyJWT: an API client added in the console with a
// pasted JWK Set authenticates with assertions, is shown no secret and
// offers no secret rotation; a private key pasted by mistake is refused
// and not echoed back.
func TestConsolePrivateKeyJWT(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		b := f.browser(t)
		b.signIn("alice")
		b.get("/console/clients/new").want(t, http.StatusOK).
			has(t, `name="token_endpoint_auth_method" value="private_key_jwt"`, `name="jwks"`, `name="jwks_uri"`)
		b.get("/console/keys/new").want(t, http.StatusOK).lacks(t, `name="token_endpoint_auth_method"`)

		k := newClientKey(t, jose.ES256, "console")
		priv, _ := jose.JSONWebKey{Key: k.priv, KeyID: "p"}.MarshalJSON()
		refused := b.post("/console/clients/new", "name", "leaky", "access_rights", "events", "grant_types_shown", "1",
			"grant_types", "client_credentials", "token_endpoint_auth_method", "private_key_jwt", "jwks", `{"keys":[`+string(priv)+`]}`).
			want(t, http.StatusUnprocessableEntity)
		if got := refused.fieldError(t, "jwks"); !strings.Contains(got, "public keys only") {
			t.Errorf("jwks error = %q", got)
		}

		p := b.post("/console/clients/new", "name", "signer", "access_rights", "events", "grant_types_shown", "1",
			"grant_types", "client_credentials", "token_endpoint_auth_method", "private_key_jwt", "jwks", keySet(t, k)).
			want(t, http.StatusSeeOther)
		loc := p.header.Get("Location")
		id, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(loc, "/console/clients/"), "?ok=saved"), 10, 64)
		if err != nil {
			t.Fatalf("Location %q: %v", loc, err)
		}
		if res := f.tokenWithAssertion(k.sign(t, f.claimsFor(id))); res.status != http.StatusOK {
			t.Fatalf("token: status %d, body %s", res.status, res.body)
		}
		b.get(loc).want(t, http.StatusOK).has(t, `id="auth-pkjwt" name="token_endpoint_auth_method" value="private_key_jwt" checked`).
			lacks(t, `id="rotate"`)
	})
}

// TestPrivateKeyJWTReplayAcrossInstances: the jtis of assertions are shared
// by every instance on one Redis: an assertion used at one instance is a
// replay at the other.
func TestPrivateKeyJWTReplayAcrossInstances(t *testing.T) {
	first := newFixture(t, "postgres+redis")
	second := first.secondInstance()
	k := newClientKey(t, jose.ES256, "k")
	c := first.pkjwtClient("two instances", keySet(t, k))
	a := k.sign(t, first.claimsFor(c.ID))
	if res := first.tokenWithAssertion(a); res.status != http.StatusOK {
		t.Fatalf("first instance: status %d, body %s", res.status, res.body)
	}
	wantError(t, second.tokenWithAssertion(a), http.StatusUnauthorized, "invalid_client")
}
