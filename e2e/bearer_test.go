package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/pkg/signing"
	"github.com/tollgate/tollgate/pkg/token"
	"github.com/tollgate/tollgate/pkg/usage"
	"github.com/tollgate/tollgate/storage"
)

// roundTrips counts the Redis round trips of token reads and decisions
// (scripts and GETs; a pipeline is one) while on.
type roundTrips struct {
	on atomic.Bool
	n  atomic.Int64
}

func (h *roundTrips) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *roundTrips) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		switch cmd.Name() {
		case "evalsha", "eval", "evalsha_ro", "eval_ro", "get", "hmget":
			if h.on.Load() {
				h.n.Add(1)
			}
		}
		return next(ctx, cmd)
	}
}

func (h *roundTrips) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		if h.on.Load() {
			h.n.Add(1)
		}
		return next(ctx, cmds)
	}
}

// oldFormatToken stores a token of the format minted before tokens named
// their root (tg_at_<key>.<HMAC>) for c, as a server of that time did.
func (f *fixture) oldFormatToken(c storage.Client, scopes ...string) string {
	f.t.Helper()
	s, err := token.NewStrategy(f.keys.TokenSecret, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	tok, sig, err := s.Generate(f.t.Context())
	if err != nil {
		f.t.Fatal(err)
	}
	var rid [16]byte
	_, _ = rand.Read(rid[:])
	now := f.clock.now().Truncate(time.Second)
	if err := f.tokens.CreateToken(f.t.Context(), storage.Token{Signature: sig, RequestID: hex.EncodeToString(rid[:]), ClientID: c.ID,
		Generation: c.Generation, AccountID: c.AccountID, GrantType: "client_credentials", Scopes: scopes,
		IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		f.t.Fatal(err)
	}
	return tok
}

// TestCheckBearerOneRoundTrip: a token that names its root account is
// checked in one Redis round trip, one of the format before in two; both
// are good; a revoked or unknown token is refused and spends nothing of
// its credential's quota or its account's budget.
func TestCheckBearerOneRoundTrip(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		day := storage.Quota{Limit: 5, Period: storage.QuotaDay}
		f.setBudget(f.child, &storage.Budget{Quota: &storage.Quota{Limit: 5, Period: storage.QuotaDay}})
		c := f.client(storage.Client{AccountID: f.child.ID, Name: "metered", GrantTypes: []string{"client_credentials"},
			Scopes: []string{"events"}, Quota: &day})
		tok := f.tokenCC(c)
		prefix := "tg_at_" + strconv.FormatInt(f.root.ID, 10) + "." + strconv.FormatInt(f.child.ID, 10) + "." + strconv.FormatInt(c.ID, 10) + "."
		if !strings.HasPrefix(tok, prefix) {
			t.Fatalf("token %.40s…, want it to start %s", tok, prefix)
		}
		old := f.oldFormatToken(c, "events")
		remaining := func(t *testing.T, res response, want int) {
			t.Helper()
			if res.status != http.StatusOK {
				t.Fatalf("check: %d %s, want 200", res.status, res.body)
			}
			for _, name := range []string{`"quota"`, `"account-` + strconv.FormatInt(f.child.ID, 10) + `-quota"`} {
				if got, w := res.header.Get("RateLimit"), name+";r="+strconv.Itoa(want); !strings.Contains(got, w) {
					t.Errorf("RateLimit %q, want it to hold %s", got, w)
				}
			}
		}

		var hook *roundTrips
		if f.redis != nil {
			hook = &roundTrips{}
			f.redis.AddHook(hook)
			// Load the scripts: a first EVALSHA of a script Redis has
			// not seen is followed by an EVAL.
			f.check("GET", "Authorization", "Bearer "+tok, "X-Tollgate-Scope", "events")
			f.check("GET", "Authorization", "Bearer "+old, "X-Tollgate-Scope", "events")
		}
		trips := func(t *testing.T, name, tok string, want int64, left int) {
			t.Helper()
			if hook != nil {
				hook.n.Store(0)
				hook.on.Store(true)
			}
			res := f.check("GET", "Authorization", "Bearer "+tok, "X-Tollgate-Scope", "events")
			if hook != nil {
				hook.on.Store(false)
				if got := hook.n.Load(); got != want {
					t.Errorf("%s: %d Redis round trips, want %d", name, got, want)
				}
			}
			remaining(t, res, left)
		}
		spent := 0
		if hook != nil {
			spent = 2
		}
		trips(t, "a token naming its root", tok, 1, 5-spent-1)
		trips(t, "a token of the format before", old, 2, 5-spent-2)

		// Refused: revoked (through the revocation endpoint), unknown
		// (well formed, signed, never issued), and a token whose ids were
		// edited. None spends anything.
		revoked := f.tokenCC(c)
		if res := f.post("/oauth/revoke", formCT, form("token", revoked), "Authorization", basic(c.ID, f.secretOf[c.ID])); res.status != http.StatusOK {
			t.Fatalf("revoke: %d %s", res.status, res.body)
		}
		s, err := token.NewStrategy(f.keys.TokenSecret, nil)
		if err != nil {
			t.Fatal(err)
		}
		unknown, _, err := s.GenerateRooted(token.Names{Root: f.root.ID, Account: f.child.ID, Client: c.ID})
		if err != nil {
			t.Fatal(err)
		}
		edited := strings.Replace(tok, "."+strconv.FormatInt(f.child.ID, 10)+".", "."+strconv.FormatInt(f.root.ID, 10)+".", 1)
		for name, bad := range map[string]string{"revoked": revoked, "unknown": unknown, "edited account": edited} {
			for range 3 {
				if res := f.check("GET", "Authorization", "Bearer "+bad, "X-Tollgate-Scope", "events"); res.status != http.StatusUnauthorized {
					t.Errorf("%s token: %d %s, want 401", name, res.status, res.body)
				}
			}
		}
		// Refused by its record's scopes: 403, nothing spent.
		if res := f.check("GET", "Authorization", "Bearer "+tok, "X-Tollgate-Scope", "admin"); res.status != http.StatusForbidden {
			t.Errorf("a scope the token lacks: %d %s, want 403", res.status, res.body)
		}
		trips(t, "after the refusals", tok, 1, 5-spent-3)
		if got := f.countOf(f.root.ID, c.ID, "default", usage.OutcomeAllowed); got != int64(spent+3) {
			t.Errorf("allowed count %d, want %d", got, spent+3)
		}
		if got := f.countOf(f.root.ID, c.ID, "default", usage.OutcomeForbidden); got != 1 {
			t.Errorf("forbidden count %d, want 1", got)
		}

		// A user's token names its user: once the user's tokens are
		// revoked it is refused before the decision, counted as nothing.
		userTok := f.tokenDSP(f.dsp, "alice")
		if want := "." + strconv.FormatInt(f.dsp.ID, 10) + "." + strconv.FormatInt(f.alice.ID, 10) + "."; !strings.Contains(userTok, want) {
			t.Errorf("user token %.40s…: want it to name the user (%s)", userTok, want)
		}
		if res := f.check("GET", "Authorization", "Bearer "+userTok); res.status != http.StatusOK || res.header.Get("X-Tollgate-Subject") != strconv.FormatInt(f.alice.ID, 10) {
			t.Fatalf("user token: %d %s, subject %q", res.status, res.body, res.header.Get("X-Tollgate-Subject"))
		}
		if _, err := f.db.UpdateUser(context.WithoutCancel(t.Context()), f.alice.ID, func(u *storage.User) error {
			u.TokensValidAfter = f.clock.now()
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if res := f.check("GET", "Authorization", "Bearer "+userTok); res.status != http.StatusUnauthorized {
			t.Errorf("token of a user whose tokens were revoked: %d %s, want 401", res.status, res.body)
		}
		if got := f.countOf(f.root.ID, f.dsp.ID, "default", usage.OutcomeAllowed); got != 1 {
			t.Errorf("allowed count of the user's client %d, want 1 (the refused call counts nothing)", got)
		}
	}, roomyRates)
}

// TestLegacyOpaqueFormat: with tokens.legacy_opaque_format (a rolling
// upgrade from a version that reads only the format before ADR 0013), new
// tokens name no ids, so that an instance not yet upgraded accepts them;
// they work everywhere here, with the check's two round trips.
func TestLegacyOpaqueFormat(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		for _, tok := range []string{f.tokenCC(f.cc), f.tokenCC(f.dsp)} {
			rest, ok := strings.CutPrefix(tok, "tg_at_")
			if !ok || strings.Count(rest, ".") != 1 {
				t.Fatalf("token %.30s…: want tg_at_<key>.<HMAC>, naming no ids", tok)
			}
			if res := f.check("GET", "Authorization", "Bearer "+tok); res.status != http.StatusOK {
				t.Errorf("check: %d %s, want 200", res.status, res.body)
			}
			if res := f.introspect(f.rs, tok); res.status != http.StatusOK || !strings.Contains(string(res.body), `"active":true`) {
				t.Errorf("introspect: %d %s, want active", res.status, res.body)
			}
		}
	}, func(c *config.Config) { c.Tokens.LegacyOpaqueFormat = true })
}

