package conformance

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// RunTokens runs the storage.Tokens suite against stores that expire tokens
// on the real clock (Redis TTLs). Expiry is checked with tokens that live a
// fraction of a second, so the suite waits about 200 ms in total.
//
// newStore is called once per subtest and must answer an empty store.
//
// Beyond the comments on storage.Tokens, the suite pins down:
//   - IssuedAt and ExpiresAt come back in UTC, truncated to the millisecond
//     (Redis TTLs have millisecond precision).
//   - Scopes and Audience keep their order; nil and empty both come back with
//     length 0.
//   - Signatures and request ids are opaque byte strings: base64url, glob
//     characters, spaces, NUL bytes and UTF-8 all work.
//   - CreateToken rejects with an error, and stores nothing, a token without
//     a signature or request id, or one whose ExpiresAt is less than a
//     millisecond after now (including the zero time). The error is none of
//     the sentinels.
//   - A duplicate signature answers ErrAlreadyExists and leaves the stored
//     token, and the request it belongs to, untouched.
//   - GetToken of an empty signature answers ErrNotFound.
//   - Signatures and request ids that differ only in form (a base64url
//     signature and its decoded bytes, a hex request id, the UUID with the
//     same digits and their bytes) are different ones.
//   - A revoked token's signature can be stored again, except by
//     CreateTokenOnce, which takes no signature held by a token that has
//     not expired, revoked or not.
//
// Every test runs twice: as written, and (under "Rooted") with every
// signature and request id rooted (storage.Rooted), as the tokens of a
// format that names its root account are stored.
func RunTokens(t *testing.T, newStore func(t *testing.T) storage.Tokens) {
	runTokens(t, func(t *testing.T) (storage.Tokens, tokenClock) {
		return newStore(t), realClock{}
	})
}

// RunTokensWithClock runs the suite of RunTokens against a store that reads
// time from now, a fake clock the suite moves forward, so no test waits.
func RunTokensWithClock(t *testing.T, newStore func(t *testing.T, now func() time.Time) storage.Tokens) {
	runTokens(t, func(t *testing.T) (storage.Tokens, tokenClock) {
		c := newFakeClock()
		return newStore(t, c.Now), c
	})
}

// tokenClock is the time the suite builds tokens with and lets pass.
type tokenClock interface {
	Now() time.Time
	// Wait lets d pass for the store: a fake clock advances, the real one
	// sleeps.
	Wait(d time.Duration)
}

type realClock struct{}

func (realClock) Now() time.Time       { return time.Now() }
func (realClock) Wait(d time.Duration) { time.Sleep(d) }

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	// Not a round number, so that truncation to the millisecond shows.
	return &fakeClock{now: time.Date(2030, 6, 15, 10, 20, 30, 123456789, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Wait(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func runTokens(t *testing.T, newStore func(t *testing.T) (storage.Tokens, tokenClock)) {
	tests := []struct {
		name string
		run  func(t *testing.T, s storage.Tokens, clock tokenClock)
	}{
		{"RoundTrip", testTokenRoundTrip},
		{"NotFound", testTokenNotFound},
		{"Delete", testTokenDelete},
		{"RevokeRequest", testTokenRevokeRequest},
		{"Expiry", testTokenExpiry},
		{"Rejected", testTokenRejected},
		{"Duplicate", testTokenDuplicate},
		{"CreateOnce", testTokenCreateOnce},
		{"LookAlikes", testTokenLookAlikes},
		{"Isolation", testTokenIsolation},
		{"Concurrent", testTokenConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clock := newStore(t)
			tt.run(t, s, clock)
		})
	}
	t.Run("Rooted", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s, clock := newStore(t)
				tt.run(t, rootedTokens{s: s, root: 4711}, clock)
			})
		}
	})
}

// rootedTokens roots every signature and request id it is given
// (storage.Rooted, an empty one staying empty) and unroots those it
// returns, so that the suite, written for any ids, runs on the layout of
// rooted ones.
type rootedTokens struct {
	s    storage.Tokens
	root int64
}

func (r rootedTokens) in(id string) string {
	if id == "" {
		return ""
	}
	return storage.Rooted(r.root, id)
}

