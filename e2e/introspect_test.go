package e2e

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/token"
	"github.com/tollgate/tollgate/storage"
)

func TestIntrospect(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		tok := f.tokenCC(f.cc)
		rsID := strconv.FormatInt(f.rs.ID, 10)
		rsSecret := f.secretOf[f.rs.ID]
		t.Run("basic", func(t *testing.T) {
			res := f.introspect(f.rs, tok)
			if res.status != 200 {
				t.Fatalf("status %d body %s", res.status, res.body)
			}
			if got := res.header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			in := res.json(t)
			for _, k := range []string{"active", "client_id", "scope", "exp", "iat", "sub", "token_type", "iss", "account_id", "grant_type"} {
				if _, ok := in[k]; !ok {
					t.Errorf("introspection lacks %q: %v", k, in)
				}
			}
			if in["sub"] != strconv.FormatInt(f.cc.ID, 10) {
				t.Errorf("sub = %v, want the client id for a client token", in["sub"])
			}
			if _, ok := in["username"]; ok {
				t.Errorf("client token has a username: %v", in)
			}
		})
		t.Run("client_secret_post", func(t *testing.T) {
			res := f.post("/oauth/introspect", formCT, form("token", tok, "client_id", rsID, "client_secret", rsSecret))
			if res.status != 200 || res.json(t)["active"] != true {
				t.Fatalf("status %d body %s", res.status, res.body)
			}
		})
		inactive := map[string]string{
			"garbage":          "not-a-token",
			"empty-ish":        "tg_at_",
			"forged signature": tok[:len(tok)-4] + "AAAA",
			"other prefix":     strings.Replace(tok, "tg_at_", "ory_at_", 1),
			"unknown":          f.freshUnstoredToken(),
			"huge":             strings.Repeat("a", 4000),
		}
		for name, tk := range inactive {
			t.Run("inactive "+name, func(t *testing.T) {
				res := f.introspect(f.rs, tk)
				if res.status != 200 || string(res.body) != `{"active":false}` {
					t.Errorf("status %d body %s, want 200 {\"active\":false}", res.status, res.body)
				}
			})
		}
		t.Run("caller may not introspect", func(t *testing.T) {
			res := f.post("/oauth/introspect", formCT, form("token", tok), "Authorization", basic(f.cc.ID, f.secretOf[f.cc.ID]))
			wantError(t, res, http.StatusForbidden, "unauthorized_client")
		})
		t.Run("bearer caller refused", func(t *testing.T) {
			res := f.post("/oauth/introspect", formCT, form("token", tok), "Authorization", "Bearer "+tok)
			wantError(t, res, http.StatusUnauthorized, "invalid_client")
		})
		t.Run("no caller", func(t *testing.T) {
			wantError(t, f.post("/oauth/introspect", formCT, form("token", tok)), http.StatusUnauthorized, "invalid_client")
		})
		t.Run("wrong caller secret", func(t *testing.T) {
			res := f.post("/oauth/introspect", formCT, form("token", tok), "Authorization", basic(f.rs.ID, "nope"))
			wantError(t, res, http.StatusUnauthorized, "invalid_client")
		})
		t.Run("missing token", func(t *testing.T) {
			res := f.post("/oauth/introspect", formCT, form("token_type_hint", "access_token"), "Authorization", basic(f.rs.ID, rsSecret))
			wantError(t, res, http.StatusBadRequest, "invalid_request")
		})
		t.Run("json body refused", func(t *testing.T) {
			res := f.post("/oauth/introspect", "application/json", `{"token":"`+tok+`"}`, "Authorization", basic(f.rs.ID, rsSecret))
			wantError(t, res, http.StatusBadRequest, "invalid_request")
		})
		t.Run("GET", func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, f.srv.URL+"/oauth/introspect", nil)
			wantError(t, f.do(req), http.StatusMethodNotAllowed, "invalid_request")
		})
		t.Run("account scoping", func(t *testing.T) {
			// A resource server of the child account sees tokens of its
			// subtree, not of its parent.
			rootTok := f.tokenCC(f.cc)
			childTok := f.tokenDSP(f.dsp, "bob")
			if res := f.introspect(f.childRS, rootTok); string(res.body) != `{"active":false}` {
				t.Errorf("child resource server sees a root token: %s", res.body)
			}
			if res := f.introspect(f.childRS, childTok); res.json(t)["active"] != true {
				t.Errorf("child resource server does not see a child token: %s", res.body)
			}
		})
		t.Run("expired", func(t *testing.T) {
			tk := f.tokenCC(f.cc)
			f.clock.advance(time.Hour + time.Second)
			if f.active(tk) {
				t.Error("expired token is active")
			}
		})
	})
}

