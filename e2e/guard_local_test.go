package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tollgate/tollgate/pkg/guard"
	"github.com/tollgate/tollgate/storage"
)

// countingTransport counts the requests it sends to each path.
type countingTransport struct {
	next          http.RoundTripper
	checks, jwkss atomic.Int32
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	switch r.URL.Path {
	case "/auth/check":
		c.checks.Add(1)
	case "/.well-known/jwks.json":
		c.jwkss.Add(1)
	}
	return c.next.RoundTrip(r)
}

// TestGuardVerifiesJWTLocally: pkg/guard's Local verifies the JWT access
// tokens of a running Tollgate against its served JWK Set, with no round
// trip, and answers the identity the check endpoint answers; and it gives
// up what docs/gateway.md says it does: a revoked token passes until it
// expires.
func TestGuardVerifiesJWTLocally(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		cc := f.client(jwtClient(storage.Client{AccountID: f.root.ID, Name: "local jwt", GrantTypes: []string{"client_credentials"},
			Scopes: []string{"events", "reports"}}))
		opaque := f.client(storage.Client{AccountID: f.root.ID, Name: "local opaque", GrantTypes: []string{"client_credentials"},
			Scopes: []string{"events"}})
		counter := &countingTransport{next: f.srv.Client().Transport}
		hc := &http.Client{Transport: counter, Timeout: 10 * time.Second}
		local, err := guard.NewLocal(guard.LocalOptions{Issuer: "https://auth.example.test",
			JWKSURL: f.srv.URL + "/.well-known/jwks.json", HTTPClient: hc, Now: f.clock.now})
		if err != nil {
			t.Fatal(err)
		}
		g := guard.New(guard.Options{CheckURL: f.srv.URL + "/auth/check", HTTPClient: hc, Local: local, CacheTTL: -1, Now: f.clock.now})
		echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, _ := guard.IdentityFrom(r.Context())
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(mustJSON(id)))
		})
		mux := http.NewServeMux()
		mux.Handle("/local/events", g.Protect(echo, guard.Scopes("events"), guard.VerifyLocally()))
		mux.Handle("/local/admin", g.Protect(echo, guard.Scopes("admin"), guard.VerifyLocally()))
		mux.Handle("/checked/events", g.Protect(echo, guard.Scopes("events")))
		api := httptest.NewServer(mux)
		t.Cleanup(api.Close)

		calls := func(fn func()) (checks int32) {
			before := counter.checks.Load()
			fn()
			return counter.checks.Load() - before
		}

		tok := f.tokenCC(cc, "scope", "events")
		var viaLocal, viaCheck response
		if n := calls(func() { viaLocal = f.call(api, "/local/events", "Authorization", "Bearer "+tok) }); n != 0 || viaLocal.status != 200 {
			t.Fatalf("local route: status %d, %d checks; want 200 and none: %s", viaLocal.status, n, viaLocal.body)
		}
		if n := calls(func() { viaCheck = f.call(api, "/checked/events", "Authorization", "Bearer "+tok) }); n != 1 || viaCheck.status != 200 {
			t.Fatalf("checked route: status %d, %d checks; want 200 and one", viaCheck.status, n)
		}
		if string(viaLocal.body) != string(viaCheck.body) {
			t.Errorf("local identity %s, the check endpoint's %s", viaLocal.body, viaCheck.body)
		}

		if n := calls(func() {
			res := f.call(api, "/local/admin", "Authorization", "Bearer "+tok)
			if res.status != http.StatusForbidden || !strings.Contains(res.header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
				t.Errorf("scope missing: status %d, challenge %q", res.status, res.header.Get("WWW-Authenticate"))
			}
		}); n != 0 {
			t.Errorf("a missing scope asked the check endpoint %d times", n)
		}

		if n := calls(func() {
			if res := f.call(api, "/local/events", "Authorization", "Bearer "+f.tokenCC(opaque)); res.status != 200 {
				t.Errorf("opaque token: status %d", res.status)
			}
		}); n != 1 {
			t.Errorf("an opaque token asked the check endpoint %d times, want once", n)
		}

		forged := func() string {
			parts := strings.Split(tok, ".")
			h, _ := f.verifyJWT(t, tok)
			other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			return signWith(t, other, jose.ES256, h.KeyID, parts[1])
		}()
		if res := f.call(api, "/local/events", "Authorization", "Bearer "+forged); res.status != http.StatusUnauthorized {
			t.Errorf("forged token: status %d, want 401", res.status)
		}

		// A JWT bound to a DPoP key is never accepted locally: as Bearer the
		// check endpoint refuses it, with the DPoP scheme and a fresh proof
		// the check endpoint verifies the proof and allows it.
		key := f.newDPoPKey(t)
		bound := f.tokenDPoP(cc, key.proof("POST", tokenURL, "")).json(t)["access_token"].(string)
		if n := calls(func() {
			if res := f.call(api, "/local/events", "Authorization", "Bearer "+bound); res.status != http.StatusUnauthorized {
				t.Errorf("bound JWT as Bearer on a local route: status %d, want 401", res.status)
			}
		}); n != 1 {
			t.Errorf("bound JWT as Bearer asked the check endpoint %d times, want once", n)
		}
		if n := calls(func() {
			proof := key.proof("GET", api.URL+"/local/events", bound)
			if res := f.call(api, "/local/events", "Authorization", "DPoP "+bound, "DPoP", proof); res.status != 200 {
				t.Errorf("bound JWT with its proof on a local route: status %d: %s", res.status, res.body)
			}
		}); n != 1 {
			t.Errorf("bound JWT with its proof asked the check endpoint %d times, want once", n)
		}

		// The trade-off: revoked, the token still passes locally until it
		// expires; the check endpoint refuses it at once.
		if res := f.post("/oauth/revoke", formCT, form("token", tok), "Authorization", basic(cc.ID, f.secretOf[cc.ID])); res.status != 200 {
			t.Fatalf("revoke: status %d", res.status)
		}
		if res := f.call(api, "/checked/events", "Authorization", "Bearer "+tok); res.status != http.StatusUnauthorized {
			t.Errorf("revoked, checked route: status %d, want 401", res.status)
		}
		if res := f.call(api, "/local/events", "Authorization", "Bearer "+tok); res.status != 200 {
			t.Errorf("revoked, local route: status %d, want 200 until it expires (the documented trade-off)", res.status)
		}
		f.clock.advance(time.Hour + time.Minute)
		if res := f.call(api, "/local/events", "Authorization", "Bearer "+tok); res.status != http.StatusUnauthorized {
			t.Errorf("expired, local route: status %d, want 401", res.status)
		}

		// A rotation: tokens signed by the new key verify once the guard
		// has fetched the JWK Set again.
		if _, _, err := f.app.RotateSigningKey(t.Context()); err != nil {
			t.Fatal(err)
		}
		f.clock.advance(guard.DefaultJWKSRefresh + time.Second)
		fresh := f.tokenCC(cc, "scope", "events")
		if res := f.call(api, "/local/events", "Authorization", "Bearer "+fresh); res.status != 200 {
			t.Errorf("after a rotation: status %d: %s", res.status, res.body)
		}
		if n := counter.jwkss.Load(); n < 2 {
			t.Errorf("the JWK Set was fetched %d times, want a refresh after the rotation", n)
		}
	})
}
