package e2e

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tollgate/tollgate/pkg/client"
	"github.com/tollgate/tollgate/pkg/dpop"
	"github.com/tollgate/tollgate/pkg/guard"
	"github.com/tollgate/tollgate/storage"
)

const tokenURL = "https://auth.example.test/oauth/token"

// dpopKey is a client's DPoP key pair.
type dpopKey struct {
	t   testing.TB
	key *ecdsa.PrivateKey
	now func() time.Time
}

func (f *fixture) newDPoPKey(t *testing.T) *dpopKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &dpopKey{t: t, key: k, now: f.clock.now}
}

// jkt is the key's RFC 7638 thumbprint.
func (k *dpopKey) jkt() string {
	tp, err := (&jose.JSONWebKey{Key: &k.key.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		k.t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// proof is a proof for method and url, of token when not empty, with
// claims changed by edit.
func (k *dpopKey) proof(method, url, token string, edit ...func(claims map[string]any, opts *jose.SignerOptions) jose.SignatureAlgorithm) string {
	k.t.Helper()
	jti := make([]byte, 12)
	_, _ = rand.Read(jti)
	claims := map[string]any{"htm": method, "htu": url, "iat": k.now().Unix(), "jti": base64.RawURLEncoding.EncodeToString(jti)}
	if token != "" {
		claims["ath"] = dpop.AccessTokenHash(token)
	}
	opts := (&jose.SignerOptions{}).WithType("dpop+jwt").WithHeader("jwk", &jose.JSONWebKey{Key: &k.key.PublicKey})
	alg := jose.ES256
	var key any = k.key
	for _, e := range edit {
		if a := e(claims, opts); a == jose.HS256 {
			alg, key = a, []byte("0123456789abcdef0123456789abcdef")
		}
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		k.t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := s.Sign(payload)
	if err != nil {
		k.t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		k.t.Fatal(err)
	}
	return out
}

// tokenDPoP asks for a client_credentials token of c with proof.
func (f *fixture) tokenDPoP(c storage.Client, proof string) response {
	f.t.Helper()
	f.noteProof(proof)
	return f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basic(c.ID, f.secretOf[c.ID]), "DPoP", proof)
}

// checkDPoP calls /auth/check as a gateway does for GET
// https://api.example.test/v1/events?page=2 with a DPoP-bound token.
func (f *fixture) checkDPoP(scheme, tok, proof string) response {
	f.t.Helper()
	h := []string{"Authorization", scheme + " " + tok, "X-Forwarded-Method", "GET", "X-Forwarded-Proto", "https",
		"X-Forwarded-Host", "api.example.test", "X-Forwarded-Uri", "/v1/events?page=2"}
	if proof != "" {
		h = append(h, "DPoP", proof)
		f.noteProof(proof)
	}
	return f.check("POST", h...)
}

const apiURL = "https://api.example.test/v1/events"

// noteProof has the fixture's log check look for proof's signature, which
// no log line may hold.
func (f *fixture) noteProof(proof string) {
	if sig := proof[strings.LastIndex(proof, ".")+1:]; len(sig) >= 32 {
		f.secrets = append(f.secrets, sig)
	}
}

func dpopClient(c storage.Client) storage.Client {
	c.DPoPBoundAccessTokens = true
	return c
}

// TestDPoP: a client with dpop_bound_access_tokens must prove a key at the
// token endpoint; its tokens are bound to that key (token_type DPoP, cnf.jkt
// in introspection and in a JWT), and /auth/check accepts them only with a
// fresh proof of that key made for the API request. Unbound tokens are
// unchanged.
func TestDPoP(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		bound := f.client(dpopClient(storage.Client{AccountID: f.root.ID, Name: "dpop", GrantTypes: []string{"client_credentials"}, Scopes: []string{"read"}}))
		boundJWT := f.client(jwtClient(dpopClient(storage.Client{AccountID: f.root.ID, Name: "dpop jwt", GrantTypes: []string{"client_credentials"}, Scopes: []string{"read"}})))
		key := f.newDPoPKey(t)

		t.Run("metadata", func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, f.srv.URL+"/.well-known/oauth-authorization-server", nil)
			var md struct {
				Algs []string `json:"dpop_signing_alg_values_supported"`
			}
			if err := json.Unmarshal(f.do(req).body, &md); err != nil || !strings.Contains(strings.Join(md.Algs, " "), "ES256") ||
				strings.Contains(strings.Join(md.Algs, " "), "HS") {
				t.Errorf("dpop_signing_alg_values_supported = %v, %v", md.Algs, err)
			}
		})
		t.Run("bound client without proof", func(t *testing.T) {
			res := f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basic(bound.ID, f.secretOf[bound.ID]))
			if res.status != http.StatusBadRequest || res.json(t)["error"] != "invalid_dpop_proof" {
				t.Errorf("got %d %s, want 400 invalid_dpop_proof", res.status, res.body)
			}
		})
		var tok string
		t.Run("bound token", func(t *testing.T) {
			res := f.tokenDPoP(bound, key.proof("POST", tokenURL, ""))
			if res.status != http.StatusOK {
				t.Fatalf("token: %d %s", res.status, res.body)
			}
			body := res.json(t)
			if body["token_type"] != "DPoP" {
				t.Errorf("token_type = %v, want DPoP", body["token_type"])
			}
			tok = body["access_token"].(string)
			in := f.introspect(f.rs, tok).json(t)
			cnf, _ := in["cnf"].(map[string]any)
			if in["active"] != true || in["token_type"] != "DPoP" || cnf["jkt"] != key.jkt() {
				t.Errorf("introspection = %v, want active, DPoP, cnf.jkt %s", in, key.jkt())
			}
		})
		if tok == "" {
			t.FailNow()
		}
		t.Run("JWT carries cnf", func(t *testing.T) {
			res := f.tokenDPoP(boundJWT, key.proof("POST", tokenURL, ""))
			if res.status != http.StatusOK {
				t.Fatalf("token: %d %s", res.status, res.body)
			}
			_, c := f.verifyJWT(t, res.json(t)["access_token"].(string))
			if cnf, _ := c["cnf"].(map[string]any); cnf["jkt"] != key.jkt() {
				t.Errorf("cnf = %v, want jkt %s", c["cnf"], key.jkt())
			}
		})
		t.Run("any client may bind", func(t *testing.T) {
			res := f.tokenDPoP(f.cc, key.proof("POST", tokenURL, ""))
			if res.status != http.StatusOK || res.json(t)["token_type"] != "DPoP" {
				t.Errorf("unbound client with a proof: %d %s, want a DPoP token", res.status, res.body)
			}
			plain := f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basic(f.cc.ID, f.secretOf[f.cc.ID]))
			if plain.status != http.StatusOK || plain.json(t)["token_type"] != "bearer" {
				t.Errorf("unbound client without a proof: %d %s, want a bearer token", plain.status, plain.body)
			}
			in := f.introspect(f.rs, plain.json(t)["access_token"].(string)).json(t)
			if _, ok := in["cnf"]; ok || in["token_type"] != "Bearer" {
				t.Errorf("introspection of a bearer token = %v", in)
			}
		})
		t.Run("check", func(t *testing.T) {
			if res := f.checkDPoP("DPoP", tok, key.proof("GET", apiURL, tok)); res.status != http.StatusOK {
				t.Errorf("with its proof: %d %s, want 200", res.status, res.body)
			}
			res := f.checkDPoP("Bearer", tok, "")
			if res.status != http.StatusUnauthorized || !strings.HasPrefix(res.header.Get("WWW-Authenticate"), `DPoP realm="tollgate", error="invalid_token"`) {
				t.Errorf("as a Bearer token: %d %q, want 401 DPoP invalid_token", res.status, res.header.Get("WWW-Authenticate"))
			}
			if res := f.checkDPoP("Bearer", tok, key.proof("GET", apiURL, tok)); res.status != http.StatusUnauthorized {
				t.Errorf("as a Bearer token with a proof: %d, want 401", res.status)
			}
			replayed := key.proof("GET", apiURL, tok)
			if res := f.checkDPoP("DPoP", tok, replayed); res.status != http.StatusOK {
				t.Fatalf("first use: %d %s", res.status, res.body)
			}
			other := f.newDPoPKey(t)
			refused := map[string]string{
				"no proof":    "",
				"replayed":    replayed,
				"wrong htm":   key.proof("POST", apiURL, tok),
				"wrong htu":   key.proof("GET", "https://api.example.test/v1/contacts", tok),
				"wrong host":  key.proof("GET", "https://evil.example.test/v1/events", tok),
				"wrong ath":   key.proof("GET", apiURL, "another token"),
				"no ath":      key.proof("GET", apiURL, ""),
				"another key": other.proof("GET", apiURL, tok),
				"stale":       key.proof("GET", apiURL, tok, setClaim("iat", f.clock.now().Add(-2*time.Minute).Unix())),
				"future":      key.proof("GET", apiURL, tok, setClaim("iat", f.clock.now().Add(time.Minute).Unix())),
				"HS256":       key.proof("GET", apiURL, tok, hs256),
				"oversized":   key.proof("GET", apiURL, tok, setClaim("pad", strings.Repeat("x", dpop.MaxProofBytes))),
				"typ JWT":     key.proof("GET", apiURL, tok, func(_ map[string]any, o *jose.SignerOptions) jose.SignatureAlgorithm { o.WithType("JWT"); return "" }),
				"private jwk": key.proof("GET", apiURL, tok, privateJWK(key)),
				"garbage":     "a.b.c",
			}
			for name, proof := range refused {
				res := f.checkDPoP("DPoP", tok, proof)
				if res.status != http.StatusUnauthorized || !strings.HasPrefix(res.header.Get("WWW-Authenticate"), `DPoP realm="tollgate", error="invalid_dpop_proof"`) {
					t.Errorf("%s: %d %q %s, want 401 DPoP invalid_dpop_proof", name, res.status, res.header.Get("WWW-Authenticate"), res.body)
				}
			}
			unbound := f.tokenCC(f.cc)
			if res := f.checkDPoP("DPoP", unbound, key.proof("GET", apiURL, unbound)); res.status != http.StatusUnauthorized {
				t.Errorf("an unbound token with the DPoP scheme: %d, want 401", res.status)
			}
			if res := f.check("GET", "Authorization", "Bearer "+unbound, "DPoP", key.proof("GET", apiURL, unbound)); res.status != http.StatusOK {
				t.Errorf("an unbound Bearer token with a stray DPoP header: %d, want 200 as before", res.status)
			}
			if res := f.check("GET", "Authorization", "DPoP "+tok, "DPoP", key.proof("GET", apiURL, tok)); res.status != http.StatusBadRequest {
				t.Errorf("no forwarded URL: %d %s, want 400", res.status, res.body)
			}
		})
		t.Run("proofs are spent by authenticated clients only", func(t *testing.T) {
			proof := key.proof("POST", tokenURL, "")
			f.noteProof(proof)
			res := f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basic(bound.ID, "not-the-secret"), "DPoP", proof)
			if res.status != http.StatusUnauthorized || res.json(t)["error"] != "invalid_client" {
				t.Errorf("a wrong secret with a proof: %d %s, want 401 invalid_client", res.status, res.body)
			}
			if res := f.tokenDPoP(bound, proof); res.status != http.StatusOK {
				t.Errorf("the proof after a failed authentication: %d %s, want 200", res.status, res.body)
			}
		})
		t.Run("token endpoint refuses bad proofs", func(t *testing.T) {
			replayed := key.proof("POST", tokenURL, "")
			if res := f.tokenDPoP(bound, replayed); res.status != http.StatusOK {
				t.Fatalf("first use: %d %s", res.status, res.body)
			}
			refused := map[string]string{
				"replayed":    replayed,
				"wrong htm":   key.proof("GET", tokenURL, ""),
				"wrong htu":   key.proof("POST", f.srv.URL+"/oauth/token", ""),
				"stale":       key.proof("POST", tokenURL, "", setClaim("iat", f.clock.now().Add(-2*time.Minute).Unix())),
				"future":      key.proof("POST", tokenURL, "", setClaim("iat", f.clock.now().Add(time.Minute).Unix())),
				"HS256":       key.proof("POST", tokenURL, "", hs256),
				"none":        noneProof(key),
				"private jwk": key.proof("POST", tokenURL, "", privateJWK(key)),
				"oversized":   key.proof("POST", tokenURL, "", setClaim("pad", strings.Repeat("x", dpop.MaxProofBytes))),
				"empty":       " ",
			}
			for name, proof := range refused {
				for _, c := range []storage.Client{bound, f.cc} {
					res := f.tokenDPoP(c, proof)
					if res.status != http.StatusBadRequest || res.json(t)["error"] != "invalid_dpop_proof" {
						t.Errorf("%s (client %s): %d %s, want 400 invalid_dpop_proof", name, c.Name, res.status, res.body)
					}
				}
			}
			res := f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basic(bound.ID, f.secretOf[bound.ID]),
				"DPoP", key.proof("POST", tokenURL, ""), "DPoP", key.proof("POST", tokenURL, ""))
			if res.status != http.StatusBadRequest || res.json(t)["error"] != "invalid_dpop_proof" {
				t.Errorf("two DPoP headers: %d %s", res.status, res.body)
			}
		})
		t.Run("bound token dies with its client", func(t *testing.T) {
			tok := f.tokenDPoP(bound, key.proof("POST", tokenURL, "")).json(t)["access_token"].(string)
			if _, err := f.db.UpdateClient(t.Context(), bound.ID, func(c *storage.Client) error { c.Generation++; return nil }); err != nil {
				t.Fatal(err)
			}
			if res := f.checkDPoP("DPoP", tok, key.proof("GET", apiURL, tok)); res.status != http.StatusUnauthorized {
				t.Errorf("after a rotation: %d, want 401", res.status)
			}
		})
	})
}