// freshUnstoredToken mints a well-signed token that was never stored.
func (f *fixture) freshUnstoredToken() string {
	f.t.Helper()
	s, err := token.NewStrategy(f.keys.TokenSecret, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	tok, _, err := s.Generate(f.t.Context())
	if err != nil {
		f.t.Fatal(err)
	}
	return tok
}

func TestIntrospectDisabledUser(t *testing.T) {
	forEachBackendAndFormat(t, func(t *testing.T, f *fixture) {
		tok := f.tokenDSP(f.dsp, "alice")
		if !f.active(tok) {
			t.Fatal("fresh token inactive")
		}
		if _, err := f.db.UpdateUser(t.Context(), f.alice.ID, func(u *storage.User) error {
			u.Status = storage.StatusDisabled
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if f.active(tok) {
			t.Error("token of a disabled user is active")
		}
	})
}

func TestRevoke(t *testing.T) {
	forEachBackendAndFormat(t, func(t *testing.T, f *fixture) {
		ccBasic := basic(f.cc.ID, f.secretOf[f.cc.ID])
		t.Run("own token", func(t *testing.T) {
			tok := f.tokenCC(f.cc)
			other := f.tokenCC(f.cc)
			res := f.post("/oauth/revoke", formCT, form("token", tok, "token_type_hint", "access_token"), "Authorization", ccBasic)
			if res.status != 200 || len(res.body) != 0 {
				t.Fatalf("status %d body %q, want 200 and no body", res.status, res.body)
			}
			if f.active(tok) {
				t.Error("revoked token is active")
			}
			if !f.active(other) {
				t.Error("revocation took another token of the same client")
			}
		})
		t.Run("post auth", func(t *testing.T) {
			tok := f.tokenCC(f.cc)
			res := f.post("/oauth/revoke", formCT, form("token", tok, "client_id", strconv.FormatInt(f.cc.ID, 10), "client_secret", f.secretOf[f.cc.ID]))
			if res.status != 200 || f.active(tok) {
				t.Fatalf("status %d, active %v", res.status, f.active(tok))
			}
		})
		t.Run("another client's token is left alone", func(t *testing.T) {
			tok := f.tokenCC(f.dsp)
			res := f.post("/oauth/revoke", formCT, form("token", tok), "Authorization", ccBasic)
			if res.status != 200 {
				t.Fatalf("status %d body %s, want 200", res.status, res.body)
			}
			if !f.active(tok) {
				t.Error("a client revoked another client's token")
			}
		})
		t.Run("unknown token", func(t *testing.T) {
			for _, tk := range []string{"garbage", f.freshUnstoredToken(), "tg_at_x.y"} {
				if res := f.post("/oauth/revoke", formCT, form("token", tk), "Authorization", ccBasic); res.status != 200 {
					t.Errorf("status %d body %s, want 200", res.status, res.body)
				}
			}
		})
		t.Run("errors", func(t *testing.T) {
			wantError(t, f.post("/oauth/revoke", formCT, form("token_type_hint", "access_token"), "Authorization", ccBasic), 400, "invalid_request")
			wantError(t, f.post("/oauth/revoke", formCT, form("token", "x"), "Authorization", basic(f.cc.ID, "wrong")), 401, "invalid_client")
			wantError(t, f.post("/oauth/revoke", formCT, form("token", "x")), 401, "invalid_client")
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, f.srv.URL+"/oauth/revoke", nil)
			wantError(t, f.do(req), http.StatusMethodNotAllowed, "invalid_request")
		})
	})
}

func TestMetadata(t *testing.T) {
	f := newFixture(t, "embedded")
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, f.srv.URL+"/.well-known/oauth-authorization-server", nil)
	res := f.do(req)
	if res.status != 200 {
		t.Fatalf("status %d", res.status)
	}
	m := res.json(t)
	want := map[string]any{
		"issuer":                 "https://auth.example.test",
		"token_endpoint":         "https://auth.example.test/oauth/token",
		"introspection_endpoint": "https://auth.example.test/oauth/introspect",
		"revocation_endpoint":    "https://auth.example.test/oauth/revoke",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if got := strings.Join(toStrings(m["grant_types_supported"]), " "); got != "client_credentials eskimi_dsp "+exchangeGrant {
		t.Errorf("grant_types_supported = %q", got)
	}
	for _, endpoint := range []string{"token", "introspection", "revocation"} {
		if got := strings.Join(toStrings(m[endpoint+"_endpoint_auth_methods_supported"]), " "); got != "client_secret_basic client_secret_post private_key_jwt" {
			t.Errorf("%s_endpoint_auth_methods_supported = %q", endpoint, got)
		}
		algs := toStrings(m[endpoint+"_endpoint_auth_signing_alg_values_supported"])
		if !slices.Contains(algs, "RS256") || !slices.Contains(algs, "ES256") || !slices.Contains(algs, "EdDSA") {
			t.Errorf("%s_endpoint_auth_signing_alg_values_supported = %q, want RS256, ES256 and EdDSA among them", endpoint, algs)
		}
		for _, a := range algs {
			if a == "none" || strings.HasPrefix(a, "HS") {
				t.Errorf("%s_endpoint_auth_signing_alg_values_supported offers %s", endpoint, a)
			}
		}
	}
	if _, ok := m["authorization_endpoint"]; ok {
		t.Error("metadata names an authorization endpoint the server does not have")
	}
	wantError(t, f.post("/.well-known/oauth-authorization-server", formCT, "a=b"), http.StatusMethodNotAllowed, "invalid_request")
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func TestUnknownPath(t *testing.T) {
	f := newFixture(t, "embedded")
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, f.srv.URL+"/nope", nil)
	wantError(t, f.do(req), http.StatusNotFound, "not_found")
}
