package e2e

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// TestJWKS: the signing keys' public JWK Set, named by the metadata,
// cacheable for less than a new key is published before it signs, with no
// private member, on every backend.
func TestJWKS(t *testing.T) {
	for _, backend := range testBackends {
		t.Run(backend, func(t *testing.T) {
			f := newFixture(t, backend)
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, f.srv.URL+"/.well-known/oauth-authorization-server", nil)
			if got, want := f.do(req).json(t)["jwks_uri"], "https://auth.example.test/.well-known/jwks.json"; got != want {
				t.Errorf("metadata jwks_uri: got %v, want %v", got, want)
			}

			for _, method := range []string{http.MethodGet, http.MethodHead} {
				req, _ = http.NewRequestWithContext(t.Context(), method, f.srv.URL+"/.well-known/jwks.json", nil)
				res := f.do(req)
				if res.status != http.StatusOK {
					t.Fatalf("%s jwks: got status %d, want 200", method, res.status)
				}
				if got, want := res.header.Get("Cache-Control"), "public, max-age=1800"; got != want {
					t.Errorf("%s jwks Cache-Control: got %q, want %q (half of the 1h publish-ahead)", method, got, want)
				}
				if got, want := res.header.Get("Content-Type"), "application/jwk-set+json"; got != want {
					t.Errorf("%s jwks Content-Type: got %q, want %q", method, got, want)
				}
				if method == http.MethodHead {
					continue
				}
				var raw struct {
					Keys []map[string]any `json:"keys"`
				}
				if err := json.Unmarshal(res.body, &raw); err != nil || len(raw.Keys) != 1 {
					t.Fatalf("jwks body: got %s (%v), want one key", res.body, err)
				}
				k := raw.Keys[0]
				for member, want := range map[string]any{"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig"} {
					if k[member] != want {
						t.Errorf("jwks key %s: got %v, want %v", member, k[member], want)
					}
				}
				if _, ok := k["d"]; ok {
					t.Error("jwks key has a private member d")
				}
				var set jose.JSONWebKeySet
				if err := json.Unmarshal(res.body, &set); err != nil || !set.Keys[0].IsPublic() || !set.Keys[0].Valid() {
					t.Errorf("jwks key is not a valid public JWK: %v", err)
				}
			}
			wantError(t, f.post("/.well-known/jwks.json", formCT, "a=b"), http.StatusMethodNotAllowed, "invalid_request")
		})
	}
}