func (r rootedTokens) out(t storage.Token) (storage.Token, error) {
	for _, id := range []*string{&t.Signature, &t.RequestID} {
		root, rest, ok := storage.SplitRooted(*id)
		if !ok || root != r.root {
			return storage.Token{}, fmt.Errorf("id %q: want it rooted at %d", *id, r.root)
		}
		*id = rest
	}
	return t, nil
}

func (r rootedTokens) CreateToken(ctx context.Context, t storage.Token) error {
	t.Signature, t.RequestID = r.in(t.Signature), r.in(t.RequestID)
	return r.s.CreateToken(ctx, t)
}

func (r rootedTokens) CreateTokenOnce(ctx context.Context, t storage.Token) error {
	t.Signature, t.RequestID = r.in(t.Signature), r.in(t.RequestID)
	return r.s.CreateTokenOnce(ctx, t)
}

func (r rootedTokens) GetToken(ctx context.Context, signature string) (storage.Token, error) {
	t, err := r.s.GetToken(ctx, r.in(signature))
	if err != nil {
		return storage.Token{}, err
	}
	return r.out(t)
}

func (r rootedTokens) DeleteToken(ctx context.Context, signature string) error {
	return r.s.DeleteToken(ctx, r.in(signature))
}

func (r rootedTokens) RevokeRequest(ctx context.Context, requestID string) error {
	return r.s.RevokeRequest(ctx, r.in(requestID))
}

func testTokenRoundTrip(t *testing.T, s storage.Tokens, clock tokenClock) {
	// A zone other than UTC, and times with nanoseconds, so that both
	// normalisations show.
	cet := time.FixedZone("CET", 3600)
	now := clock.Now().In(cet)
	tests := []struct {
		name  string
		token storage.Token
	}{
		{
			name:  "typical",
			token: newToken(now),
		},
		{
			name: "minimal",
			token: storage.Token{
				Signature: randomSignature(),
				RequestID: randomRequestID(),
				ClientID:  1,
				IssuedAt:  now,
				ExpiresAt: now.Add(time.Minute),
			},
		},
		{
			name: "empty slices",
			token: func() storage.Token {
				tok := newToken(now)
				tok.Scopes, tok.Audience = []string{}, []string{}
				return tok
			}(),
		},
		{
			name: "odd bytes",
			token: func() storage.Token {
				tok := newToken(now)
				tok.Signature = "-_" + randomSignature() + "_-"
				tok.RequestID = "req:*?[a-z]{x} \x00\xff é " + randomRequestID()
				tok.Subject = "sub\x00ject"
				tok.Username = "ålice 🙂"
				tok.Scopes = []string{"", "a b", "ü", "\x00"}
				tok.Audience = []string{"https://api.example.com/v1?x=1#y"}
				return tok
			}(),
		},
		{
			name: "glob signature",
			token: func() storage.Token {
				tok := newToken(now)
				tok.Signature = "*?[" + randomSignature() + "]\\ \x00:"
				return tok
			}(),
		},
		{
			name: "uppercase hex request id",
			token: func() storage.Token {
				tok := newToken(now)
				tok.RequestID = strings.ToUpper(randomRequestID())
				return tok
			}(),
		},
		{
			name: "odd-length hex request id",
			token: func() storage.Token {
				tok := newToken(now)
				tok.RequestID = "abc"
				return tok
			}(),
		},
		{
			name: "uuid request id",
			token: func() storage.Token {
				tok := newToken(now)
				tok.RequestID = "3f2c7a4e-9b1d-4c55-8e2a-6d0f1b9c7e31"
				return tok
			}(),
		},
		{
			name: "extreme numbers",
			token: func() storage.Token {
				tok := newToken(now)
				tok.ClientID, tok.Generation, tok.AccountID = math.MaxInt64, math.MinInt64, -1
				return tok
			}(),
		},
		{
			name: "zero issued at",
			token: func() storage.Token {
				tok := newToken(now)
				tok.IssuedAt = time.Time{}
				return tok
			}(),
		},
		{
			name: "lives a year",
			token: func() storage.Token {
				tok := newToken(now)
				tok.ExpiresAt = now.AddDate(1, 0, 0)
				return tok
			}(),
		},
		{
			name: "long strings",
			token: func() storage.Token {
				tok := newToken(now)
				tok.Signature = strings.Repeat("s", 300)
				tok.RequestID = strings.Repeat("r", 300)
				tok.Username = strings.Repeat("u", 1000)
				tok.Scopes = make([]string, 200)
				for i := range tok.Scopes {
					tok.Scopes[i] = fmt.Sprintf("scope:%d", i)
				}
				return tok
			}(),
		},
		{
			name: "dpop bound",
			token: func() storage.Token {
				tok := newToken(now)
				tok.JKT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
				return tok
			}(),
		},
		{
			name: "custom grant type",
			token: func() storage.Token {
				tok := newToken(now)
				tok.GrantType = "urn:example:custom"
				return tok
			}(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.CreateToken(t.Context(), tt.token); err != nil {
				t.Fatalf("CreateToken: got error %v, want nil", err)
			}
			got, err := s.GetToken(t.Context(), tt.token.Signature)
			if err != nil {
				t.Fatalf("GetToken: got error %v, want nil", err)
			}
			checkToken(t, got, tt.token)
		})
	}
}

