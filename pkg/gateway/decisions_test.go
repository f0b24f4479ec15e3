package gateway_test

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/apikey"
	"github.com/tollgate/tollgate/pkg/bruteforce"
	bfmemory "github.com/tollgate/tollgate/pkg/bruteforce/memory"
	"github.com/tollgate/tollgate/pkg/gateway"
	"github.com/tollgate/tollgate/pkg/meter"
	memmeter "github.com/tollgate/tollgate/pkg/meter/memory"
	"github.com/tollgate/tollgate/pkg/oauth"
	"github.com/tollgate/tollgate/pkg/ratelimit"
	"github.com/tollgate/tollgate/pkg/secret"
	"github.com/tollgate/tollgate/pkg/tokens"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/storage/memory"
	sqlstore "github.com/tollgate/tollgate/storage/sql"
	"github.com/tollgate/tollgate/storage/sql/sqltest"
)

// failingMeter is a meter whose backend is down. A real one (Redis) could
// be made to fail only by stopping a server the other tests share.
type failingMeter struct{}

func (failingMeter) Decide(context.Context, meter.Request) (meter.Decision, error) {
	return meter.Decision{}, errors.New("meter down")
}

func (failingMeter) Spent(context.Context, int64, meter.Holder, storage.Quota, time.Time) (int64, error) {
	return 0, errors.New("meter down")
}

// failingAccounts is an account store whose database is down, for the
// subtree check; budgetsDown takes the budgets down too.
type failingAccounts struct{ budgetsDown bool }

func (failingAccounts) AccountInSubtree(context.Context, int64, int64) (bool, error) {
	return false, errors.New("database down")
}

func (f failingAccounts) AccountBudgets(_ context.Context, id int64) (storage.BudgetChain, error) {
	if f.budgetsDown {
		return storage.BudgetChain{}, errors.New("database down")
	}
	return storage.BudgetChain{Root: id}, nil
}

// checkSetup is a check endpoint over a real SQLite store and in-process
// tokens, limits and brute-force counters, with an account tree
// (root ── child, and other) and credentials in root.
type checkSetup struct {
	t                  *testing.T
	db                 *sqlstore.Store
	root, child, other storage.Account
	hasher             *secret.Hasher
	svc                *tokens.Service
	tokens             *memory.Store
	failures           *bfmemory.Store
	now                time.Time
}

