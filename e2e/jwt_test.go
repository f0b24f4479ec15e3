package e2e

import (
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
	"github.com/tollgate/tollgate/storage"
)

// jwks fetches the served JWK Set.
func (f *fixture) jwks(t *testing.T) jose.JSONWebKeySet {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, f.srv.URL+"/.well-known/jwks.json", nil)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(f.do(req).body, &set); err != nil {
		t.Fatalf("jwks: %v", err)
	}
	return set
}

// verifyJWT verifies tok as a resource server would, with the served JWK
// Set only, and returns its header and claims.
func (f *fixture) verifyJWT(t *testing.T, tok string) (jose.Header, map[string]any) {
	t.Helper()
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("access token is not a JWS: %v", err)
	}
	h := jws.Signatures[0].Header
	set := f.jwks(t)
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q is not in the JWK Set", h.KeyID)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("the JWK Set does not verify the token: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return h, claims
}

func jwtClient(c storage.Client) storage.Client {
	c.AccessTokenStrategy = storage.StrategyJWT
	return c
}

// TestJWTAccessTokens: a client with access_token_strategy jwt gets RFC 9068
// tokens that verify against the JWK Set, and Tollgate treats them exactly
// as opaque ones: introspection, revocation, /auth/check, and death with
// their client, user or account.
func TestJWTAccessTokens(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		cc := f.client(jwtClient(storage.Client{AccountID: f.root.ID, Name: "jwt cc", GrantTypes: []string{"client_credentials"}, Scopes: []string{"read", "write"}}))
		dsp := f.client(jwtClient(storage.Client{AccountID: f.root.ID, Name: "jwt dsp", GrantTypes: []string{"client_credentials", "eskimi_dsp"}, Scopes: []string{"read", "events"}}))
		ccID := strconv.FormatInt(cc.ID, 10)

		t.Run("claims", func(t *testing.T) {
			tok := f.tokenCC(cc, "scope", "read")
			h, c := f.verifyJWT(t, tok)
			if typ := h.ExtraHeaders[jose.HeaderType]; typ != "at+jwt" {
				t.Errorf("typ: got %v, want at+jwt", typ)
			}
			want := map[string]any{"iss": "https://auth.example.test", "sub": ccID, "client_id": ccID, "scope": "read",
				"account_id": float64(f.root.ID), "aud": []any{"https://auth.example.test"}}
			for k, v := range want {
				if got, _ := json.Marshal(c[k]); string(got) != mustJSON(v) {
					t.Errorf("claim %s: got %s, want %s", k, got, mustJSON(v))
				}
			}
			iat, exp := c["iat"].(float64), c["exp"].(float64)
			if exp-iat != time.Hour.Seconds() || c["jti"] == "" {
				t.Errorf("iat %v exp %v jti %v: want a one-hour token with a jti", iat, exp, c["jti"])
			}
			in := f.introspect(f.rs, tok).json(t)
			if in["active"] != true || in["client_id"] != ccID || in["scope"] != "read" || in["exp"] != exp || in["iat"] != iat {
				t.Errorf("introspection %v does not match the claims %v", in, c)
			}
			if res := f.check("GET", "Authorization", "Bearer "+tok); res.status != http.StatusOK {
				t.Errorf("/auth/check: got status %d, want 200", res.status)
			}
		})
		t.Run("user token", func(t *testing.T) {
			tok := f.tokenDSP(dsp, "alice")
			_, c := f.verifyJWT(t, tok)
			if c["username"] != "alice" || c["sub"] != strconv.FormatInt(f.alice.ID, 10) {
				t.Errorf("user token claims %v: want username alice, sub %d", c, f.alice.ID)
			}
		})
		t.Run("revoked", func(t *testing.T) {
			tok, other := f.tokenCC(cc), f.tokenCC(cc)
			if res := f.post("/oauth/revoke", formCT, form("token", tok), "Authorization", basic(cc.ID, f.secretOf[cc.ID])); res.status != 200 {
				t.Fatalf("revoke: status %d", res.status)
			}
			if f.active(tok) || f.check("GET", "Authorization", "Bearer "+tok).status != http.StatusUnauthorized {
				t.Error("a revoked JWT is still good")
			}
			if !f.active(other) {
				t.Error("revoking one JWT ended another")
			}
		})
		t.Run("expired", func(t *testing.T) {
			tok := f.tokenCC(cc)
			f.clock.advance(time.Hour + time.Second)
			if f.active(tok) {
				t.Error("an expired JWT is active")
			}
		})
		t.Run("dies with its client", func(t *testing.T) {
			c := f.client(jwtClient(storage.Client{AccountID: f.root.ID, Name: "doomed", GrantTypes: []string{"client_credentials"}, Scopes: []string{"read"}}))
			tok := f.tokenCC(c)
			if _, err := f.db.UpdateClient(t.Context(), c.ID, func(c *storage.Client) error { c.Status = storage.StatusDisabled; return nil }); err != nil {
				t.Fatal(err)
			}
			if f.active(tok) || f.check("GET", "Authorization", "Bearer "+tok).status != http.StatusUnauthorized {
				t.Error("a JWT of a disabled client is still good")
			}
		})
		t.Run("dies with its account", func(t *testing.T) {
			acc, err := f.db.CreateAccount(t.Context(), storage.Account{Name: "jwt child", ParentID: f.root.ID, Status: storage.StatusActive})
			if err != nil {
				t.Fatal(err)
			}
			c := f.client(jwtClient(storage.Client{AccountID: acc.ID, Name: "child jwt", GrantTypes: []string{"client_credentials"}, Scopes: []string{"read"}}))
			tok := f.tokenCC(c)
			f.clock.advance(time.Second)
			if _, err := f.db.UpdateAccount(t.Context(), acc.ID, func(a *storage.Account) error {
				a.Status, a.TokensValidAfter = storage.StatusDisabled, f.clock.now()
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if f.active(tok) {
				t.Error("a JWT of a disabled account is active")
			}
		})
		t.Run("hostile", func(t *testing.T) {
			tok := f.tokenCC(cc)
			parts := strings.Split(tok, ".")
			other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			h, _ := f.verifyJWT(t, tok)
			forged := signWith(t, other, jose.ES256, h.KeyID, parts[1])
			hostile := map[string]string{
				"alg none":  base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt","kid":"`+h.KeyID+`"}`)) + "." + parts[1] + ".",
				"alg HS256": base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"at+jwt","kid":"`+h.KeyID+`"}`)) + "." + parts[1] + "." + parts[2],
				// A middle character: the last one may carry only padding bits.
				"bad signature":  parts[0] + "." + parts[1] + "." + typo(parts[2][:10]) + parts[2][10:],
				"changed claims": parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"https://auth.example.test","jti":"x"}`)) + "." + parts[2],
				"another key":    forged,
				"unknown kid":    signWith(t, other, jose.ES256, "not-a-kid", parts[1]),
				"oversized":      tok + strings.Repeat("A", 9000),
				"four parts":     tok + ".x",
				"garbage base64": "!!!.@@@.###",
				"empty segments": "..",
			}
			for name, v := range hostile {
				if f.active(v) {
					t.Errorf("%s: introspection says active", name)
				}
				if res := f.check("GET", "Authorization", "Bearer "+v); res.status != http.StatusUnauthorized {
					t.Errorf("%s: /auth/check answered %d, want 401", name, res.status)
				}
			}
		})
		t.Run("reused", func(t *testing.T) {
			c := f.client(jwtClient(storage.Client{AccountID: f.root.ID, Name: "jwt reuse", GrantTypes: []string{"client_credentials"},
				Scopes: []string{"read"}, ReuseTokens: true}))
			first, second := f.tokenCC(c), f.tokenCC(c)
			_, c1 := f.verifyJWT(t, first)
			_, c2 := f.verifyJWT(t, second)
			if c1["jti"] != c2["jti"] || c1["exp"] != c2["exp"] {
				t.Fatalf("a reused JWT has another jti or expiry: %v, %v", c1, c2)
			}
			if res := f.post("/oauth/revoke", formCT, form("token", first), "Authorization", basic(c.ID, f.secretOf[c.ID])); res.status != 200 {
				t.Fatalf("revoke: status %d", res.status)
			}
			if f.active(second) {
				t.Error("revoking a reused JWT left its twin active")
			}
			third := f.tokenCC(c)
			if _, c3 := f.verifyJWT(t, third); c3["jti"] == c1["jti"] || !f.active(third) {
				t.Errorf("after the revocation the client got the revoked jti again, or an inactive token: %v", c3)
			}
		})
		t.Run("verifies after a rotation", func(t *testing.T) {
			tok := f.tokenCC(cc)
			before := len(f.jwks(t).Keys)
			if _, _, err := f.app.RotateSigningKey(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got := len(f.jwks(t).Keys); got != before+1 {
				t.Errorf("after a rotation the JWK Set has %d keys, want %d", got, before+1)
			}
			f.verifyJWT(t, tok)
			if !f.active(tok) {
				t.Error("a JWT signed before the rotation is inactive")
			}
		})
	})
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// signWith signs payload (base64url) with key under kid and typ at+jwt.
func signWith(t *testing.T, key any, alg jose.SignatureAlgorithm, kid, payload string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign(raw)
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAccessTokenStrategyThroughTheAPI: access_token_strategy is set and
// changed through the management API and the Go SDK; a change applies to
// the next token, and tokens already issued stay good.
func TestAccessTokenStrategyThroughTheAPI(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		alice := bearer(f.tokenDSP(f.dsp, "alice"))
		tokenOf := func(id int64, sec string) string {
			t.Helper()
			res := f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basic(id, sec))
			if res.status != http.StatusOK {
				t.Fatalf("token: %d %s", res.status, res.body)
			}
			return res.json(t)["access_token"].(string)
		}

		def := f.apiJSON("POST", "/clients", alice, `{"name":"default format","scopes":["events"]}`, http.StatusCreated)
		f.secrets = append(f.secrets, def["client_secret"].(string))
		if def["access_token_strategy"] != "opaque" {
			t.Errorf("a new client's access_token_strategy: got %v, want opaque", def["access_token_strategy"])
		}

		c := f.apiJSON("POST", "/clients", alice, `{"name":"jwt app","scopes":["events"],"access_token_strategy":"jwt"}`, http.StatusCreated)
		sec := c["client_secret"].(string)
		f.secrets = append(f.secrets, sec)
		n, _ := strconv.ParseInt(id(c), 10, 64)
		if c["access_token_strategy"] != "jwt" {
			t.Errorf("access_token_strategy: got %v, want jwt", c["access_token_strategy"])
		}
		jwtTok := tokenOf(n, sec)
		f.verifyJWT(t, jwtTok)
		tk := f.apiJSON("POST", "/clients/"+id(c)+"/tokens", alice, `{"password":"`+testPassword+`"}`, http.StatusCreated)
		f.verifyJWT(t, tk["access_token"].(string))
		f.secrets = append(f.secrets, tk["access_token"].(string))

		admProblem(t, f.apiDo("PATCH", "/clients/"+id(c), alice, `{"access_token_strategy":"paseto"}`),
			http.StatusUnprocessableEntity, "access_token_strategy")

		// Through the SDK: back to opaque.
		sdk := f.sdk(t, f.admUser("alice"))
		opaque := "opaque"
		got, err := sdk.UpdateClient(t.Context(), n, client.CredentialUpdate{AccessTokenStrategy: &opaque})
		if err != nil || got.AccessTokenStrategy != "opaque" {
			t.Fatalf("SDK UpdateClient: got %+v, %v", got, err)
		}
		if next := tokenOf(n, sec); !strings.HasPrefix(next, "tg_at_") {
			t.Errorf("after the change to opaque the token is %q, want an opaque one", next[:10])
		}
		if !f.active(jwtTok) {
			t.Error("the JWT issued before the change is inactive")
		}
		created, err := sdk.CreateClient(t.Context(), client.CredentialCreate{Name: "sdk jwt", Scopes: []string{"events"}, AccessTokenStrategy: "jwt"})
		if err != nil || created.AccessTokenStrategy != "jwt" {
			t.Fatalf("SDK CreateClient: got %+v, %v", created, err)
		}
		f.secrets = append(f.secrets, created.ClientSecret)
		f.verifyJWT(t, tokenOf(created.ID, created.ClientSecret))
	})
}

// segmentOf is s as a base64url JWS segment.
func segmentOf(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