func testTokenNotFound(t *testing.T, s storage.Tokens, clock tokenClock) {
	tok := newToken(clock.Now())
	if err := s.CreateToken(t.Context(), tok); err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	tests := []struct {
		name      string
		signature string
	}{
		{"unknown", randomSignature()},
		{"empty", ""},
		{"prefix of a stored one", tok.Signature[:len(tok.Signature)-1]},
		{"stored one plus a byte", tok.Signature + "x"},
		{"request id of a stored one", tok.RequestID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.GetToken(t.Context(), tt.signature)
			if !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("GetToken: got error %v, want ErrNotFound", err)
			}
		})
	}
}

func testTokenDelete(t *testing.T, s storage.Tokens, clock tokenClock) {
	now := clock.Now()
	tok := newToken(now)
	sibling := newToken(now)
	sibling.RequestID = tok.RequestID
	mustCreate(t, s, tok, sibling)

	if err := s.DeleteToken(t.Context(), tok.Signature); err != nil {
		t.Fatalf("DeleteToken: got error %v, want nil", err)
	}
	wantNotFound(t, s, tok.Signature)
	wantFound(t, s, sibling)

	tests := []struct {
		name      string
		signature string
	}{
		{"again", tok.Signature},
		{"unknown", randomSignature()},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.DeleteToken(t.Context(), tt.signature); err != nil {
				t.Errorf("DeleteToken: got error %v, want nil", err)
			}
		})
	}
	wantFound(t, s, sibling)

	// The request still revokes the token that is left.
	if err := s.RevokeRequest(t.Context(), tok.RequestID); err != nil {
		t.Fatalf("RevokeRequest: %v", err)
	}
	wantNotFound(t, s, sibling.Signature)

	// A deleted signature can be stored again.
	if err := s.CreateToken(t.Context(), tok); err != nil {
		t.Fatalf("CreateToken after DeleteToken: got error %v, want nil", err)
	}
	wantFound(t, s, tok)
}

