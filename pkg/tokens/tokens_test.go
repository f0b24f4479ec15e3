package tokens_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/tokens"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/storage/memory"
	sqlstore "github.com/tollgate/tollgate/storage/sql"
	"github.com/tollgate/tollgate/storage/sql/sqltest"
)

// plainFormat is a second token format, unlike the opaque one in every
// way the service could lean on: another prefix, another length, hex
// instead of base64, and an id that is not a suffix of the value. A value is
// "plain-<id>-<check>", check being a keyed hash of the id.
type plainFormat struct{ key []byte }

var _ tokens.Format = plainFormat{}

func (f plainFormat) check(id string) string {
	sum := sha256.Sum256(append(append([]byte{}, f.key...), id...))
	return hex.EncodeToString(sum[:8])
}

func (f plainFormat) value(id string) string { return "plain-" + id + "-" + f.check(id) }

func (f plainFormat) Mint(context.Context, storage.Token, int64) (string, string, error) {
	id := hex.EncodeToString([]byte(rand.Text()))
	return f.value(id), id, nil
}

func (f plainFormat) Derive(_ context.Context, seed []byte, _ storage.Token, _ int64) (string, string, error) {
	sum := sha256.Sum256(append(append([]byte{}, f.key...), seed...))
	id := hex.EncodeToString(sum[:])
	return f.value(id), id, nil
}

func (f plainFormat) ID(_ context.Context, value string) (string, error) {
	rest, ok := strings.CutPrefix(value, "plain-")
	id, check, found := strings.Cut(rest, "-")
	if !ok || !found || id == "" || check != f.check(id) {
		return "", tokens.ErrMalformed
	}
	return id, nil
}

// countingTokens counts the lookups of the token store.
type countingTokens struct {
	*memory.Store
	gets atomic.Int64
}

func (c *countingTokens) GetToken(ctx context.Context, id string) (storage.Token, error) {
	c.gets.Add(1)
	return c.Store.GetToken(ctx, id)
}

// fixture is a service over a real SQLite database and the in-process
// token store: an account with a child and a sibling, a client of the
// account and another client of the same account.
type fixture struct {
	svc                  *tokens.Service
	db                   *sqlstore.Store
	tokens               *countingTokens
	now                  time.Time
	parent, child, other storage.Account
	client, peer         storage.Client
	uses                 *usageLog
}

type usageLog struct{ clients []int64 }

func (u *usageLog) Record(clientID int64, _ time.Time) { u.clients = append(u.clients, clientID) }