func newCheckSetup(t *testing.T) *checkSetup {
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
	s := &checkSetup{t: t, db: db, now: time.Now(), tokens: memory.New(memory.Options{}), failures: bfmemory.New(bfmemory.Options{})}
	if s.hasher, err = secret.NewHasher("1", map[string][]byte{"1": []byte("0123456789abcdef0123456789abcdef")}); err != nil {
		t.Fatal(err)
	}
	opaque, err := tokens.NewOpaque([]byte("0123456789abcdef0123456789abcdef-token"), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.svc = tokens.New(tokens.Options{Format: opaque, Tokens: s.tokens, Store: db})
	account := func(name string, parent int64) storage.Account {
		a, err := db.CreateAccount(ctx, storage.Account{Name: name, ParentID: parent, Status: storage.StatusActive})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	s.root = account("root", 0)
	s.child = account("child", s.root.ID)
	s.other = account("other", 0)
	return s
}

// key creates an API key of c's account, scopes and rate limits.
func (s *checkSetup) key(c storage.Client) (storage.Client, string) {
	s.t.Helper()
	sec, err := secret.Generate()
	if err != nil {
		s.t.Fatal(err)
	}
	h, err := s.hasher.Hash(s.t.Context(), []byte(sec))
	if err != nil {
		s.t.Fatal(err)
	}
	c.Name, c.Kind, c.SecretHash, c.Status = "key", storage.KindKey, string(h), storage.StatusActive
	c.GrantTypes = []string{"client_credentials"}
	created, err := s.db.CreateClient(s.t.Context(), c)
	if err != nil {
		s.t.Fatal(err)
	}
	k, err := apikey.Format(created.ID, sec)
	if err != nil {
		s.t.Fatal(err)
	}
	return created, k
}

// bearer mints an access token of c with scopes; subject is a user id, or
// empty for the client's own token.
func (s *checkSetup) bearer(c storage.Client, subject string, scopes ...string) string {
	s.t.Helper()
	tok, _, err := s.svc.Issue(s.t.Context(), "", tokens.Claims{ClientID: c.ID, Generation: c.Generation, AccountID: c.AccountID,
		Subject: subject, ExpiresAt: time.Now().Add(time.Hour)}, scopes, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// check builds the endpoint; change adjusts its options first.
func (s *checkSetup) check(change func(*gateway.Options)) *gateway.Check {
	guard := bruteforce.New(s.failures, bruteforce.Options{Kind: bruteforce.KindClient, Threshold: 2, BaseDelay: time.Minute,
		MaxDelay: time.Minute, Window: time.Hour})
	opts := gateway.Options{
		Tokens:        s.svc,
		Authenticator: oauth.NewAuthenticator(s.db, s.db, s.hasher, nil, guard, time.Now),
		Accounts:      s.db,
		Meter:         memmeter.New(memmeter.Options{}),
		Classes: map[string]ratelimit.Limit{
			gateway.DefaultClass: {Rate: 1000, Burst: 1000},
			"tight":              {Rate: 1, Burst: 1},
		},
	}
	if change != nil {
		change(&opts)
	}
	return gateway.New(opts)
}

func serve(t *testing.T, h http.Handler, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/auth/check", nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestCheckDecisions walks every decision of the check endpoint on its own,
// in the order it takes them: malformed headers, the credential, the
// scopes, the target account, the rate limit; and what each answer carries.
func TestCheckDecisions(t *testing.T) {
	s := newCheckSetup(t)
	keyClient, key := s.key(storage.Client{AccountID: s.root.ID, Scopes: []string{"events", "contacts"}})
	_, childKey := s.key(storage.Client{AccountID: s.child.ID, Scopes: []string{"events"}})
	tokClient, _ := s.key(storage.Client{AccountID: s.root.ID, Scopes: []string{"events"}})
	tok := s.bearer(tokClient, "", "events")
	basicKey := "Basic " + base64.StdEncoding.EncodeToString([]byte("anyone:"+key))
	check := s.check(nil)
	bodyOf := func(code, description string) string {
		return `{"error":"` + code + `","error_description":"` + description + `"}`
	}

	tests := []struct {
		name     string
		header   []string
		want     int
		body     string // exact, when set
		wantHdr  map[string]string
		noticket bool // no X-Tollgate-* identity headers
	}{
		{name: "repeated rate class", header: []string{gateway.HeaderAPIKey, key, gateway.HeaderRateClass, "default", gateway.HeaderRateClass, "tight"},
			want: http.StatusBadRequest, body: bodyOf("invalid_request", "the X-Tollgate-Rate-Class header is repeated")},
		{name: "repeated scope", header: []string{gateway.HeaderAPIKey, key, gateway.HeaderScope, "events", gateway.HeaderScope, "contacts"},
			want: http.StatusBadRequest, body: bodyOf("invalid_request", "the X-Tollgate-Scope header is repeated")},
		{name: "repeated account", header: []string{gateway.HeaderAPIKey, key, gateway.HeaderAccount, "1", gateway.HeaderAccount, "2"},
			want: http.StatusBadRequest, body: bodyOf("invalid_request", "the X-Tollgate-Account header is repeated")},
		{name: "unknown rate class", header: []string{gateway.HeaderAPIKey, key, gateway.HeaderRateClass, "nope"},
			want: http.StatusBadRequest, body: bodyOf("invalid_request", "unknown rate class")},
		{name: "account not a number", header: []string{gateway.HeaderAPIKey, key, gateway.HeaderAccount, "root"},
			want: http.StatusBadRequest, body: bodyOf("invalid_request", "the target account must be an account id")},
		{name: "account zero", header: []string{gateway.HeaderAPIKey, key, gateway.HeaderAccount, "0"},
			want: http.StatusBadRequest, body: bodyOf("invalid_request", "the target account must be an account id")},
		{name: "no credential", want: http.StatusUnauthorized, body: bodyOf("invalid_token", "no valid credential"),
			wantHdr: map[string]string{"WWW-Authenticate": `Bearer realm="tollgate"`}},
		{name: "two credentials", header: []string{gateway.HeaderAPIKey, key, "Authorization", "Bearer " + tok},
			want: http.StatusUnauthorized, body: bodyOf("invalid_token", "no valid credential")},
		{name: "malformed key", header: []string{gateway.HeaderAPIKey, "tgk_not_a_key"}, want: http.StatusUnauthorized},
		{name: "unknown bearer", header: []string{"Authorization", "Bearer tg_at_nope.nope"}, want: http.StatusUnauthorized,
			wantHdr: map[string]string{"WWW-Authenticate": `Bearer realm="tollgate", error="invalid_token"`}},
		{name: "unknown scheme", header: []string{"Authorization", "Digest " + key}, want: http.StatusUnauthorized},
		{name: "key", header: []string{gateway.HeaderAPIKey, key}, want: http.StatusOK,
			wantHdr: map[string]string{gateway.HeaderClientID: strconv.FormatInt(keyClient.ID, 10), gateway.HeaderAccountID: strconv.FormatInt(s.root.ID, 10),
				gateway.HeaderSubject: strconv.FormatInt(keyClient.ID, 10), gateway.HeaderScopes: "events contacts"}},
		{name: "key as the Basic password", header: []string{"Authorization", basicKey}, want: http.StatusOK,
			wantHdr: map[string]string{gateway.HeaderClientID: strconv.FormatInt(keyClient.ID, 10)}},
		{name: "bearer", header: []string{"Authorization", "Bearer " + tok, gateway.HeaderScope, "events"}, want: http.StatusOK,
			wantHdr: map[string]string{gateway.HeaderClientID: strconv.FormatInt(tokClient.ID, 10), gateway.HeaderSubject: strconv.FormatInt(tokClient.ID, 10), gateway.HeaderScopes: "events"}},
		{name: "bearer lacking a scope", header: []string{"Authorization", "Bearer " + tok, gateway.HeaderScope, "contacts"},
			want: http.StatusForbidden, body: bodyOf("insufficient_scope", "the credential lacks a required scope"),
			wantHdr: map[string]string{"WWW-Authenticate": `Bearer realm="tollgate", error="insufficient_scope", scope="contacts"`}},
		{name: "own account", header: []string{gateway.HeaderAPIKey, key, gateway.HeaderAccount, strconv.FormatInt(s.root.ID, 10)}, want: http.StatusOK},
		{name: "a descendant account", header: []string{gateway.HeaderAPIKey, key, gateway.HeaderAccount, strconv.FormatInt(s.child.ID, 10)}, want: http.StatusOK},
		{name: "a sibling tree", header: []string{gateway.HeaderAPIKey, key, gateway.HeaderAccount, strconv.FormatInt(s.other.ID, 10)},
			want: http.StatusForbidden, body: bodyOf("forbidden", "the credential may not act on this account")},
		{name: "the parent account", header: []string{gateway.HeaderAPIKey, childKey, gateway.HeaderAccount, strconv.FormatInt(s.root.ID, 10)},
			want: http.StatusForbidden, body: bodyOf("forbidden", "the credential may not act on this account")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(t, check, tt.header...)
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d (body %s)", rec.Code, tt.want, rec.Body)
			}
			if tt.body != "" && rec.Body.String() != tt.body {
				t.Errorf("body %s, want %s", rec.Body, tt.body)
			}
			for k, v := range tt.wantHdr {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if got := rec.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			if tt.want != http.StatusOK {
				for _, h := range []string{gateway.HeaderClientID, gateway.HeaderAccountID, gateway.HeaderSubject, gateway.HeaderScopes} {
					if got := rec.Header().Get(h); got != "" {
						t.Errorf("%s = %q on a refusal, want none", h, got)
					}
				}
			}
		})
	}
}

// TestCheckRateLimits: one step per check for (client, class); past the
// limit 429 with the RateLimit headers; a client's own override of a class
// replaces the class's limit; a failing limiter refuses with 503 unless
// failing open.
func TestCheckRateLimits(t *testing.T) {
	s := newCheckSetup(t)
	_, key := s.key(storage.Client{AccountID: s.root.ID})
	_, roomy := s.key(storage.Client{AccountID: s.root.ID, RateLimits: map[string]storage.RateLimit{"tight": {Rate: 1, Burst: 3}}})
	check := s.check(nil)
	tight := func(k string) int {
		t.Helper()
		rec := serve(t, check, gateway.HeaderAPIKey, k, gateway.HeaderRateClass, "tight")
		if rec.Code == http.StatusTooManyRequests {
			if got, want := rec.Body.String(), `{"error":"rate_limited","error_description":"over the rate limit of class tight"}`; got != want {
				t.Errorf("body %s, want %s", got, want)
			}
			if rec.Header().Get("RateLimit-Policy") == "" || rec.Header().Get("RateLimit") == "" {
				t.Errorf("a 429 without RateLimit headers: %v", rec.Header())
			}
		}
		return rec.Code
	}
	if got := tight(key); got != http.StatusOK {
		t.Fatalf("first check of class tight: %d, want 200", got)
	}
	if got := tight(key); got != http.StatusTooManyRequests {
		t.Errorf("second check of class tight (burst 1): %d, want 429", got)
	}
	if got := serve(t, check, gateway.HeaderAPIKey, key).Code; got != http.StatusOK {
		t.Errorf("the default class after tight is spent: %d, want 200 (classes are counted apart)", got)
	}
	for i := range 3 {
		if got := tight(roomy); got != http.StatusOK {
			t.Fatalf("check %d of the client with a burst-3 override: %d, want 200", i+1, got)
		}
	}
	if got := tight(roomy); got != http.StatusTooManyRequests {
		t.Errorf("fourth check past the override's burst: %d, want 429", got)
	}

	closed := s.check(func(o *gateway.Options) { o.Meter = failingMeter{} })
	rec := serve(t, closed, gateway.HeaderAPIKey, key)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" {
		t.Errorf("limiter down: status %d, Retry-After %q; want 503 and 1", rec.Code, rec.Header().Get("Retry-After"))
	}
	open := s.check(func(o *gateway.Options) {
		o.Meter = meter.FailOpen(failingMeter{}, slog.New(slog.DiscardHandler))
	})
	if got := serve(t, open, gateway.HeaderAPIKey, key).Code; got != http.StatusOK {
		t.Errorf("limiter down, failing open: %d, want 200", got)
	}
	if got := serve(t, open, gateway.HeaderAPIKey, "tgk_not_a_key").Code; got != http.StatusUnauthorized {
		t.Errorf("limiter down, failing open, bad key: %d, want 401 (credentials are still checked)", got)
	}
}

// TestCheckBackendFailures: a database that cannot answer the subtree
// question is 503, never a decision.
func TestCheckBackendFailures(t *testing.T) {
	s := newCheckSetup(t)
	_, key := s.key(storage.Client{AccountID: s.root.ID})
	check := s.check(func(o *gateway.Options) { o.Accounts = failingAccounts{} })
	rec := serve(t, check, gateway.HeaderAPIKey, key, gateway.HeaderAccount, strconv.FormatInt(s.child.ID, 10))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("subtree check failing: status %d, want 503", rec.Code)
	}
	if !strings.Contains(rec.Body.String(), "temporarily_unavailable") {
		t.Errorf("body %s, want temporarily_unavailable", rec.Body)
	}
	if got := serve(t, check, gateway.HeaderAPIKey, key, gateway.HeaderAccount, strconv.FormatInt(s.root.ID, 10)).Code; got != http.StatusOK {
		t.Errorf("own account with the subtree check failing: %d, want 200 (no lookup needed)", got)
	}
	noBudgets := s.check(func(o *gateway.Options) { o.Accounts = failingAccounts{budgetsDown: true} })
	if got := serve(t, noBudgets, gateway.HeaderAPIKey, key).Code; got != http.StatusServiceUnavailable {
		t.Errorf("budgets unreadable: %d, want 503 (never a decision without them)", got)
	}
}

// TestCheckBruteForce: wrong secrets of one key id are counted; past the
// threshold a wrong one is held back with 429 slow_down and Retry-After,
// while the right one still gets in (a 256-bit secret has nothing to fear
// from a block).
func TestCheckBruteForce(t *testing.T) {
	s := newCheckSetup(t)
	c, key := s.key(storage.Client{AccountID: s.root.ID})
	check := s.check(nil)
	other, err := secret.Generate()
	if err != nil {
		t.Fatal(err)
	}
	wrong, err := apikey.Format(c.ID, other)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if got := serve(t, check, gateway.HeaderAPIKey, wrong).Code; got != http.StatusUnauthorized {
			t.Fatalf("wrong secret %d: %d, want 401", i+1, got)
		}
	}
	rec := serve(t, check, gateway.HeaderAPIKey, wrong)
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("a wrong secret past the threshold: %d, want 429", rec.Code)
	}
	if got, want := rec.Body.String(), `{"error":"slow_down","error_description":"too many failed attempts for this credential; retry later"}`; got != want {
		t.Errorf("body %s, want %s", got, want)
	}
	if rec.Header().Get("Retry-After") == "" {
		t.Error("a held-back key without Retry-After")
	}
	if got := serve(t, check, gateway.HeaderAPIKey, key).Code; got != http.StatusOK {
		t.Errorf("the right secret while held back: %d, want 200", got)
	}
}