func testTokenRevokeRequest(t *testing.T, s storage.Tokens, clock tokenClock) {
	now := clock.Now()
	a1, b1 := newToken(now), newToken(now)
	a2 := newToken(now)
	a2.RequestID = a1.RequestID
	a2.ExpiresAt = now.Add(2 * time.Hour) // a different lifetime in the same request
	mustCreate(t, s, a1, a2, b1)

	if err := s.RevokeRequest(t.Context(), a1.RequestID); err != nil {
		t.Fatalf("RevokeRequest: got error %v, want nil", err)
	}
	wantNotFound(t, s, a1.Signature)
	wantNotFound(t, s, a2.Signature)
	wantFound(t, s, b1)

	tests := []struct {
		name      string
		requestID string
	}{
		{"again", a1.RequestID},
		{"unknown", randomRequestID()},
		{"empty", ""},
		{"signature of a stored token", b1.Signature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.RevokeRequest(t.Context(), tt.requestID); err != nil {
				t.Errorf("RevokeRequest: got error %v, want nil", err)
			}
		})
	}
	wantFound(t, s, b1)

	// A revoked request may get new tokens, and they are revoked again.
	a3 := newToken(now)
	a3.RequestID = a1.RequestID
	mustCreate(t, s, a3)
	wantFound(t, s, a3)
	if err := s.RevokeRequest(t.Context(), a1.RequestID); err != nil {
		t.Fatalf("RevokeRequest: %v", err)
	}
	wantNotFound(t, s, a3.Signature)
	wantFound(t, s, b1)

	// A revoked token's signature is free again, in another request or in
	// its own.
	c1, c2 := newToken(now), newToken(now)
	c1.Signature = a2.Signature
	c2.Signature, c2.RequestID = a3.Signature, a3.RequestID
	mustCreate(t, s, c1, c2)
	wantFound(t, s, c1)
	wantFound(t, s, c2)
}

// testTokenLookAlikes stores tokens whose signatures and request ids differ
// only in form, as a store that packs base64url, hex or UUIDs into bytes
// might confuse them, and revokes the requests one by one.
func testTokenLookAlikes(t *testing.T, s storage.Tokens, clock tokenClock) {
	now := clock.Now()
	raw := randomBytes(32)
	digits := hex.EncodeToString(raw[:16])
	uuid := digits[0:8] + "-" + digits[8:12] + "-" + digits[12:16] + "-" + digits[16:20] + "-" + digits[20:32]
	signatures := []string{
		base64.RawURLEncoding.EncodeToString(raw),
		string(raw),
		base64.RawStdEncoding.EncodeToString(raw),
		base64.URLEncoding.EncodeToString(raw), // padded
		"AA", "\x00", "AB", "A",
	}
	requestIDs := []string{
		digits,
		uuid,
		string(raw[:16]),
		strings.ToUpper(digits),
		strings.ToUpper(uuid),
		"ab", "\xab", "AB",
	}
	var tokens []storage.Token
	seen := map[string]bool{}
	for _, requestID := range requestIDs {
		if seen[requestID] {
			continue
		}
		seen[requestID] = true
		tok := newToken(now)
		tok.RequestID = requestID
		tokens = append(tokens, tok)
	}
	seen = map[string]bool{}
	for _, signature := range signatures {
		if seen[signature] { // the standard alphabet may give the same
			continue
		}
		seen[signature] = true
		tok := newToken(now)
		tok.Signature = signature
		tokens = append(tokens, tok)
	}
	mustCreate(t, s, tokens...)
	for _, tok := range tokens {
		wantFound(t, s, tok)
	}
	for i, tok := range tokens {
		if err := s.RevokeRequest(t.Context(), tok.RequestID); err != nil {
			t.Fatalf("RevokeRequest: %v", err)
		}
		wantNotFound(t, s, tok.Signature)
		for _, other := range tokens[i+1:] {
			wantFound(t, s, other)
		}
	}
}

func testTokenExpiry(t *testing.T, s storage.Tokens, clock tokenClock) {
	const lifetime = 150 * time.Millisecond
	now := clock.Now()

	// long is created first: a store that gave the request's index the
	// lifetime of its latest token would lose long from it when short
	// expires.
	long := newToken(now)
	short := newToken(now)
	short.RequestID = long.RequestID
	short.ExpiresAt = now.Add(lifetime)
	alone := newToken(now)
	alone.ExpiresAt = now.Add(lifetime)
	mustCreate(t, s, long, short, alone)

	// On the real clock a slow machine may already have let short expire;
	// only check it while it is clearly alive.
	if clock.Now().Add(50 * time.Millisecond).Before(short.ExpiresAt) {
		wantFound(t, s, short)
	}

	clock.Wait(short.ExpiresAt.Add(20 * time.Millisecond).Sub(clock.Now()))

	wantNotFound(t, s, short.Signature)
	wantNotFound(t, s, alone.Signature)
	wantFound(t, s, long)

	// An expired signature is free again.
	again := short
	again.ExpiresAt = clock.Now().Add(time.Hour)
	if err := s.CreateToken(t.Context(), again); err != nil {
		t.Fatalf("CreateToken of an expired signature: got error %v, want nil", err)
	}
	wantFound(t, s, again)

	if err := s.RevokeRequest(t.Context(), long.RequestID); err != nil {
		t.Fatalf("RevokeRequest: %v", err)
	}
	wantNotFound(t, s, long.Signature)
	wantNotFound(t, s, again.Signature)
}

