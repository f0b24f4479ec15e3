package gateway_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tollgate/tollgate/pkg/dpop"
	"github.com/tollgate/tollgate/pkg/gateway"
	memmeter "github.com/tollgate/tollgate/pkg/meter/memory"
	"github.com/tollgate/tollgate/pkg/ratelimit"
	"github.com/tollgate/tollgate/pkg/tokens"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/storage/memory"
	sqlstore "github.com/tollgate/tollgate/storage/sql"
	"github.com/tollgate/tollgate/storage/sql/sqltest"
)

// TestCheckDPoP: a bound token passes only with the DPoP scheme and a proof
// made for the API request the gateway forwarded, whose method defaults to
// the check request's own; the forwarded URL is required once, absolute
// path first; the challenges are RFC 9449 §7.1's.
func TestCheckDPoP(t *testing.T) {
	ctx := t.Context()
	db, err := sqlstore.Open(ctx, sqlstore.Options{URL: sqltest.SQLite(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	acc, err := db.CreateAccount(ctx, storage.Account{Name: "a", Status: storage.StatusActive})
	if err != nil {
		t.Fatal(err)
	}
	c, err := db.CreateClient(ctx, storage.Client{AccountID: acc.ID, Name: "c", Kind: storage.KindClient, SecretHash: "x",
		Scopes: []string{"read"}, GrantTypes: []string{"client_credentials"}, Status: storage.StatusActive})
	if err != nil {
		t.Fatal(err)
	}
	opaque, err := tokens.NewOpaque([]byte("0123456789abcdef0123456789abcdef"), nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := tokens.New(tokens.Options{Format: opaque, Tokens: memory.New(memory.Options{}), Store: db})
	verifier, err := dpop.New(dpop.Options{Algorithms: []jose.SignatureAlgorithm{jose.ES256}, Replay: dpop.NewMemory(0, nil)})
	if err != nil {
		t.Fatal(err)
	}
	check := gateway.New(gateway.Options{Tokens: svc, Accounts: db, DPoP: verifier, Meter: memmeter.New(memmeter.Options{}),
		Classes: map[string]ratelimit.Limit{gateway.DefaultClass: {Rate: 1000, Burst: 1000}}})

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tp, _ := (&jose.JSONWebKey{Key: &key.PublicKey}).Thumbprint(crypto.SHA256)
	issue := func(jkt string) string {
		tok, _, err := svc.Issue(ctx, "", tokens.Claims{ClientID: c.ID, Generation: c.Generation, AccountID: acc.ID,
			GrantType: "client_credentials", ExpiresAt: time.Now().Add(time.Hour), JKT: jkt}, []string{"read"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	bound, plain := issue(base64.RawURLEncoding.EncodeToString(tp)), issue("")
	proof := func(method, url, tok string) string {
		jti := make([]byte, 12)
		_, _ = rand.Read(jti)
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
			(&jose.SignerOptions{}).WithType("dpop+jwt").WithHeader("jwk", &jose.JSONWebKey{Key: &key.PublicKey}))
		if err != nil {
			t.Fatal(err)
		}
		p, _ := json.Marshal(map[string]any{"htm": method, "htu": url, "iat": time.Now().Unix(),
			"jti": base64.RawURLEncoding.EncodeToString(jti), "ath": dpop.AccessTokenHash(tok)})
		jws, err := s.Sign(p)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := jws.CompactSerialize()
		return out
	}
	const api = "https://api.example.com/v1/events"
	fwd := func(extra ...string) []string {
		return append([]string{gateway.HeaderForwardedProto, "https", gateway.HeaderForwardedHost, "api.example.com",
			gateway.HeaderForwardedURI, "/v1/events?page=2"}, extra...)
	}
	tests := []struct {
		name    string
		method  string
		header  []string
		status  int
		wantWWW string
	}{
		{"good, the check's own method", "DELETE", fwd("Authorization", "DPoP "+bound, "DPoP", proof("DELETE", api, bound)), http.StatusOK, ""},
		{"good, X-Forwarded-Method", "GET", fwd("Authorization", "DPoP "+bound, "DPoP", proof("PUT", api, bound), gateway.HeaderForwardedMethod, "PUT"), http.StatusOK, ""},
		{"case of scheme and host", "GET", fwd("Authorization", "dpop "+bound, "DPoP", proof("GET", "HTTPS://API.example.com:443/v1/events", bound)), http.StatusOK, ""},
		{"bound as Bearer", "GET", fwd("Authorization", "Bearer "+bound), http.StatusUnauthorized, `DPoP realm="tollgate", error="invalid_token", algs="ES256"`},
		{"no proof", "GET", fwd("Authorization", "DPoP "+bound), http.StatusUnauthorized, `DPoP realm="tollgate", error="invalid_dpop_proof", algs="ES256"`},
		{"two proofs", "GET", fwd("Authorization", "DPoP "+bound, "DPoP", proof("GET", api, bound), "DPoP", proof("GET", api, bound)), http.StatusUnauthorized, `DPoP realm="tollgate", error="invalid_dpop_proof", algs="ES256"`},
		{"method not forwarded", "GET", fwd("Authorization", "DPoP "+bound, "DPoP", proof("POST", api, bound)), http.StatusUnauthorized, `DPoP realm="tollgate", error="invalid_dpop_proof", algs="ES256"`},
		{"unbound as DPoP", "GET", fwd("Authorization", "DPoP "+plain, "DPoP", proof("GET", api, plain)), http.StatusUnauthorized, `DPoP realm="tollgate", error="invalid_token", algs="ES256"`},
		{"unbound as Bearer, stray proof", "GET", fwd("Authorization", "Bearer "+plain, "DPoP", "x.y.z"), http.StatusOK, ""},
		{"no forwarded URI", "GET", []string{gateway.HeaderForwardedProto, "https", gateway.HeaderForwardedHost, "api.example.com", "Authorization", "DPoP " + bound, "DPoP", proof("GET", api, bound)}, http.StatusBadRequest, ""},
		{"repeated forwarded host", "GET", fwd("Authorization", "DPoP "+bound, "DPoP", proof("GET", api, bound), gateway.HeaderForwardedHost, "evil.example.com"), http.StatusBadRequest, ""},
		{"repeated forwarded method", "GET", fwd("Authorization", "DPoP "+bound, "DPoP", proof("GET", api, bound), gateway.HeaderForwardedMethod, "GET", gateway.HeaderForwardedMethod, "GET"), http.StatusBadRequest, ""},
	}
	// The replay store down: no decision, 503, never a 500 or a 401.
	down, err := dpop.New(dpop.Options{Replay: failingReplay{}})
	if err != nil {
		t.Fatal(err)
	}
	downCheck := gateway.New(gateway.Options{Tokens: svc, Accounts: db, DPoP: down, Meter: memmeter.New(memmeter.Options{}),
		Classes: map[string]ratelimit.Limit{gateway.DefaultClass: {Rate: 1000, Burst: 1000}}})
	t.Run("replay store down", func(t *testing.T) {
		req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/auth/check", nil)
		for _, kv := range [][2]string{{"Authorization", "DPoP " + bound}, {"DPoP", proof("GET", api, bound)},
			{gateway.HeaderForwardedProto, "https"}, {gateway.HeaderForwardedHost, "api.example.com"}, {gateway.HeaderForwardedURI, "/v1/events"}} {
			req.Header.Set(kv[0], kv[1])
		}
		rec := httptest.NewRecorder()
		downCheck.ServeHTTP(rec, req)
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
			t.Errorf("status %d, Retry-After %q, want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
		}
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequestWithContext(ctx, tt.method, "/auth/check", nil)
			for i := 0; i+1 < len(tt.header); i += 2 {
				req.Header.Add(tt.header[i], tt.header[i+1])
			}
			rec := httptest.NewRecorder()
			check.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d (body %s)", rec.Code, tt.status, rec.Body)
			}
			if got := rec.Header().Get("WWW-Authenticate"); tt.wantWWW != "" && got != tt.wantWWW {
				t.Errorf("WWW-Authenticate %q, want %q", got, tt.wantWWW)
			}
			if tt.status == http.StatusBadRequest && !strings.Contains(rec.Body.String(), "X-Forwarded-Uri") {
				t.Errorf("body %s does not name the headers the gateway must forward", rec.Body)
			}
		})
	}
}

// failingReplay is a replay store that cannot be reached.
type failingReplay struct{}

func (failingReplay) Fresh(context.Context, string, time.Duration) (bool, error) {
	return false, errors.New("connection refused")
}
