package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/apikey"
	"github.com/tollgate/tollgate/pkg/gateway"
	memmeter "github.com/tollgate/tollgate/pkg/meter/memory"
	"github.com/tollgate/tollgate/pkg/oauth"
	"github.com/tollgate/tollgate/pkg/ratelimit"
	"github.com/tollgate/tollgate/pkg/secret"
	"github.com/tollgate/tollgate/storage"
	sqlstore "github.com/tollgate/tollgate/storage/sql"
	"github.com/tollgate/tollgate/storage/sql/sqltest"
)

// TestCheckRequiresAllScopes: X-Tollgate-Scope lists scopes that are all
// required (docs/gateway.md). A key holding some of them, whichever, is
// refused with 403 insufficient_scope; only one holding every one passes.
func TestCheckRequiresAllScopes(t *testing.T) {
	ctx := t.Context()
	db, err := sqlstore.Open(ctx, sqlstore.Options{URL: sqltest.SQLite(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	hasher, err := secret.NewHasher("1", map[string][]byte{"1": []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	acc, err := db.CreateAccount(ctx, storage.Account{Name: "a", Status: storage.StatusActive})
	if err != nil {
		t.Fatal(err)
	}
	key := func(scopes ...string) string {
		t.Helper()
		s, err := secret.Generate()
		if err != nil {
			t.Fatal(err)
		}
		h, err := hasher.Hash(ctx, []byte(s))
		if err != nil {
			t.Fatal(err)
		}
		c, err := db.CreateClient(ctx, storage.Client{AccountID: acc.ID, Name: "key", Kind: storage.KindKey, SecretHash: string(h),
			Scopes: scopes, GrantTypes: []string{"client_credentials"}, Status: storage.StatusActive})
		if err != nil {
			t.Fatal(err)
		}
		k, err := apikey.Format(c.ID, s)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	check := gateway.New(gateway.Options{
		Authenticator: oauth.NewAuthenticator(db, db, hasher, nil, nil, time.Now),
		Accounts:      db,
		Meter:         memmeter.New(memmeter.Options{}),
		Classes:       map[string]ratelimit.Limit{gateway.DefaultClass: {Rate: 1000, Burst: 1000}},
	})
	events, contacts, both, three := key("events"), key("contacts"), key("events", "contacts"), key("events", "contacts", "reports")
	tests := []struct {
		name     string
		key      string
		required string
		want     int
	}{
		{"first of two", events, "events contacts", http.StatusForbidden},
		{"second of two", contacts, "events contacts", http.StatusForbidden},
		{"first of two, listed last", events, "contacts events", http.StatusForbidden},
		{"two of three", both, "events contacts reports", http.StatusForbidden},
		{"two of three, the missing one first", both, "reports events contacts", http.StatusForbidden},
		{"none", events, "reports", http.StatusForbidden},
		{"both", both, "events contacts", http.StatusOK},
		{"both, in the other order", both, "contacts events", http.StatusOK},
		{"more than required", three, "contacts reports", http.StatusOK},
		{"one of one", events, "events", http.StatusOK},
		{"nothing required", events, "", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/auth/check", nil)
			req.Header.Set(gateway.HeaderAPIKey, tt.key)
			if tt.required != "" {
				req.Header.Set(gateway.HeaderScope, tt.required)
			}
			rec := httptest.NewRecorder()
			check.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("scopes required %q: status %d, want %d (body %s)", tt.required, rec.Code, tt.want, rec.Body)
			}
			if tt.want == http.StatusForbidden {
				if got, want := rec.Body.String(), `{"error":"insufficient_scope","error_description":"the credential lacks a required scope"}`; got != want {
					t.Errorf("body %s, want %s", got, want)
				}
				if got := rec.Header().Get(gateway.HeaderClientID); got != "" {
					t.Errorf("%s = %q on a refusal, want none", gateway.HeaderClientID, got)
				}
			}
		})
	}
}
