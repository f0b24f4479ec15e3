package oauth_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/tollgate/tollgate/pkg/oauth"
	"github.com/tollgate/tollgate/pkg/secret"
	"github.com/tollgate/tollgate/storage"
	sqlstore "github.com/tollgate/tollgate/storage/sql"
	"github.com/tollgate/tollgate/storage/sql/sqltest"
)

// countingHasher counts the secret comparisons, the work an attacker could
// time.
type countingHasher struct {
	*secret.Hasher
	compares atomic.Int64
}

func (h *countingHasher) Compare(ctx context.Context, hash, data []byte) error {
	h.compares.Add(1)
	return h.Hasher.Compare(ctx, hash, data)
}

// TestAuthenticateSameWorkForEveryRefusal: an unknown client id, a
// disabled or expired client, a wrong secret, and a wrong secret while a
// rotated-out secret is still accepted all cost the same number of secret
// comparisons, so the time of a refusal does not tell whether a client id
// exists.
func TestAuthenticateSameWorkForEveryRefusal(t *testing.T) {
	ctx := t.Context()
	db, err := sqlstore.Open(ctx, sqlstore.Options{URL: sqltest.SQLite(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	inner, err := secret.NewHasher("1", map[string][]byte{"1": []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	hasher := &countingHasher{Hasher: inner}
	now := time.Now().UTC().Truncate(time.Second)
	acc, err := db.CreateAccount(ctx, storage.Account{Name: "a", Status: storage.StatusActive})
	if err != nil {
		t.Fatal(err)
	}
	hashOf := func(s string) string {
		h, err := inner.Hash(ctx, []byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	client := func(c storage.Client) int64 {
		c.AccountID, c.SecretHash, c.GrantTypes = acc.ID, hashOf("right"), []string{"client_credentials"}
		if c.Status == "" {
			c.Status = storage.StatusActive
		}
		created, err := db.CreateClient(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return created.ID
	}
	active := client(storage.Client{Name: "active"})
	disabled := client(storage.Client{Name: "disabled", Status: storage.StatusDisabled})
	expired := client(storage.Client{Name: "expired", ExpiresAt: now.Add(-time.Minute)})
	rotated := client(storage.Client{Name: "rotated", PreviousSecretHash: hashOf("old"), PreviousRetireAt: now.Add(time.Hour)})
	// A private_key_jwt client's secret is never a credential, not even
	// the right one.
	keyed := client(storage.Client{Name: "keyed", TokenEndpointAuthMethod: storage.AuthPrivateKeyJWT,
		JWKS: `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`})

	a := oauth.NewAuthenticator(db, db, hasher, nil, nil, func() time.Time { return now })
	cases := []struct {
		name     string
		id       int64
		secret   string
		wantOK   bool
		compares int64 // 0: the same as every refusal
	}{
		{"unknown client id", active + 1000, "right", false, 0},
		{"disabled client", disabled, "right", false, 0},
		{"expired client", expired, "right", false, 0},
		{"wrong secret", active, "wrong", false, 0},
		{"wrong secret during a rotation", rotated, "wrong", false, 0},
		{"right secret of a private_key_jwt client", keyed, "right", false, 0},
		{"right secret", active, "right", true, 1},
		{"previous secret during a rotation", rotated, "old", true, 2},
	}
	var refusal int64 = -1
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := hasher.compares.Load()
			_, err := a.Authenticate(ctx, oauth.Credentials{ClientID: c.id, Secret: c.secret, Method: oauth.MethodPost})
			got := hasher.compares.Load() - before
			if c.wantOK != (err == nil) {
				t.Fatalf("Authenticate: err = %v, want ok %v", err, c.wantOK)
			}
			if !c.wantOK && !errors.Is(err, fosite.ErrInvalidClient) {
				t.Fatalf("Authenticate: err = %v, want invalid_client", err)
			}
			switch {
			case c.compares != 0 && got != c.compares:
				t.Errorf("%d secret comparisons, want %d", got, c.compares)
			case c.compares == 0 && refusal < 0:
				refusal = got
				if got < 1 {
					t.Errorf("%d secret comparisons for a refusal, want at least one", got)
				}
			case c.compares == 0 && got != refusal:
				t.Errorf("%d secret comparisons, want %d as for every refusal", got, refusal)
			}
		})
	}
}
