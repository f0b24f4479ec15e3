package authn_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/authn"
	"github.com/tollgate/tollgate/pkg/bruteforce"
	bfmemory "github.com/tollgate/tollgate/pkg/bruteforce/memory"
	"github.com/tollgate/tollgate/pkg/reqctx"
	"github.com/tollgate/tollgate/pkg/secret"
	"github.com/tollgate/tollgate/storage"
	sqlstore "github.com/tollgate/tollgate/storage/sql"
	"github.com/tollgate/tollgate/storage/sql/sqltest"
)

const password = "the right password"

type fixture struct {
	store     *sqlstore.Store
	passwords *secret.Passwords
	// alice is active in an active account; bob is disabled; carol's
	// account is disabled.
	alice, bob, carol storage.User
}

func newFixture(t *testing.T, url string) *fixture {
	t.Helper()
	ctx := t.Context()
	store, err := sqlstore.Open(ctx, sqlstore.Options{URL: url, QueryTimeout: time.Minute})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = store.Close() })
	if _, err := store.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	passwords, err := secret.NewPasswords(secret.Argon2Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: store, passwords: passwords}
	active, err := store.CreateAccount(ctx, storage.Account{Name: "active", Status: storage.StatusActive})
	if err != nil {
		t.Fatal(err)
	}
	disabled, err := store.CreateAccount(ctx, storage.Account{Name: "disabled", Status: storage.StatusActive})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.UpdateAccount(ctx, disabled.ID, func(a *storage.Account) error {
		a.SetStatus(storage.StatusDisabled, time.Now())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	user := func(name string, account int64, status storage.Status) storage.User {
		hash, err := passwords.Hash(password)
		if err != nil {
			t.Fatal(err)
		}
		u, err := store.CreateUser(ctx, storage.User{AccountID: account, Username: name, PasswordHash: hash, Role: storage.RoleMember, Status: status})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	f.alice = user("Alice", active.ID, storage.StatusActive)
	f.bob = user("bob", active.ID, storage.StatusDisabled)
	f.carol = user("carol", disabled.ID, storage.StatusActive)
	return f
}

func forEachBackend(t *testing.T, test func(t *testing.T, f *fixture)) {
	for _, b := range []struct {
		name string
		url  func(t *testing.T) string
	}{{"sqlite", sqltest.SQLite}, {"postgres", sqltest.Postgres}} {
		t.Run(b.name, func(t *testing.T) { test(t, newFixture(t, b.url(t))) })
	}
}

// refusals are every way a sign-in is refused, all alike.
func refusals(f *fixture) []struct {
	name, username, password string
	accept                   authn.Accept
} {
	notAlice := func(_ context.Context, u storage.User) (bool, error) { return u.ID != f.alice.ID, nil }
	return []struct {
		name, username, password string
		accept                   authn.Accept
	}{
		{"unknown user", "nobody", password, nil},
		{"wrong password", "alice", "a wrong password", nil},
		{"disabled user", "bob", password, nil},
		{"user of a disabled account", "carol", password, nil},
		{"user the caller refuses", "alice", password, notAlice},
	}
}

// TestRefusals checks that every refusal is ErrBadCredentials, that the
// right password signs in whatever the letter case of the username, and
// that a backend failure is ErrUnavailable.
func TestRefusals(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		a := authn.New(f.store, f.passwords, nil)
		for _, tt := range refusals(f) {
			if _, err := a.Authenticate(t.Context(), tt.username, tt.password, tt.accept); !errors.Is(err, authn.ErrBadCredentials) {
				t.Errorf("%s: %v, want ErrBadCredentials", tt.name, err)
			}
		}
		u, err := a.Authenticate(t.Context(), "ALICE", password, func(context.Context, storage.User) (bool, error) { return true, nil })
		if err != nil || u.ID != f.alice.ID {
			t.Errorf("alice, right password: %+v, %v", u, err)
		}
		cancelled, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := a.Authenticate(cancelled, "alice", password, nil); !errors.Is(err, authn.ErrUnavailable) {
			t.Errorf("a failing backend: %v, want ErrUnavailable", err)
		}
		failing := func(context.Context, storage.User) (bool, error) { return false, errors.New("down") }
		if _, err := a.Authenticate(t.Context(), "alice", password, failing); !errors.Is(err, authn.ErrUnavailable) {
			t.Errorf("a failing condition: %v, want ErrUnavailable", err)
		}
	})
}

// TestWorkSameForEveryRefusal checks that each refusal derives exactly one
// argon2id hash, as a right password does: timing tells nothing.
func TestWorkSameForEveryRefusal(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		a := authn.New(f.store, f.passwords, nil)
		for _, tt := range refusals(f) {
			before := f.passwords.Derivations()
			_, _ = a.Authenticate(t.Context(), tt.username, tt.password, tt.accept)
			if got := f.passwords.Derivations() - before; got != 1 {
				t.Errorf("%s: %d derivations, want 1", tt.name, got)
			}
		}
	})
}

// TestBruteForce checks that refusals are counted per username (letter case
// ignored) and source, and that past the threshold even the right password
// is held back, without verifying it.
func TestBruteForce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		guard := bruteforce.New(bfmemory.New(bfmemory.Options{}), bruteforce.Options{Kind: bruteforce.KindUser, Threshold: 2, SourceThreshold: 100})
		a := authn.New(f.store, f.passwords, guard)
		ctx := reqctx.WithSource(t.Context(), "192.0.2.7")
		for _, name := range []string{"alice", "ALICE"} {
			if _, err := a.Authenticate(ctx, name, "a wrong password", nil); !errors.Is(err, authn.ErrBadCredentials) {
				t.Fatalf("wrong password as %s: %v", name, err)
			}
		}
		before := f.passwords.Derivations()
		_, err := a.Authenticate(ctx, "Alice", password, nil)
		if blocked, ok := errors.AsType[*bruteforce.BlockedError](err); !ok || blocked.RetryAfter <= 0 {
			t.Fatalf("right password after the threshold: %v, want a *bruteforce.BlockedError", err)
		}
		if n := f.passwords.Derivations() - before; n != 0 {
			t.Errorf("a held back attempt derived %d hashes, want 0", n)
		}
		if _, err := a.Authenticate(reqctx.WithSource(t.Context(), "192.0.2.8"), "alice", password, nil); err != nil {
			t.Errorf("right password from another source: %v", err)
		}
	})
}
