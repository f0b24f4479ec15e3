package tokens_test

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/token"
	"github.com/tollgate/tollgate/pkg/tokens"
	"github.com/tollgate/tollgate/storage"
)

// Opaque tokens name their root account, account and client, and their
// records are stored under rooted ids; a token of the format before still
// validates, through Validate alone.
func TestOpaqueNamesItsRoot(t *testing.T) {
	secret := bytes.Repeat([]byte{'s'}, 32)
	opaque, err := tokens.NewOpaque(secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, opaque)
	ctx := t.Context()
	id := func(n int64) string { return strconv.FormatInt(n, 10) }

	tok, rec := f.issue(t, tokens.Claims{AccountID: f.child.ID})
	if want := "tg_at_" + id(f.parent.ID) + "." + id(f.child.ID) + "." + id(f.client.ID) + "."; !strings.HasPrefix(tok, want) {
		t.Errorf("token %.40s…: want it to start %s", tok, want)
	}
	for _, v := range []string{rec.Signature, rec.RequestID} {
		if root, _, ok := storage.SplitRooted(v); !ok || root != f.parent.ID {
			t.Errorf("record id %q: want it rooted at %d", v, f.parent.ID)
		}
	}
	named, ok, err := f.svc.Name(ctx, tok)
	if err != nil || !ok {
		t.Fatalf("Name: ok %v, %v", ok, err)
	}
	if want := (token.Names{Root: f.parent.ID, Account: f.child.ID, Client: f.client.ID}); named.Names != want || named.ID != rec.Signature {
		t.Errorf("Name: %+v, id %q; want %+v, %q", named.Names, named.ID, want, rec.Signature)
	}
	terms := f.svc.Terms(named)
	if terms.ClientID != f.client.ID || terms.AccountID != f.child.ID || len(terms.Generations) != 1 || terms.Generations[0] != f.client.Generation {
		t.Errorf("Terms: %+v", terms)
	}
	stored, err := f.tokens.GetToken(ctx, named.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !terms.Hold(stored) {
		t.Errorf("the record does not hold its own terms")
	}
	f.uses.clients = nil
	v, err := f.svc.ValidateNamed(ctx, named, stored)
	if err != nil || v.Token.Signature != rec.Signature || v.Client.ID != f.client.ID {
		t.Errorf("ValidateNamed: %+v, %v", v, err)
	}
	if len(f.uses.clients) != 1 {
		t.Errorf("uses recorded %v, want one", f.uses.clients)
	}
	// A record that is not the one the value names is refused.
	for _, edit := range []func(*storage.Token){
		func(r *storage.Token) { r.AccountID = f.parent.ID },
		func(r *storage.Token) { r.ClientID = f.peer.ID },
		func(r *storage.Token) { r.Signature = storage.Rooted(f.parent.ID, "another") },
	} {
		other := stored
		edit(&other)
		if _, err := f.svc.ValidateNamed(ctx, named, other); !errors.Is(err, tokens.ErrInactive) {
			t.Errorf("ValidateNamed of another record: %v, want ErrInactive", err)
		}
	}

	// The format before: a random key and its HMAC.
	s, err := token.NewStrategy(secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	old, sig, err := s.Generate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.tokens.CreateToken(ctx, storage.Token{Signature: sig, RequestID: "r1", ClientID: f.client.ID, Generation: f.client.Generation,
		AccountID: f.parent.ID, GrantType: "client_credentials", Scopes: []string{"read"}, IssuedAt: f.now, ExpiresAt: f.now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := f.svc.Name(ctx, old); ok || err != nil {
		t.Errorf("Name(a token of the format before): ok %v, %v; want not named", ok, err)
	}
	if _, err := f.svc.Validate(ctx, old); err != nil {
		t.Errorf("Validate(a token of the format before): %v", err)
	}
	if err := f.svc.Revoke(ctx, f.client.ID, old); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Validate(ctx, old); !errors.Is(err, tokens.ErrInactive) {
		t.Errorf("Validate(revoked token of the format before): %v, want ErrInactive", err)
	}

	// Revoked, a named token's record is gone for the check's read too.
	if err := f.svc.Revoke(ctx, f.client.ID, tok); err != nil {
		t.Fatal(err)
	}
	if _, err := f.tokens.GetToken(ctx, named.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetToken(revoked): %v, want ErrNotFound", err)
	}
}

// A user's token names its user too: a user disabled, or whose tokens
// were revoked, is refused before the check's decision.
func TestOpaqueNamesItsUser(t *testing.T) {
	opaque, err := tokens.NewOpaque(bytes.Repeat([]byte{'s'}, 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, opaque)
	ctx := t.Context()
	user, err := f.db.CreateUser(ctx, storage.User{AccountID: f.parent.ID, Username: "ursula", PasswordHash: "x", Role: storage.RoleMember,
		Status: storage.StatusActive})
	if err != nil {
		t.Fatal(err)
	}
	subject := strconv.FormatInt(user.ID, 10)
	tok, _ := f.issue(t, tokens.Claims{Subject: subject, Username: "ursula"})
	if !strings.Contains(tok, "."+strconv.FormatInt(f.client.ID, 10)+"."+subject+".") {
		t.Errorf("token %.40s…: want it to name user %s after client %d", tok, subject, f.client.ID)
	}
	named, ok, err := f.svc.Name(ctx, tok)
	if err != nil || !ok || named.Names.User != user.ID {
		t.Fatalf("Name: %+v, %v, %v", named.Names, ok, err)
	}
	rec, err := f.tokens.GetToken(ctx, named.ID)
	if err != nil {
		t.Fatal(err)
	}
	if terms := f.svc.Terms(named); terms.Subject != subject || !terms.Hold(rec) {
		t.Errorf("Terms %+v: want subject %s, held by the record", terms, subject)
	}

	// Its tokens revoked: the terms no longer hold.
	f.now = f.now.Add(time.Second)
	if _, err := f.db.UpdateUser(ctx, user.ID, func(u *storage.User) error { u.TokensValidAfter = f.now; return nil }); err != nil {
		t.Fatal(err)
	}
	if named, _, err = f.svc.Name(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if f.svc.Terms(named).Hold(rec) {
		t.Error("a token issued before its user's tokens were revoked holds the terms")
	}
	// Disabled: refused before its record is read.
	if _, err := f.db.UpdateUser(ctx, user.ID, func(u *storage.User) error { u.Status = storage.StatusDisabled; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.Name(ctx, tok); !errors.Is(err, tokens.ErrInactive) {
		t.Errorf("Name(a disabled user's token): %v, want ErrInactive", err)
	}
}