func testTokenRejected(t *testing.T, s storage.Tokens, clock tokenClock) {
	tests := []struct {
		name   string
		change func(tok *storage.Token, now time.Time)
	}{
		{"expired", func(tok *storage.Token, now time.Time) { tok.ExpiresAt = now.Add(-time.Second) }},
		{"expires now", func(tok *storage.Token, now time.Time) { tok.ExpiresAt = now }},
		{"zero expiry", func(tok *storage.Token, now time.Time) { tok.ExpiresAt = time.Time{} }},
		{"empty signature", func(tok *storage.Token, now time.Time) { tok.Signature = "" }},
		{"empty request id", func(tok *storage.Token, now time.Time) { tok.RequestID = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := clock.Now()
			tok := newToken(now)
			tt.change(&tok, now)
			err := s.CreateToken(t.Context(), tok)
			if err == nil {
				t.Fatal("CreateToken: got nil error, want an error")
			}
			for _, sentinel := range []error{storage.ErrNotFound, storage.ErrAlreadyExists, storage.ErrConflict} {
				if errors.Is(err, sentinel) {
					t.Errorf("CreateToken: got error %v, want none of the sentinels", err)
				}
			}
			wantNotFound(t, s, tok.Signature)

			// Nothing was indexed either: a valid token of the same request
			// is the only one the request revokes, and revoking works.
			other := newToken(now)
			if tok.RequestID != "" {
				other.RequestID = tok.RequestID
			}
			mustCreate(t, s, other)
			if err := s.RevokeRequest(t.Context(), other.RequestID); err != nil {
				t.Fatalf("RevokeRequest: %v", err)
			}
			wantNotFound(t, s, other.Signature)
		})
	}
}

func testTokenDuplicate(t *testing.T, s storage.Tokens, clock tokenClock) {
	now := clock.Now()
	first := newToken(now)
	mustCreate(t, s, first)

	dup := newToken(now)
	dup.Signature = first.Signature
	err := s.CreateToken(t.Context(), dup)
	if !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("CreateToken of a duplicate: got error %v, want ErrAlreadyExists", err)
	}
	wantFound(t, s, first)

	// The duplicate did not join its request: revoking it leaves first.
	if err := s.RevokeRequest(t.Context(), dup.RequestID); err != nil {
		t.Fatalf("RevokeRequest: %v", err)
	}
	wantFound(t, s, first)

	if err := s.RevokeRequest(t.Context(), first.RequestID); err != nil {
		t.Fatalf("RevokeRequest: %v", err)
	}
	wantNotFound(t, s, first.Signature)
}

func testTokenIsolation(t *testing.T, s storage.Tokens, clock tokenClock) {
	tok := newToken(clock.Now())
	want := cloneToken(tok)
	mustCreate(t, s, tok)

	// Neither the caller's slices nor the returned ones alias the store.
	tok.Scopes[0], tok.Audience[0] = "changed", "changed"
	got, err := s.GetToken(t.Context(), tok.Signature)
	if err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	checkToken(t, got, want)
	got.Scopes[0], got.Audience[0] = "changed", "changed"
	wantFound(t, s, want)
}