// TestCheckJWTOneRoundTrip: a JWT access token's jti names its root
// account, account, client and user under the token's signature, so that
// its check, like an opaque token's naming its root, is one Redis round
// trip; a jti naming other ids, a bad signature and a revoked token are
// refused.
func TestCheckJWTOneRoundTrip(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		c := f.client(jwtClient(storage.Client{AccountID: f.child.ID, Name: "jwt", GrantTypes: []string{"client_credentials"}, Scopes: []string{"events"}}))
		tok := f.tokenCC(c)
		_, claims := f.verifyJWT(t, tok)
		jti, _ := claims["jti"].(string)
		if want := fmt.Sprintf("a%d.%d.%d.", f.root.ID, f.child.ID, c.ID); !strings.HasPrefix(jti, want) {
			t.Fatalf("jti %q, want it to start %s", jti, want)
		}
		var hook *roundTrips
		if f.redis != nil {
			hook = &roundTrips{}
			f.redis.AddHook(hook)
			f.check("GET", "Authorization", "Bearer "+tok) // loads the scripts
			hook.on.Store(true)
		}
		res := f.check("GET", "Authorization", "Bearer "+tok, "X-Tollgate-Scope", "events")
		if hook != nil {
			hook.on.Store(false)
			if got := hook.n.Load(); got != 1 {
				t.Errorf("a JWT naming its root: %d Redis round trips, want 1", got)
			}
		}
		if res.status != http.StatusOK || res.header.Get("X-Tollgate-Client-Id") != strconv.FormatInt(c.ID, 10) {
			t.Fatalf("check: %d %s, client %q", res.status, res.body, res.header.Get("X-Tollgate-Client-Id"))
		}

		// A user's JWT names the user: its subject is the user's.
		dsp := f.client(jwtClient(storage.Client{AccountID: f.root.ID, Name: "jwt dsp", GrantTypes: []string{"eskimi_dsp"}, Scopes: []string{"events"}}))
		userTok := f.tokenDSP(dsp, "alice")
		_, uc := f.verifyJWT(t, userTok)
		if ujti, _ := uc["jti"].(string); !strings.HasPrefix(ujti, fmt.Sprintf("a%d.%d.%d.%d.", f.root.ID, f.root.ID, dsp.ID, f.alice.ID)) {
			t.Errorf("user token jti %q: want it to name the user %d", ujti, f.alice.ID)
		}
		if res := f.check("GET", "Authorization", "Bearer "+userTok); res.status != http.StatusOK || res.header.Get("X-Tollgate-Subject") != strconv.FormatInt(f.alice.ID, 10) {
			t.Errorf("user JWT: %d %s, subject %q", res.status, res.body, res.header.Get("X-Tollgate-Subject"))
		}

		// Refused: a jti naming another account (signed with the real key,
		// so only the ids differ from what was issued), a bad signature,
		// and a revoked token.
		key := f.signingKey(t)
		claims["jti"] = strings.Replace(jti, fmt.Sprintf(".%d.", f.child.ID), fmt.Sprintf(".%d.", f.root.ID), 1)
		claims["account_id"] = f.root.ID
		otherAccount := signWith(t, key.Private, key.Algorithm, key.ID, segmentOf(mustJSON(claims)))
		// A character inside the signature: the last one carries padding
		// bits as well, which a decoder may ignore.
		i := len(tok) - 10
		flipped := byte('A')
		if tok[i] == 'A' {
			flipped = 'B'
		}
		badSignature := tok[:i] + string(flipped) + tok[i+1:]
		revoked := f.tokenCC(c)
		if res := f.post("/oauth/revoke", formCT, form("token", revoked), "Authorization", basic(c.ID, f.secretOf[c.ID])); res.status != http.StatusOK {
			t.Fatalf("revoke: %d %s", res.status, res.body)
		}
		for name, bad := range map[string]string{"another account's ids": otherAccount, "bad signature": badSignature, "revoked": revoked} {
			if res := f.check("GET", "Authorization", "Bearer "+bad); res.status != http.StatusUnauthorized {
				t.Errorf("%s: %d %s, want 401", name, res.status, res.body)
			}
		}
	}, roomyRates)
}

// signingKey is the key the fixture's installation signs with now, opened
// from its database as an instance opens it.
func (f *fixture) signingKey(t *testing.T) *signing.Key {
	t.Helper()
	ring, err := signing.New(signing.Options{Store: f.signingKeys, KeyEncryptionKey: f.keys.KeyEncryptionKey, Now: f.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	if err := ring.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	key, err := ring.Signer()
	if err != nil {
		t.Fatal(err)
	}
	return key
}
