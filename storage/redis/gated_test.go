package redis_test

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/storage"
	tgredis "github.com/tollgate/tollgate/storage/redis"
)

// gatedCounter is a body that spends: it increments its one key and
// returns the count.
const gatedCounter = `
return {redis.call('INCR', KEYS[kb + 1]), ARGV[ab + 1]}
`

func TestGetTokenThen(t *testing.T) {
	s, client, prefix := newStore(t)
	testGetTokenThen(t, s, client, prefix)
}

// testGetTokenThen: the gate runs its body only for a live rooted token
// whose record holds the terms, and never spends otherwise.
func testGetTokenThen(t *testing.T, s *tgredis.Store, client goredis.UniversalClient, prefix string) {
	const root = 77
	ctx := t.Context()
	g := tgredis.NewGated(gatedCounter)
	counter := prefix + "spent:{a" + strconv.Itoa(root) + "}"
	spent := func() int64 {
		n, err := client.Get(ctx, counter).Int64()
		if err != nil && !errors.Is(err, goredis.Nil) {
			t.Fatal(err)
		}
		return n
	}
	now := time.Now().Truncate(time.Second)
	tok := typicalToken(now, 1)
	tok.Signature = storage.Rooted(root, tok.Signature)
	tok.RequestID = storage.Rooted(root, tok.RequestID)
	if err := s.CreateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	terms := storage.TokenTerms{ClientID: tok.ClientID, AccountID: tok.AccountID, Subject: tok.Subject, Generations: []int64{tok.Generation},
		IssuedAfter: now.Add(-time.Minute), Scopes: []string{"events"}}

	got, out, err := s.GetTokenThen(ctx, tok.Signature, terms, g, []string{counter}, "echo")
	if err != nil {
		t.Fatalf("GetTokenThen: %v", err)
	}
	if got.Signature != tok.Signature || got.RequestID != tok.RequestID || got.ClientID != tok.ClientID {
		t.Errorf("token: got %+v, want %+v", got, tok)
	}
	if len(out) != 2 || out[0] != int64(1) || out[1] != "echo" {
		t.Errorf("body returned %v, want [1 echo]", out)
	}

	refused := map[string]func(*storage.TokenTerms){
		"another client":          func(tt *storage.TokenTerms) { tt.ClientID++ },
		"another account":         func(tt *storage.TokenTerms) { tt.AccountID++ },
		"another user":            func(tt *storage.TokenTerms) { tt.Subject = "43" },
		"no user":                 func(tt *storage.TokenTerms) { tt.Subject = "" },
		"another generation":      func(tt *storage.TokenTerms) { tt.Generations = []int64{2, 3} },
		"issued before a cut-off": func(tt *storage.TokenTerms) { tt.IssuedAfter = now },
		"a scope it lacks":        func(tt *storage.TokenTerms) { tt.Scopes = []string{"events", "admin"} },
		"bound to a key":          func(tt *storage.TokenTerms) { tt.JKT = jkt("k") },
	}
	for name, change := range refused {
		tt := terms
		change(&tt)
		got, _, err := s.GetTokenThen(ctx, tok.Signature, tt, g, []string{counter}, "echo")
		if !errors.Is(err, tgredis.ErrTermsRefused) || got.Signature != tok.Signature {
			t.Errorf("%s: got %q, %v, want the token and ErrTermsRefused", name, got.Signature, err)
		}
	}
	unknown := storage.Rooted(root, fositeSignature(2))
	if _, _, err := s.GetTokenThen(ctx, unknown, terms, g, []string{counter}, "echo"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("unknown token: got %v, want ErrNotFound", err)
	}
	if err := s.RevokeRequest(ctx, tok.RequestID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.GetTokenThen(ctx, tok.Signature, terms, g, []string{counter}, "echo"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("revoked token: got %v, want ErrNotFound", err)
	}
	if _, _, err := s.GetTokenThen(ctx, fositeSignature(1), terms, g, []string{counter}, "echo"); err == nil {
		t.Error("a signature that is not rooted: got no error")
	}
	if n := spent(); n != 1 {
		t.Errorf("spent %d times, want once: only the good token's call", n)
	}
}

func jkt(seed string) string {
	sum := sha256.Sum256([]byte(seed))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// The script reads the terms off the record exactly as TokenTerms.Hold
// does: random records against random terms near them.
func TestGetTokenThenAgreesWithHold(t *testing.T) {
	s, _, prefix := newStore(t)
	ctx := t.Context()
	g := tgredis.NewGated(gatedCounter)
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(ss ...string) []string {
		var out []string
		for _, x := range ss {
			if rng.IntN(2) == 0 {
				out = append(out, x)
			}
		}
		return out
	}
	now := time.Now().Truncate(time.Second)
	held := map[bool]int{}
	for i := range 300 {
		const root = 5
		tok := storage.Token{
			Signature:  storage.Rooted(root, fmt.Sprintf("sig-%d", i)),
			RequestID:  storage.Rooted(root, fmt.Sprintf("%032x", i)),
			ClientID:   rng.Int64N(3) + 1,
			Generation: rng.Int64N(3) - 1,
			AccountID:  rng.Int64N(3) + 1<<40,
			GrantType:  []string{"client_credentials", "custom grant", ""}[rng.IntN(3)],
			Scopes:     pick("a", "b", "c", "ü d"),
			Audience:   pick("https://x", "y"),
			IssuedAt:   now.Add(-time.Duration(rng.IntN(3)) * time.Second),
			ExpiresAt:  now.Add(time.Hour),
		}
		if rng.IntN(2) == 0 {
			tok.Subject, tok.Username = "42", "alice"
		}
		if rng.IntN(2) == 0 {
			tok.JKT = jkt(strconv.Itoa(rng.IntN(2)))
		}
		if err := s.CreateToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		// The record's own terms, each changed one time in four.
		terms := storage.TokenTerms{ClientID: tok.ClientID, AccountID: tok.AccountID, Subject: tok.Subject, Generations: []int64{tok.Generation},
			IssuedAfter: tok.IssuedAt.Add(-time.Second), JKT: tok.JKT, Scopes: pick(tok.Scopes...)}
		change := func() bool { return rng.IntN(4) == 0 }
		if change() {
			terms.ClientID = rng.Int64N(3) + 1
		}
		if change() {
			terms.AccountID = rng.Int64N(3) + 1<<40
		}
		if change() {
			terms.Subject = []string{"", "42", "4"}[rng.IntN(3)]
		}
		if change() {
			terms.Generations = []int64{rng.Int64N(3) - 1, rng.Int64N(3) - 1}[:rng.IntN(3)]
		}
		if change() {
			terms.IssuedAfter = now.Add(-time.Duration(rng.IntN(4)) * time.Second)
		}
		if change() {
			terms.JKT = []string{"", jkt("0"), jkt("1")}[rng.IntN(3)]
		}
		if change() {
			terms.Scopes = pick("a", "b", "ü d", "e")
		}
		stored, err := s.GetToken(ctx, tok.Signature)
		if err != nil {
			t.Fatal(err)
		}
		want := terms.Hold(stored)
		_, _, err = s.GetTokenThen(ctx, tok.Signature, terms, g, []string{prefix + "n:{a5}"})
		if got := err == nil; got != want || (err != nil && !errors.Is(err, tgredis.ErrTermsRefused)) {
			t.Fatalf("record %+v, terms %+v: script held %v (error %v), Hold %v", stored, terms, got, err, want)
		}
		held[want]++
	}
	if held[true] < 30 || held[false] < 30 {
		t.Errorf("held %d times, refused %d: want both often", held[true], held[false])
	}
}