func testTokenConcurrent(t *testing.T, s storage.Tokens, clock tokenClock) {
	const (
		workers  = 50
		requests = 5
	)
	now := clock.Now()
	requestIDs := make([]string, requests)
	for i := range requestIDs {
		requestIDs[i] = randomRequestID()
	}
	shared := newToken(now)
	mustCreate(t, s, shared)

	// Phase 1: every worker creates its own token and reads it and a shared
	// one back, and all race to create the same signature.
	tokens := make([]storage.Token, workers)
	for i := range tokens {
		tokens[i] = newToken(now)
		tokens[i].RequestID = requestIDs[i%requests]
	}
	contested := newToken(now)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created int
	)
	for i := range workers {
		wg.Go(func() {
			ctx := t.Context()
			if err := s.CreateToken(ctx, tokens[i]); err != nil {
				t.Errorf("CreateToken: %v", err)
				return
			}
			for _, want := range []storage.Token{tokens[i], shared} {
				got, err := s.GetToken(ctx, want.Signature)
				if err != nil {
					t.Errorf("GetToken: %v", err)
					continue
				}
				if got.RequestID != want.RequestID {
					t.Errorf("GetToken: got request id %q, want %q", got.RequestID, want.RequestID)
				}
			}
			c := contested
			c.RequestID = requestIDs[i%requests]
			switch err := s.CreateToken(ctx, c); {
			case err == nil:
				mu.Lock()
				created++
				mu.Unlock()
			case !errors.Is(err, storage.ErrAlreadyExists):
				t.Errorf("CreateToken of a contested signature: got error %v, want nil or ErrAlreadyExists", err)
			}
		})
	}
	wg.Wait()
	if created != 1 {
		t.Errorf("contested signature: got %d successful creates, want 1", created)
	}
	for _, tok := range tokens {
		wantFound(t, s, tok)
	}

	// Phase 2: revoke every request while others read and delete.
	for i, requestID := range requestIDs {
		wg.Go(func() {
			if err := s.RevokeRequest(t.Context(), requestID); err != nil {
				t.Errorf("RevokeRequest: %v", err)
			}
		})
		wg.Go(func() {
			if err := s.DeleteToken(t.Context(), tokens[i].Signature); err != nil {
				t.Errorf("DeleteToken: %v", err)
			}
		})
		wg.Go(func() {
			_, err := s.GetToken(t.Context(), tokens[i+requests].Signature)
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("GetToken: got error %v, want nil or ErrNotFound", err)
			}
		})
	}
	wg.Wait()
	for _, tok := range tokens {
		wantNotFound(t, s, tok.Signature)
	}
	wantNotFound(t, s, contested.Signature)
	wantFound(t, s, shared)
}

// newToken answers a typical token issued at now for an hour, with a fresh
// signature and request id.
func newToken(now time.Time) storage.Token {
	return storage.Token{
		Signature:  randomSignature(),
		RequestID:  randomRequestID(),
		ClientID:   1234,
		Generation: 3,
		AccountID:  77,
		Subject:    "42",
		Username:   "alice",
		GrantType:  "client_credentials",
		Scopes:     []string{"events", "contacts:read", "reports"},
		Audience:   []string{"https://api.example.com"},
		IssuedAt:   now,
		ExpiresAt:  now.Add(time.Hour),
	}
}

// randomSignature answers a value shaped like the HMAC signature of a fosite
// token: 32 random bytes in unpadded base64url.
func randomSignature() string {
	return base64.RawURLEncoding.EncodeToString(randomBytes(32))
}

// randomRequestID answers 32 lowercase hex characters.
func randomRequestID() string {
	return hex.EncodeToString(randomBytes(16))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return b
}

func cloneToken(tok storage.Token) storage.Token {
	tok.Scopes = slices.Clone(tok.Scopes)
	tok.Audience = slices.Clone(tok.Audience)
	return tok
}

func mustCreate(t *testing.T, s storage.Tokens, tokens ...storage.Token) {
	t.Helper()
	for _, tok := range tokens {
		if err := s.CreateToken(t.Context(), tok); err != nil {
			t.Fatalf("CreateToken: %v", err)
		}
	}
}

func wantFound(t *testing.T, s storage.Tokens, want storage.Token) {
	t.Helper()
	got, err := s.GetToken(t.Context(), want.Signature)
	if err != nil {
		t.Errorf("GetToken: got error %v, want the token", err)
		return
	}
	checkToken(t, got, want)
}

func wantNotFound(t *testing.T, s storage.Tokens, signature string) {
	t.Helper()
	if _, err := s.GetToken(t.Context(), signature); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetToken: got error %v, want ErrNotFound", err)
	}
}