func newFixture(t *testing.T, format tokens.Format) *fixture {
	t.Helper()
	ctx := t.Context()
	db, err := sqlstore.Open(ctx, sqlstore.Options{URL: sqltest.SQLite(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: db, now: time.Now().Truncate(time.Second), uses: &usageLog{}}
	mk := func(a storage.Account) storage.Account {
		a, err := db.CreateAccount(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	f.parent = mk(storage.Account{Name: "parent", Status: storage.StatusActive})
	f.child = mk(storage.Account{Name: "child", ParentID: f.parent.ID, Status: storage.StatusActive})
	f.other = mk(storage.Account{Name: "other", Status: storage.StatusActive})
	client := func(name string) storage.Client {
		c, err := db.CreateClient(ctx, storage.Client{AccountID: f.parent.ID, Name: name, Kind: storage.KindClient, SecretHash: "x",
			Scopes: []string{"read"}, GrantTypes: []string{"client_credentials"}, Status: storage.StatusActive})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	f.client, f.peer = client("client"), client("peer")
	f.tokens = &countingTokens{Store: memory.New(memory.Options{Now: func() time.Time { return f.now }})}
	f.svc = tokens.New(tokens.Options{Format: format, Tokens: f.tokens, Store: db, Usage: f.uses, Now: func() time.Time { return f.now }})
	return f
}

func (f *fixture) issue(t *testing.T, c tokens.Claims) (string, storage.Token) {
	t.Helper()
	if c.ClientID == 0 {
		c.ClientID, c.Generation = f.client.ID, f.client.Generation
	}
	if c.AccountID == 0 {
		c.AccountID = f.parent.ID
	}
	if c.GrantType == "" {
		c.GrantType = "client_credentials"
	}
	if c.ExpiresAt.IsZero() {
		c.ExpiresAt = f.now.Add(time.Hour)
	}
	tok, rec, err := f.svc.Issue(t.Context(), "", c, []string{"read"}, nil)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return tok, rec
}

func formats(t *testing.T) map[string]tokens.Format {
	t.Helper()
	opaque, err := tokens.NewOpaque(bytes.Repeat([]byte{'s'}, 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]tokens.Format{"opaque": opaque, "plain": plainFormat{key: []byte("k")}}
}

// TestServiceOverFormats runs the whole lifecycle over the opaque format
// and over a second one the service knows nothing about: the Format
// interface is all a new format needs.
func TestServiceOverFormats(t *testing.T) {
	for name, format := range formats(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			f := newFixture(t, format)
			tok, rec := f.issue(t, tokens.Claims{})
			if id, err := format.ID(ctx, tok); err != nil || id != rec.Signature {
				t.Fatalf("format.ID(issued) = %q, %v; want the record's id %q", id, err, rec.Signature)
			}
			if rec.RequestID == "" || !rec.IssuedAt.Equal(f.now) || !rec.ExpiresAt.Equal(f.now.Add(time.Hour)) {
				t.Fatalf("record = %+v; want a request id, issued now, expiring in an hour", rec)
			}

			v, err := f.svc.Validate(ctx, tok)
			if err != nil || v.Token.ClientID != f.client.ID || v.Client.ID != f.client.ID || v.User != nil {
				t.Fatalf("Validate(issued) = %+v, %v; want the client's token", v, err)
			}
			if len(f.uses.clients) != 1 || f.uses.clients[0] != f.client.ID {
				t.Errorf("uses recorded = %v, want [%d]", f.uses.clients, f.client.ID)
			}

			// Introspection: the token's account or an ancestor of it.
			for _, c := range []struct {
				caller int64
				active bool
			}{{f.parent.ID, true}, {f.child.ID, false}, {f.other.ID, false}} {
				_, err := f.svc.Introspect(ctx, c.caller, tok)
				if got := err == nil; got != c.active || (err != nil && !errors.Is(err, tokens.ErrInactive)) {
					t.Errorf("Introspect by account %d: err = %v, want active %v", c.caller, err, c.active)
				}
			}

			// A value this format did not mint is inactive without a lookup.
			gets := f.tokens.gets.Load()
			for _, bad := range []string{"", tok + "x", tok[:len(tok)-1], "plain-00-00", "tg_at_" + strings.Repeat("A", 87)} {
				if _, err := f.svc.Validate(ctx, bad); !errors.Is(err, tokens.ErrInactive) {
					t.Errorf("Validate(%q) = %v, want ErrInactive", bad, err)
				}
				if err := f.svc.Revoke(ctx, f.client.ID, bad); err != nil {
					t.Errorf("Revoke(%q) = %v, want nil (nothing to revoke)", bad, err)
				}
			}
			if got := f.tokens.gets.Load(); got != gets {
				t.Errorf("%d token store lookups for malformed values, want 0", got-gets)
			}

			// Another client cannot revoke it.
			var notOwner *tokens.NotOwnerError
			if err := f.svc.Revoke(ctx, f.peer.ID, tok); !errors.As(err, &notOwner) || notOwner.Owner != f.client.ID {
				t.Fatalf("Revoke by another client = %v, want *NotOwnerError{%d}", err, f.client.ID)
			}
			if _, err := f.svc.Validate(ctx, tok); err != nil {
				t.Fatalf("Validate after another client's revocation = %v, want good", err)
			}
			if err := f.svc.Revoke(ctx, f.client.ID, tok); err != nil {
				t.Fatalf("Revoke by its client = %v", err)
			}
			if _, err := f.svc.Validate(ctx, tok); !errors.Is(err, tokens.ErrInactive) {
				t.Fatalf("Validate after revocation = %v, want ErrInactive", err)
			}
			if err := f.svc.Revoke(ctx, f.client.ID, tok); err != nil {
				t.Fatalf("Revoke again = %v, want nil", err)
			}
		})
	}
}

// TestServiceReuseOverFormats: a reused token is derived by the format, so
// the same claims in the same window give the same value, whatever the
// format, and a revoked one is never handed out again.
func TestServiceReuseOverFormats(t *testing.T) {
	for name, format := range formats(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			f := newFixture(t, format)
			claims := tokens.Claims{Reuse: true}
			first, rec := f.issue(t, claims)
			second, rec2 := f.issue(t, claims)
			if first != second || rec.Signature != rec2.Signature || rec.RequestID != rec2.RequestID {
				t.Fatalf("reused tokens differ: %q (%+v) and %q (%+v)", first, rec, second, rec2)
			}
			if other, _ := f.issue(t, tokens.Claims{Reuse: true, Subject: "9"}); other == first {
				t.Fatal("another subject got the same reused token")
			}
			if err := f.svc.Revoke(ctx, f.client.ID, first); err != nil {
				t.Fatal(err)
			}
			third, _ := f.issue(t, claims)
			if third == first {
				t.Fatal("a revoked reused token was handed out again")
			}
			if _, err := f.svc.Validate(ctx, third); err != nil {
				t.Fatalf("Validate(token after revocation) = %v, want good", err)
			}
		})
	}
}

// TestServiceTokensDieWithTheirRecords: expiry, a disabled client, a
// rotated secret and a disabled account end a token, whatever the format.
func TestServiceTokensDieWithTheirRecords(t *testing.T) {
	cases := []struct {
		name string
		kill func(t *testing.T, f *fixture)
	}{
		{"expired", func(_ *testing.T, f *fixture) { f.now = f.now.Add(time.Hour) }},
		{"client disabled", func(t *testing.T, f *fixture) {
			if _, err := f.db.UpdateClient(t.Context(), f.client.ID, func(c *storage.Client) error {
				c.Status = storage.StatusDisabled
				c.DisabledReason = storage.DisabledManually
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}},
		{"client on a new generation", func(t *testing.T, f *fixture) {
			if _, err := f.db.UpdateClient(t.Context(), f.client.ID, func(c *storage.Client) error {
				c.Generation += 2
				c.PreviousGeneration = 0
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}},
		{"account disabled", func(t *testing.T, f *fixture) {
			f.now = f.now.Add(time.Second)
			if _, err := f.db.UpdateAccount(t.Context(), f.parent.ID, func(a *storage.Account) error {
				a.SetStatus(storage.StatusDisabled, f.now)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}},
		{"account disabled and enabled again", func(t *testing.T, f *fixture) {
			for _, st := range []storage.Status{storage.StatusDisabled, storage.StatusActive} {
				f.now = f.now.Add(time.Second)
				if _, err := f.db.UpdateAccount(t.Context(), f.parent.ID, func(a *storage.Account) error {
					a.SetStatus(st, f.now)
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			}
		}},
	}
	for name, format := range formats(t) {
		for _, c := range cases {
			t.Run(name+"/"+c.name, func(t *testing.T) {
				f := newFixture(t, format)
				tok, _ := f.issue(t, tokens.Claims{})
				if _, err := f.svc.Validate(t.Context(), tok); err != nil {
					t.Fatalf("Validate before = %v", err)
				}
				named, ok, err := f.svc.Name(t.Context(), tok)
				if want := name == "opaque"; ok != want || err != nil {
					t.Fatalf("Name: ok %v, error %v; want ok %v (a value that names its root), no error", ok, err, want)
				}
				c.kill(t, f)
				if _, err := f.svc.Validate(t.Context(), tok); !errors.Is(err, tokens.ErrInactive) {
					t.Fatalf("Validate after = %v, want ErrInactive", err)
				}
				if !ok {
					return
				}
				// The check's way: refused before its decision, by what
				// needs no record or by its record's terms.
				named, _, err = f.svc.Name(t.Context(), tok)
				if errors.Is(err, tokens.ErrInactive) {
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				rec, err := f.tokens.GetToken(t.Context(), named.ID)
				if errors.Is(err, storage.ErrNotFound) {
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if f.svc.Terms(named).Hold(rec) {
					t.Errorf("the record holds the terms: it would be spent before ValidateNamed refuses it")
				}
				if _, err := f.svc.ValidateNamed(t.Context(), named, rec); !errors.Is(err, tokens.ErrInactive) {
					t.Errorf("ValidateNamed after = %v, want ErrInactive", err)
				}
			})
		}
	}
}
