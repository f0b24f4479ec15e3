package gateway_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/gateway"
	"github.com/tollgate/tollgate/pkg/meter"
	memmeter "github.com/tollgate/tollgate/pkg/meter/memory"
	"github.com/tollgate/tollgate/storage"
)

// TestCheckNamedTokens: with a TokenMeter, a token that names its root is
// read with the decision, and answered exactly as when it is validated
// first; a refused one spends nothing of its quota.
func TestCheckNamedTokens(t *testing.T) {
	s := newCheckSetup(t)
	ctx := t.Context()
	q := storage.Quota{Limit: 100, Period: storage.QuotaDay}
	c, _ := s.key(storage.Client{AccountID: s.root.ID, Scopes: []string{"events", "contacts"}, Quota: &q})
	user, err := s.db.CreateUser(ctx, storage.User{AccountID: s.root.ID, Username: "una", PasswordHash: "x", Role: storage.RoleMember,
		Status: storage.StatusActive})
	if err != nil {
		t.Fatal(err)
	}
	fencedClient, _ := s.key(storage.Client{AccountID: s.root.ID, Scopes: []string{"events"}, AllowedCIDRs: []string{"192.0.2.0/24"}})
	fenced := s.bearer(fencedClient, "", "events")
	good := s.bearer(c, "", "events")
	userTok := s.bearer(c, strconv.FormatInt(user.ID, 10), "events")
	revoked := s.bearer(c, "", "events")
	rec, err := s.tokens.GetToken(ctx, mustID(t, s, revoked))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.tokens.RevokeRequest(ctx, rec.RequestID); err != nil {
		t.Fatal(err)
	}

	// One meter per endpoint, so that what each spends shows.
	plainMeter, namedMeter := memmeter.New(memmeter.Options{}), memmeter.New(memmeter.Options{})
	plain := s.check(func(o *gateway.Options) { o.Meter = plainMeter })
	named := s.check(func(o *gateway.Options) {
		o.Meter = namedMeter
		o.TokenMeter = meter.WithTokens(namedMeter, s.tokens)
	})
	cases := []struct {
		name   string
		header []string
		want   int
	}{
		{"good", []string{"Authorization", "Bearer " + good, gateway.HeaderScope, "events"}, http.StatusOK},
		{"user's token", []string{"Authorization", "Bearer " + userTok}, http.StatusOK},
		{"lacks a scope", []string{"Authorization", "Bearer " + good, gateway.HeaderScope, "contacts"}, http.StatusForbidden},
		{"another tree", []string{"Authorization", "Bearer " + good, gateway.HeaderAccount, strconv.FormatInt(s.other.ID, 10)}, http.StatusForbidden},
		{"revoked", []string{"Authorization", "Bearer " + revoked}, http.StatusUnauthorized},
		// Two refusals: the first in the check's order answers.
		{"lacks a scope, another tree", []string{"Authorization", "Bearer " + good, gateway.HeaderScope, "contacts",
			gateway.HeaderAccount, strconv.FormatInt(s.other.ID, 10)}, http.StatusForbidden},
		{"revoked, another tree", []string{"Authorization", "Bearer " + revoked, gateway.HeaderAccount, strconv.FormatInt(s.other.ID, 10)},
			http.StatusUnauthorized},
		{"from outside its allowlist", []string{"Authorization", "Bearer " + fenced}, http.StatusUnauthorized},
		{"as DPoP", []string{"Authorization", "DPoP " + good}, http.StatusUnauthorized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := serve(t, plain, tc.header...), serve(t, named, tc.header...)
			if a.Code != tc.want || b.Code != tc.want {
				t.Fatalf("validated first: %d %s; read with the decision: %d %s; want %d", a.Code, a.Body, b.Code, b.Body, tc.want)
			}
			for _, h := range []string{"WWW-Authenticate", gateway.HeaderSubject, gateway.HeaderScopes, gateway.HeaderClientID} {
				if a.Header().Get(h) != b.Header().Get(h) {
					t.Errorf("%s: validated first %q, read with the decision %q", h, a.Header().Get(h), b.Header().Get(h))
				}
			}
			if a.Body.String() != b.Body.String() {
				t.Errorf("body: validated first %s, read with the decision %s", a.Body, b.Body)
			}
		})
	}
	// The user's tokens revoked: refused, spending nothing.
	if _, err := s.db.UpdateUser(ctx, user.ID, func(u *storage.User) error { u.TokensValidAfter = time.Now().Add(time.Second); return nil }); err != nil {
		t.Fatal(err)
	}
	if got := serve(t, named, "Authorization", "Bearer "+userTok).Code; got != http.StatusUnauthorized {
		t.Errorf("a revoked user's token: %d, want 401", got)
	}
	// Two good calls spent the quota, in both; no refusal did.
	for name, m := range map[string]meter.Decider{"validated first": plainMeter, "read with the decision": namedMeter} {
		if spent, err := m.Spent(ctx, s.root.ID, meter.Holder{CredentialID: c.ID}, q, time.Now()); err != nil || spent != 2 {
			t.Errorf("%s: spent %d (%v), want 2", name, spent, err)
		}
	}
}

// mustID returns the record id of tok.
func mustID(t *testing.T, s *checkSetup, tok string) string {
	t.Helper()
	named, ok, err := s.svc.Name(t.Context(), tok)
	if err != nil || !ok {
		t.Fatalf("Name: %v, %v", ok, err)
	}
	return named.ID
}