// TestGuardDPoP: pkg/guard forwards the proof and the request it protects,
// never serves a proof from its cache, and refuses a bound token sent as
// Bearer.
func TestGuardDPoP(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		key := f.newDPoPKey(t)
		tok := f.tokenDPoP(f.cc, key.proof("POST", tokenURL, "")).json(t)["access_token"].(string)
		for name, route := range map[string][]guard.RouteOption{"rate limited": {guard.Scopes("read")}, "cached": {guard.Scopes("read"), guard.NoRateLimit()}} {
			t.Run(name, func(t *testing.T) {
				api := f.guarded(guard.Options{}, route...)
				url := api.URL + "/v1/events"
				proof := key.proof("GET", url, tok)
				if res := f.call(api, "/v1/events?page=1", "Authorization", "DPoP "+tok, "DPoP", proof); res.status != http.StatusOK {
					t.Fatalf("with its proof: %d %s", res.status, res.body)
				}
				if res := f.call(api, "/v1/events?page=1", "Authorization", "DPoP "+tok, "DPoP", proof); res.status != http.StatusUnauthorized ||
					!strings.Contains(res.header.Get("WWW-Authenticate"), "invalid_dpop_proof") {
					t.Errorf("the same proof again: %d %q, want 401 invalid_dpop_proof", res.status, res.header.Get("WWW-Authenticate"))
				}
				if res := f.call(api, "/v1/other", "Authorization", "DPoP "+tok, "DPoP", key.proof("GET", url, tok)); res.status != http.StatusUnauthorized {
					t.Errorf("a proof for another path: %d, want 401", res.status)
				}
				// Refused as bound, not merely as no good token: the
				// challenge names the DPoP scheme.
				if res := f.call(api, "/v1/events", "Authorization", "Bearer "+tok); res.status != http.StatusUnauthorized ||
					!strings.HasPrefix(res.header.Get("WWW-Authenticate"), `DPoP realm="tollgate", error="invalid_token"`) {
					t.Errorf("as a Bearer token: %d %q, want 401 DPoP invalid_token", res.status, res.header.Get("WWW-Authenticate"))
				}
			})
		}
	})
}