// checkToken compares got with want as the suite's contract has it: times
// in UTC to the millisecond, slices by their elements.
func checkToken(t *testing.T, got, want storage.Token) {
	t.Helper()
	checkString := func(field, got, want string) {
		if got != want {
			t.Errorf("%s: got %q, want %q", field, got, want)
		}
	}
	checkInt := func(field string, got, want int64) {
		if got != want {
			t.Errorf("%s: got %d, want %d", field, got, want)
		}
	}
	checkStrings := func(field string, got, want []string) {
		if !slices.Equal(got, want) {
			t.Errorf("%s: got %q, want %q", field, got, want)
		}
	}
	checkTime := func(field string, got, want time.Time) {
		want = want.Truncate(time.Millisecond).UTC()
		if !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("%s: got %s, want %s", field, got, want)
		}
	}
	checkString("Signature", got.Signature, want.Signature)
	checkString("RequestID", got.RequestID, want.RequestID)
	checkString("JKT", got.JKT, want.JKT)
	checkInt("ClientID", got.ClientID, want.ClientID)
	checkInt("Generation", got.Generation, want.Generation)
	checkInt("AccountID", got.AccountID, want.AccountID)
	checkString("Subject", got.Subject, want.Subject)
	checkString("Username", got.Username, want.Username)
	checkString("GrantType", got.GrantType, want.GrantType)
	checkStrings("Scopes", got.Scopes, want.Scopes)
	checkStrings("Audience", got.Audience, want.Audience)
	checkTime("IssuedAt", got.IssuedAt, want.IssuedAt)
	checkTime("ExpiresAt", got.ExpiresAt, want.ExpiresAt)
}

func testTokenCreateOnce(t *testing.T, s storage.Tokens, clock tokenClock) {
	ctx := t.Context()
	// A new signature is stored, and found.
	tok := newToken(clock.Now())
	if err := s.CreateTokenOnce(ctx, tok); err != nil {
		t.Fatalf("CreateTokenOnce of a new signature: %v", err)
	}
	if _, err := s.GetToken(ctx, tok.Signature); err != nil {
		t.Fatalf("GetToken after CreateTokenOnce: %v", err)
	}
	// A live one is not taken, by either create.
	other := tok
	other.RequestID = randomRequestID()
	if err := s.CreateTokenOnce(ctx, other); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("CreateTokenOnce of a live signature: got %v, want ErrAlreadyExists", err)
	}
	// A revoked one is not taken by CreateTokenOnce, with its request id or
	// another, and stays revoked.
	if err := s.RevokeRequest(ctx, tok.RequestID); err != nil {
		t.Fatalf("RevokeRequest: %v", err)
	}
	for _, again := range []storage.Token{tok, other} {
		if err := s.CreateTokenOnce(ctx, again); !errors.Is(err, storage.ErrAlreadyExists) {
			t.Fatalf("CreateTokenOnce of a revoked signature: got %v, want ErrAlreadyExists", err)
		}
	}
	if _, err := s.GetToken(ctx, tok.Signature); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetToken of the revoked token after CreateTokenOnce: got %v, want ErrNotFound", err)
	}
	// Once the revoked token has expired, its signature is free again.
	short := newToken(clock.Now())
	short.ExpiresAt = clock.Now().Add(time.Second)
	if err := s.CreateTokenOnce(ctx, short); err != nil {
		t.Fatalf("CreateTokenOnce: %v", err)
	}
	if err := s.RevokeRequest(ctx, short.RequestID); err != nil {
		t.Fatalf("RevokeRequest: %v", err)
	}
	clock.Wait(1100 * time.Millisecond)
	short.ExpiresAt = clock.Now().Add(time.Minute)
	if err := s.CreateTokenOnce(ctx, short); err != nil {
		t.Fatalf("CreateTokenOnce of an expired revoked signature: %v", err)
	}
	if _, err := s.GetToken(ctx, short.Signature); err != nil {
		t.Fatalf("GetToken after CreateTokenOnce over an expired token: %v", err)
	}
}
