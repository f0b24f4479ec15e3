package oauth_test

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/tollgate/tollgate/internal/oidctest"
	"github.com/tollgate/tollgate/pkg/assertion"
	"github.com/tollgate/tollgate/pkg/egress"
	"github.com/tollgate/tollgate/pkg/federation"
	"github.com/tollgate/tollgate/pkg/oauth"
	"github.com/tollgate/tollgate/pkg/secret"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/storage/memory"
	sqlstore "github.com/tollgate/tollgate/storage/sql"
	"github.com/tollgate/tollgate/storage/sql/sqltest"
)

// TestAuthenticateFederated: a token of a trusted issuer authenticates the
// client it is presented for, whatever the client's own method; not a
// disabled client, not another client, and not without a verifier.
func TestAuthenticateFederated(t *testing.T) {
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
	is := oidctest.New(t)
	const aud = "https://auth.example"
	client := func(name string, status storage.Status, method string) int64 {
		c, err := db.CreateClient(ctx, storage.Client{AccountID: acc.ID, Name: name, SecretHash: "x", Status: status,
			GrantTypes: []string{"client_credentials"}, TokenEndpointAuthMethod: method})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.CreateFederatedCredential(ctx, storage.FederatedCredential{ClientID: c.ID, Name: "k8s", Issuer: is.URL,
			Subject: "system:serviceaccount:billing:exporter", Audiences: []string{aud}, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	secretClient := client("secret", storage.StatusActive, storage.AuthSecretBasic)
	keyedClient := client("keyed", storage.StatusActive, storage.AuthPrivateKeyJWT)
	disabled := client("disabled", storage.StatusDisabled, storage.AuthSecretBasic)
	other, err := db.CreateClient(ctx, storage.Client{AccountID: acc.ID, Name: "no credentials", SecretHash: "x", Status: storage.StatusActive})
	if err != nil {
		t.Fatal(err)
	}
	v, err := federation.New(federation.Options{Credentials: db, Fetcher: egress.New(egress.Options{AllowInsecure: true}),
		AllowHTTP: true, Used: memory.NewOneTimeIDs(memory.OneTimeOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	with := oauth.NewAuthenticator(db, db, hasher, nil, nil, time.Now).WithFederation(v, nil)
	without := oauth.NewAuthenticator(db, db, hasher, nil, nil, time.Now)
	token := func(second int) *assertion.External {
		claims := is.Kubernetes(aud, time.Now())
		claims["iat"] = time.Now().Unix() - int64(second)
		e, err := assertion.ParseExternal(is.Sign(t, claims))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	for i, tc := range []struct {
		name string
		a    *oauth.Authenticator
		id   int64
		ok   bool
	}{
		{"a client with a secret", with, secretClient, true},
		{"a private_key_jwt client", with, keyedClient, true},
		{"a disabled client", with, disabled, false},
		{"a client without federated credentials", with, other.ID, false},
		{"an unknown client", with, other.ID + 1000, false},
		{"no verifier", without, secretClient, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.a.Authenticate(ctx, oauth.Credentials{ClientID: tc.id, Method: oauth.MethodFederated, External: token(i)})
			if tc.ok && (err != nil || c.GetID() != strconv.FormatInt(tc.id, 10)) {
				t.Fatalf("Authenticate = %v, %v; want client %d", c, err, tc.id)
			}
			if !tc.ok && !errors.Is(err, fosite.ErrInvalidClient) {
				t.Fatalf("Authenticate: %v, want invalid_client", err)
			}
		})
	}
}
