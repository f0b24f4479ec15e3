package eskimidsp_test

import (
	"errors"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/tollgate/tollgate/grants"
	"github.com/tollgate/tollgate/grants/eskimidsp"
	"github.com/tollgate/tollgate/pkg/oauth"
	"github.com/tollgate/tollgate/pkg/secret"
	"github.com/tollgate/tollgate/storage"
	sqlstore "github.com/tollgate/tollgate/storage/sql"
	"github.com/tollgate/tollgate/storage/sql/sqltest"
)

type settings struct{}

func (settings) EskimiDSPGrantName() string       { return "acme_dsp" }
func (settings) EskimiDSPLifetime() time.Duration { return 12 * time.Hour }

const password = "correct horse battery staple"

// TestGrant: a client allowed the grant gets a token acting for a user of
// its account subtree who signs in with the right password; every other
// sign-in is the one invalid_grant answer, each costing one password
// derivation, an unknown user's included.
func TestGrant(t *testing.T) {
	ctx := t.Context()
	db, err := sqlstore.Open(ctx, sqlstore.Options{URL: sqltest.SQLite(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	passwords, err := secret.NewPasswords(secret.Argon2Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32})
	if err != nil {
		t.Fatal(err)
	}
	account := func(name string, parent int64, st storage.Status) storage.Account {
		a, err := db.CreateAccount(ctx, storage.Account{Name: name, ParentID: parent, Status: st})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	root := account("root", 0, storage.StatusActive)
	child := account("child", root.ID, storage.StatusActive)
	off := account("off", root.ID, storage.StatusDisabled)
	other := account("other", 0, storage.StatusActive)
	hash, err := passwords.Hash(password)
	if err != nil {
		t.Fatal(err)
	}
	user := func(name string, acc storage.Account, st storage.Status) storage.User {
		u, err := db.CreateUser(ctx, storage.User{AccountID: acc.ID, Username: name, PasswordHash: hash, Role: storage.RoleMember, Status: st})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	alice := user("alice", root, storage.StatusActive)
	bob := user("bob", child, storage.StatusActive)
	user("dora", off, storage.StatusActive)
	user("carol", other, storage.StatusActive)
	user("eve", root, storage.StatusDisabled)

	g := eskimidsp.New(settings{}, db, passwords, nil)
	if g.Name() != "acme_dsp" {
		t.Fatalf("Name() = %q, want the configured name", g.Name())
	}
	allowed := storage.Client{ID: 5, AccountID: root.ID, GrantTypes: []string{"acme_dsp"}, Scopes: []string{"read"}}
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name               string
		client             storage.Client
		username, password string
		wantCode           string // the fosite error; "" for a token
		wantUser           storage.User
		wantDerivations    int64
	}{
		{"user of the client's account", allowed, "alice", password, "", alice, 1},
		{"user of a descendant, another letter case", allowed, "BOB", password, "", bob, 1},
		{"wrong password", allowed, "alice", "wrong", "invalid_grant", storage.User{}, 1},
		{"unknown user", allowed, "zed", password, "invalid_grant", storage.User{}, 1},
		{"disabled user", allowed, "eve", password, "invalid_grant", storage.User{}, 1},
		{"user of a disabled account", allowed, "dora", password, "invalid_grant", storage.User{}, 1},
		{"user of another tree", allowed, "carol", password, "invalid_grant", storage.User{}, 1},
		{"no password", allowed, "alice", "", "invalid_request", storage.User{}, 0},
		{"no username", allowed, "", password, "invalid_request", storage.User{}, 0},
		{"client not allowed the grant", storage.Client{ID: 6, AccountID: root.ID, GrantTypes: []string{"client_credentials"}}, "alice", password,
			"", storage.User{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"username": {tt.username}, "password": {tt.password}}
			before := passwords.Derivations()
			adm, err := grants.Admit(ctx, g, grants.Request{Client: oauth.NewClient(tt.client), Form: form}, now)
			if got := passwords.Derivations() - before; got != tt.wantDerivations {
				t.Errorf("%d password derivations, want %d", got, tt.wantDerivations)
			}
			if tt.client.ID == 6 {
				if !errors.Is(err, grants.ErrNotAllowed) {
					t.Fatalf("Admit = %v, want ErrNotAllowed", err)
				}
				return
			}
			if tt.wantCode != "" {
				var rfc *fosite.RFC6749Error
				if !errors.As(err, &rfc) || rfc.ErrorField != tt.wantCode {
					t.Fatalf("Admit = %v, want %s", err, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("Admit = %v", err)
			}
			c := adm.Claims
			if c.ClientID != 5 || c.AccountID != tt.wantUser.AccountID || c.Subject != strconv.FormatInt(tt.wantUser.ID, 10) ||
				c.Username != tt.wantUser.Username || c.GrantType != "acme_dsp" || !c.ExpiresAt.Equal(now.Add(12*time.Hour)) {
				t.Errorf("claims = %+v; want user %+v's token for 12h", c, tt.wantUser)
			}
		})
	}
}