func setClaim(name string, value any) func(map[string]any, *jose.SignerOptions) jose.SignatureAlgorithm {
	return func(c map[string]any, _ *jose.SignerOptions) jose.SignatureAlgorithm { c[name] = value; return "" }
}

func hs256(_ map[string]any, o *jose.SignerOptions) jose.SignatureAlgorithm {
	o.WithHeader("jwk", map[string]string{"kty": "oct", "k": base64.RawURLEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))})
	return jose.HS256
}

func privateJWK(k *dpopKey) func(map[string]any, *jose.SignerOptions) jose.SignatureAlgorithm {
	return func(_ map[string]any, o *jose.SignerOptions) jose.SignatureAlgorithm {
		o.WithHeader("jwk", &jose.JSONWebKey{Key: k.key})
		return ""
	}
}

func noneProof(k *dpopKey) string {
	jwk, _ := json.Marshal(&jose.JSONWebKey{Key: &k.key.PublicKey})
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"typ":"dpop+jwt","alg":"none","jwk":` + string(jwk) + `}`))
	p, _ := json.Marshal(map[string]any{"htm": "POST", "htu": tokenURL, "iat": k.now().Unix(), "jti": "none-proof"})
	return h + "." + base64.RawURLEncoding.EncodeToString(p) + "."
}

// TestDPoPClientSetting: dpop_bound_access_tokens through the management
// API and the Go SDK; a bound client then needs a proof for its tokens and
// gets no Bearer token from the management API.
func TestDPoPClientSetting(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		alice := f.sdk(t, f.admUser("alice"))
		created, err := alice.CreateClient(ctx, client.CredentialCreate{Name: "sdk dpop", Scopes: []string{"events"},
			GrantTypes: []string{"client_credentials"}, DPoPBoundAccessTokens: true})
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		f.secrets = append(f.secrets, created.ClientSecret)
		if !created.DPoPBoundAccessTokens || !strings.Contains(string(created.Raw), `"dpop_bound_access_tokens":true`) {
			t.Errorf("created client = %s, want dpop_bound_access_tokens true", created.Raw)
		}
		f.secretOf[created.ID] = created.ClientSecret
		c := storage.Client{ID: created.ID, Name: created.Name}
		res := f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basic(c.ID, created.ClientSecret))
		if res.status != http.StatusBadRequest || res.json(t)["error"] != "invalid_dpop_proof" {
			t.Errorf("a token without a proof: %d %s", res.status, res.body)
		}
		key := f.newDPoPKey(t)
		if res := f.tokenDPoP(c, key.proof("POST", tokenURL, "")); res.status != http.StatusOK || res.json(t)["token_type"] != "DPoP" {
			t.Errorf("a token with a proof: %d %s", res.status, res.body)
		}
		_, err = alice.CreateClientToken(ctx, c.ID, client.ClientTokenRequest{Password: testPassword})
		wantAPIError(t, "a client token of a bound client", err, client.IsConflict, http.StatusConflict)

		updated, err := alice.UpdateClient(ctx, c.ID, client.CredentialUpdate{DPoPBoundAccessTokens: new(false)})
		if err != nil || updated.DPoPBoundAccessTokens {
			t.Fatalf("update to unbound: %+v, %v", updated, err)
		}
		if res := f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basic(c.ID, created.ClientSecret)); res.status != http.StatusOK || res.json(t)["token_type"] != "bearer" {
			t.Errorf("unbound again, a token without a proof: %d %s", res.status, res.body)
		}
		raw := f.apiJSON("PATCH", "/clients/"+strconv.FormatInt(c.ID, 10), "Bearer "+string(f.admUser("alice")), `{"dpop_bound_access_tokens":"yes"}`, http.StatusBadRequest)
		if raw["type"] == nil {
			t.Errorf("a string for dpop_bound_access_tokens: %v, want a problem", raw)
		}
	})
}

// TestDPoPKeySession: an API key exchanged for a key token with a DPoP proof
// gets a bound token; a key whose tokens must be bound gets none without.
func TestDPoPKeySession(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		key, keyString := f.apiKey(f.alice, "events")
		dk := f.newDPoPKey(t)
		const sessionURL = "https://auth.example.test/auth/access/session"
		proof := dk.proof("POST", sessionURL, "")
		f.noteProof(proof)
		res := f.post("/auth/access/session", "", "", "X-API-Key", keyString, "DPoP", proof)
		if res.status != http.StatusOK || res.json(t)["token_type"] != "DPoP" {
			t.Fatalf("key session with a proof: %d %s", res.status, res.body)
		}
		tok := res.json(t)["access_token"].(string)
		if cnf, _ := f.introspect(f.rs, tok).json(t)["cnf"].(map[string]any); cnf["jkt"] != dk.jkt() {
			t.Errorf("introspection cnf = %v, want jkt %s", cnf, dk.jkt())
		}
		if res := f.checkDPoP("DPoP", tok, dk.proof("GET", apiURL, tok)); res.status != http.StatusOK {
			t.Errorf("/auth/check: %d %s", res.status, res.body)
		}
		if res := f.post("/auth/access/session", "", "", "X-API-Key", keyString, "DPoP", dk.proof("POST", tokenURL, "")); res.status != http.StatusBadRequest ||
			res.json(t)["error"] != "invalid_dpop_proof" {
			t.Errorf("a proof made for the token endpoint: %d %s, want 400 invalid_dpop_proof", res.status, res.body)
		}
		if _, err := f.db.UpdateClient(t.Context(), key.ID, func(c *storage.Client) error { c.DPoPBoundAccessTokens = true; return nil }); err != nil {
			t.Fatal(err)
		}
		if res := f.post("/auth/access/session", "", "", "X-API-Key", keyString); res.status != http.StatusBadRequest || res.json(t)["error"] != "invalid_dpop_proof" {
			t.Errorf("a bound key without a proof: %d %s, want 400 invalid_dpop_proof", res.status, res.body)
		}
	})
}
