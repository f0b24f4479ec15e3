package e2e

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/pkg/apikey"
	"github.com/tollgate/tollgate/storage"
)

// apiKey creates a key credential for user u and returns it with its key
// string.
func (f *fixture) apiKey(u storage.User, scopes ...string) (storage.Client, string) {
	f.t.Helper()
	c := f.client(storage.Client{AccountID: u.AccountID, OwnerID: u.ID, Kind: storage.KindKey, Name: "key of " + u.Username,
		GrantTypes: []string{"client_credentials"}, Scopes: scopes})
	key, err := apikey.Format(c.ID, f.secretOf[c.ID])
	if err != nil {
		f.t.Fatal(err)
	}
	f.secrets = append(f.secrets, key)
	return c, key
}

func TestAPIKeyAuthentication(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		c, key := f.apiKey(f.alice, "events", "contacts")
		mistyped := typo(key)
		ok := func(name string, res response) {
			t.Helper()
			if res.status != http.StatusOK {
				t.Errorf("%s: status %d body %s, want 200", name, res.status, res.body)
			}
		}
		for _, user := range []string{"", "anything", "alice", "42"} {
			ok("Basic with user "+strconv.Quote(user), f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basicRaw(user, key)))
		}
		ok("key as client_secret", f.post("/oauth/token", formCT, form("grant_type", "client_credentials", "client_secret", key)))
		ok("key as client_secret with client_id", f.post("/oauth/token", "application/json",
			`{"grant_type":"client_credentials","client_id":`+strconv.FormatInt(c.ID, 10)+`,"client_secret":"`+key+`"}`))
		wantError(t, f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basicRaw("x", mistyped)), 401, "invalid_client")
		wantError(t, f.post("/oauth/token", formCT, form("grant_type", "client_credentials", "client_id", "1", "client_secret", key)), 400, "invalid_request")
		// A well-formed key whose secret is wrong.
		other, err := apikey.Format(c.ID, strings.Repeat("A", 43))
		if err != nil {
			t.Fatal(err)
		}
		wantError(t, f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basicRaw("x", other)), 401, "invalid_client")
	})
}

func TestKeySession(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		c, key := f.apiKey(f.alice, "events", "contacts")
		session := func(body string, header ...string) response {
			t.Helper()
			ct := ""
			if body != "" {
				ct = "application/json"
			}
			return f.post("/auth/access/session", ct, body, header...)
		}
		t.Run("default lifetime", func(t *testing.T) {
			res := session("", "X-API-Key", key)
			if res.status != 200 {
				t.Fatalf("status %d body %s", res.status, res.body)
			}
			body := res.json(t)
			if body["expires_in"] != float64(86400) || body["token_type"] != "bearer" || body["scope"] != "events contacts" {
				t.Errorf("answer = %v, want 86400 s bearer with the key's scopes", body)
			}
			in := f.introspect(f.rs, body["access_token"].(string)).json(t)
			if in["active"] != true || in["client_id"] != strconv.FormatInt(c.ID, 10) || in["grant_type"] != "api_key_session" {
				t.Errorf("introspection = %v", in)
			}
		})
		t.Run("chosen lifetime, Basic", func(t *testing.T) {
			res := session(`{"lifetime":600}`, "Authorization", basicRaw("whoever", key))
			if got := res.json(t)["expires_in"]; got != float64(600) {
				t.Errorf("expires_in = %v, want 600", got)
			}
		})
		t.Run("lifetime at the cap", func(t *testing.T) {
			res := session(`{"lifetime":2592000}`, "X-API-Key", key)
			if got := res.json(t)["expires_in"]; got != float64(30*24*3600) {
				t.Errorf("expires_in = %v, want the 30-day cap", got)
			}
		})
		t.Run("lifetime over the cap refused", func(t *testing.T) {
			for _, body := range []string{`{"lifetime":2592001}`, `{"lifetime":999999999}`} {
				res := session(body, "X-API-Key", key)
				wantError(t, res, 400, "invalid_request")
				if got, want := res.json(t)["error_description"], "The lifetime parameter must be a whole number of seconds from 1 to 2592000."; got != want {
					t.Errorf("%s: error_description = %v, want %q", body, got, want)
				}
			}
		})
		t.Run("errors", func(t *testing.T) {
			wantError(t, session(`{"lifetime":0}`, "X-API-Key", key), 400, "invalid_request")
			wantError(t, session(`{"lifetime":1.5}`, "X-API-Key", key), 400, "invalid_request")
			wantError(t, session(`{"lifetime":"soon"}`, "X-API-Key", key), 400, "invalid_request")
			wantError(t, session("", "X-API-Key", typo(key)), 401, "invalid_client")
			wantError(t, session(""), 401, "invalid_client")
			wantError(t, session("", "X-API-Key", key, "Authorization", basicRaw("x", key)), 400, "invalid_request")
			wantError(t, session(`{"client_assertion_type":"urn:ietf:params:oauth:client-assertion-type:jwt-bearer","client_assertion":"a.b.c"}`,
				"X-API-Key", key), 400, "invalid_request")
		})
		t.Run("tokens die with the key", func(t *testing.T) {
			tok := session("", "X-API-Key", key).json(t)["access_token"].(string)
			if !f.active(tok) {
				t.Fatal("fresh key token inactive")
			}
			if err := f.db.DeleteClient(t.Context(), c.ID); err != nil {
				t.Fatal(err)
			}
			if f.active(tok) {
				t.Error("key token active after its key was deleted")
			}
			wantError(t, session("", "X-API-Key", key), 401, "invalid_client")
		})
	})
}

// TestKeySessionIsAGrant: /auth/access/session holds a credential to the
// rules of every grant: it must be allowed the key session, and its own
// token lifetime caps the token.
func TestKeySessionIsAGrant(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		dspOnly := f.client(storage.Client{AccountID: f.root.ID, Name: "dsp only", GrantTypes: []string{"eskimi_dsp"}, TokenLifetime: time.Minute})
		allowed := f.client(storage.Client{AccountID: f.root.ID, Name: "allowed", GrantTypes: []string{"api_key_session"}, Scopes: []string{"read"}, TokenLifetime: time.Minute})
		key, keyString := f.apiKey(f.alice, "events")
		if _, err := f.db.UpdateClient(t.Context(), key.ID, func(c *storage.Client) error { c.TokenLifetime = 10 * time.Minute; return nil }); err != nil {
			t.Fatal(err)
		}
		session := func(body string, header ...string) response {
			t.Helper()
			ct := ""
			if body != "" {
				ct = "application/json"
			}
			return f.post("/auth/access/session", ct, body, header...)
		}
		tests := []struct {
			name        string
			body        string
			header      []string
			status      int
			code        string
			wantExpires float64
		}{
			{"plain client without the grant", "", []string{"Authorization", basic(dspOnly.ID, f.secretOf[dspOnly.ID])}, 400, "unauthorized_client", 0},
			{"plain client without the grant, short lifetime", `{"lifetime":30}`, []string{"Authorization", basic(dspOnly.ID, f.secretOf[dspOnly.ID])}, 400, "unauthorized_client", 0},
			{"plain client allowed: default cut to its lifetime", "", []string{"Authorization", basic(allowed.ID, f.secretOf[allowed.ID])}, 200, "", 60},
			{"plain client allowed: within its lifetime", `{"lifetime":45}`, []string{"Authorization", basic(allowed.ID, f.secretOf[allowed.ID])}, 200, "", 45},
			{"plain client allowed: over its lifetime", `{"lifetime":61}`, []string{"Authorization", basic(allowed.ID, f.secretOf[allowed.ID])}, 400, "invalid_request", 0},
			{"key with a lifetime: default cut to it", "", []string{"X-API-Key", keyString}, 200, "", 600},
			{"key with a lifetime: over it", `{"lifetime":86400}`, []string{"X-API-Key", keyString}, 400, "invalid_request", 0},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				res := session(tt.body, tt.header...)
				if tt.status != 200 {
					wantError(t, res, tt.status, tt.code)
					return
				}
				if res.status != 200 {
					t.Fatalf("status %d body %s, want 200", res.status, res.body)
				}
				if got := res.json(t)["expires_in"]; got != tt.wantExpires {
					t.Errorf("expires_in = %v, want %v", got, tt.wantExpires)
				}
			})
		}
		res := session(`{"lifetime":61}`, "Authorization", basic(allowed.ID, f.secretOf[allowed.ID]))
		if got, want := res.json(t)["error_description"], "The lifetime parameter exceeds this key's maximum of 60 seconds."; got != want {
			t.Errorf("error_description = %v, want %q", got, want)
		}
	})
}

func TestSecretRotationOverlap(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		oldSecret := f.secretOf[f.cc.ID]
		oldTok := f.tokenCC(f.cc)
		newSecret := "a-brand-new-secret-for-rotation-0123456789"
		hash, err := f.hasher.Hash(t.Context(), []byte(newSecret))
		if err != nil {
			t.Fatal(err)
		}
		retire := f.clock.now().Add(30 * time.Minute)
		if _, err := f.db.UpdateClient(t.Context(), f.cc.ID, func(c *storage.Client) error {
			c.PreviousSecretHash, c.PreviousGeneration, c.PreviousRetireAt = c.SecretHash, c.Generation, retire
			c.SecretHash, c.Generation = string(hash), c.Generation+1
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		f.secrets = append(f.secrets, newSecret)
		token := func(secret string) response {
			return f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basic(f.cc.ID, secret))
		}
		midTok := token(oldSecret)
		if midTok.status != 200 {
			t.Fatalf("old secret during the overlap: %d %s", midTok.status, midTok.body)
		}
		newTok := token(newSecret)
		if newTok.status != 200 {
			t.Fatalf("new secret: %d %s", newTok.status, newTok.body)
		}
		for name, tk := range map[string]string{"before rotation": oldTok, "old secret in overlap": midTok.json(t)["access_token"].(string)} {
			if !f.active(tk) {
				t.Errorf("token minted %s inactive during the overlap", name)
			}
		}
		f.clock.advance(30 * time.Minute)
		wantError(t, token(oldSecret), 401, "invalid_client")
		if res := token(newSecret); res.status != 200 {
			t.Errorf("new secret after retirement: %d", res.status)
		}
		if f.active(oldTok) || f.active(midTok.json(t)["access_token"].(string)) {
			t.Error("a token minted with the retired secret is still active")
		}
		if !f.active(newTok.json(t)["access_token"].(string)) {
			t.Error("a token minted with the new secret went inactive at retirement")
		}
	})
}

func TestDisabledAccount(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		// A client of the child account, and a token of bob (child account)
		// through a root client.
		childClient := f.client(storage.Client{AccountID: f.child.ID, Name: "child app", GrantTypes: []string{"client_credentials"}})
		childTok := f.tokenCC(childClient)
		bobTok := f.tokenDSP(f.dsp, "bob")
		rootTok := f.tokenCC(f.cc)
		if _, err := f.db.UpdateAccount(t.Context(), f.child.ID, func(a *storage.Account) error {
			a.Status = storage.StatusDisabled
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if f.active(childTok) || f.active(bobTok) {
			t.Error("a token of a disabled account is active")
		}
		if !f.active(rootTok) {
			t.Error("the parent account's token went inactive")
		}
		wantError(t, f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basic(childClient.ID, f.secretOf[childClient.ID])), 401, "invalid_client")
		// Disabling the root disables the whole tree.
		if _, err := f.db.UpdateAccount(t.Context(), f.root.ID, func(a *storage.Account) error {
			a.Status = storage.StatusDisabled
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		wantError(t, f.introspect(f.rs, rootTok), 401, "invalid_client")
	})
}

func TestSweeperDisablesStaleCredentials(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		_, key := f.apiKey(f.alice, "events")
		f.clock.advance(89 * 24 * time.Hour)
		used := f.tokenCC(f.cc) // cc and the resource server are used on day 89
		f.active(used)
		if err := f.app.Usage().Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		f.clock.advance(2 * 24 * time.Hour) // day 91: the key and the others were never used
		n, err := f.app.Sweeper().Sweep(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatal("nothing disabled after 91 days")
		}
		wantError(t, f.post("/auth/access/session", "", "", "X-API-Key", key), 401, "invalid_client")
		if res := f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basic(f.cc.ID, f.secretOf[f.cc.ID])); res.status != 200 {
			t.Errorf("a credential used 2 days ago was disabled: %d %s", res.status, res.body)
		}
		if again, err := f.app.Sweeper().Sweep(t.Context()); err != nil || again != 0 {
			t.Errorf("second sweep disabled %d (%v), want 0", again, err)
		}
		events, err := f.db.ListAudit(t.Context(), storage.AuditFilter{AccountID: f.root.ID, Subtree: true}, storage.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		found := 0
		for _, e := range events {
			if strings.HasSuffix(e.Action, ".auto_disable") {
				found++
			}
		}
		if found != n {
			t.Errorf("%d auto_disable audit events, want %d", found, n)
		}
	})
}

// TestBearerUseKeepsClientAlive: a client that authenticated once, to get a
// long-lived token, and then only ever presents that token is in use, and
// the sweeper must not disable it.
func TestBearerUseKeepsClientAlive(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		alice := bearer(f.tokenDSP(f.dsp, "alice"))
		mint := func(name string) (storage.Client, string) {
			t.Helper()
			c := f.client(storage.Client{AccountID: f.root.ID, Kind: storage.KindClient, Name: name,
				GrantTypes: []string{"client_credentials"}, Scopes: []string{"read"}})
			tk := f.apiJSON("POST", "/clients/"+strconv.FormatInt(c.ID, 10)+"/tokens", alice,
				`{"password":"`+testPassword+`"}`, http.StatusCreated)
			if tk["expires_in"] != float64(365*24*3600) {
				t.Fatalf("client token expires_in = %v, want the one-year lifetime", tk["expires_in"])
			}
			return c, tk["access_token"].(string)
		}
		daily, tok := mint("used daily through its token")
		idle, idleTok := mint("never used") // the control: the sweeper does run

		for day := 1; day <= 100; day++ {
			f.clock.advance(24 * time.Hour)
			if day%2 == 0 {
				if res := f.check("GET", "Authorization", "Bearer "+tok); res.status != http.StatusOK {
					t.Fatalf("day %d: /auth/check with the token: status %d body %s", day, res.status, res.body)
				}
			} else if !f.active(tok) {
				t.Fatalf("day %d: the token is inactive at introspection", day)
			}
			if err := f.app.Usage().Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
			if _, err := f.app.Sweeper().Sweep(t.Context()); err != nil {
				t.Fatal(err)
			}
		}

		c, err := f.db.GetClient(t.Context(), daily.ID)
		if err != nil {
			t.Fatal(err)
		}
		if c.Status != storage.StatusActive {
			t.Errorf("a client whose token is used every day is %s after 100 days", c.Status)
		}
		if want := f.clock.now(); !c.LastUsedAt.Equal(want) {
			t.Errorf("LastUsedAt = %v, want the last bearer use %v", c.LastUsedAt, want)
		}
		if !f.active(tok) {
			t.Error("the daily token is inactive after 100 days")
		}
		if c, err := f.db.GetClient(t.Context(), idle.ID); err != nil || c.Status != storage.StatusDisabled {
			t.Errorf("the never-used client after 100 days: %+v, %v; want disabled", c.Status, err)
		}
		if f.active(idleTok) {
			t.Error("the never-used client's token is active after it was disabled")
		}
	}, roomyChecks)
}

func TestKeySessionTokenRate(t *testing.T) {
	f := newFixture(t, "embedded", func(c *config.Config) { c.RateLimits.TokenRate = 2 })
	_, key := f.apiKey(f.alice, "events")
	session := func(k string) response {
		t.Helper()
		return f.post("/auth/access/session", "", "", "X-API-Key", k)
	}
	for i := range 2 {
		if res := session(key); res.status != http.StatusOK {
			t.Fatalf("session %d: status %d body %s", i+1, res.status, res.body)
		}
	}
	res := session(key)
	wantError(t, res, http.StatusTooManyRequests, "slow_down")
	if res.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	if _, ok := res.json(t)["access_token"]; ok {
		t.Error("a token was handed out over the rate")
	}
	// The token endpoint draws on the same per-client budget.
	wantError(t, f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basicRaw("x", key)),
		http.StatusTooManyRequests, "slow_down")
	// Another key has its own budget; a wrong key is refused as before.
	_, other := f.apiKey(f.bob, "events")
	if res := session(other); res.status != http.StatusOK {
		t.Errorf("another key: status %d body %s", res.status, res.body)
	}
	wantError(t, session(typo(key)), http.StatusUnauthorized, "invalid_client")
	f.clock.advance(time.Second)
	if res := session(key); res.status != http.StatusOK {
		t.Errorf("after a second: status %d body %s", res.status, res.body)
	}
}

// TestDisabledAccountEndsTokensForGood: disabling an account ends its
// subtree's tokens for good (enabling it again revives none), and no grant
// gives a token to a user of a disabled account, or of an account with a
// disabled ancestor.
func TestDisabledAccountEndsTokensForGood(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		grandchild, err := f.db.CreateAccount(ctx, storage.Account{Name: "grandchild", ParentID: f.child.ID, Status: storage.StatusActive})
		if err != nil {
			t.Fatal(err)
		}
		hash, err := f.db.GetUser(ctx, f.bob.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.db.CreateUser(ctx, storage.User{AccountID: grandchild.ID, Username: "gina", PasswordHash: hash.PasswordHash,
			Role: storage.RoleMember, Status: storage.StatusActive}); err != nil {
			t.Fatal(err)
		}
		childClient := f.client(storage.Client{AccountID: f.child.ID, Name: "child app", GrantTypes: []string{"client_credentials"}})
		alice := bearer(f.tokenDSP(f.dsp, "alice"))
		childPath := "/accounts/" + strconv.FormatInt(f.child.ID, 10)
		signIn := func(username string) response {
			return f.post("/oauth/token", formCT, form("grant_type", "eskimi_dsp", "username", username, "password", testPassword),
				"Authorization", basic(f.dsp.ID, f.secretOf[f.dsp.ID]))
		}
		before := map[string]string{
			"bob (child)":        f.tokenDSP(f.dsp, "bob"),
			"gina (grandchild)":  f.tokenDSP(f.dsp, "gina"),
			"child's own client": f.tokenCC(childClient),
		}
		f.clock.advance(time.Second)
		f.apiJSON("PATCH", childPath, alice, `{"status":"disabled"}`, http.StatusOK)
		f.clock.advance(time.Second)

		// Every grant refuses the subtree while it is disabled.
		for _, tt := range []struct{ name, username string }{{"user of the disabled account", "bob"}, {"user below it", "gina"}} {
			res := signIn(tt.username)
			wantError(t, res, http.StatusBadRequest, "invalid_grant")
			if got, want := res.json(t)["error_description"], "The username or password is wrong."; got != want {
				t.Errorf("%s: error_description = %v, want %q", tt.name, got, want)
			}
		}
		wantError(t, f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basic(childClient.ID, f.secretOf[childClient.ID])), 401, "invalid_client")

		f.clock.advance(time.Second)
		f.apiJSON("PATCH", childPath, alice, `{"status":"active"}`, http.StatusOK)
		f.clock.advance(time.Second)
		for name, tok := range before {
			if f.active(tok) {
				t.Errorf("%s: a token issued before the account was disabled is active again after it was enabled", name)
			}
		}
		// New tokens work again.
		if res := signIn("gina"); res.status != http.StatusOK || !f.active(res.json(t)["access_token"].(string)) {
			t.Errorf("sign-in after the account was enabled again: %d %s", res.status, res.body)
		}
		if !f.active(f.tokenCC(childClient)) {
			t.Error("a new token of the child's client is inactive after the account was enabled again")
		}
	})
}

// TestEnablingGivesFreshGracePeriod: a credential the sweeper disabled as
// unused, once enabled again, gets a fresh grace period: the next sweep
// leaves it alone, and it is swept again only after another full period
// unused. The sign-in client an admin's CLI goes through (what
// `tollgate bootstrap` creates) is no exception.
func TestEnablingGivesFreshGracePeriod(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		key, keyString := f.apiKey(f.alice, "events")
		sweep := func() {
			t.Helper()
			if err := f.app.Usage().Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
			if _, err := f.app.Sweeper().Sweep(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		status := func(c storage.Client) (storage.Status, storage.DisabledReason) {
			t.Helper()
			got, err := f.db.GetClient(t.Context(), c.ID)
			if err != nil {
				t.Fatal(err)
			}
			return got.Status, got.DisabledReason
		}
		f.clock.advance(91 * 24 * time.Hour)
		sweep()
		for _, c := range []storage.Client{key, f.dsp} {
			if st, why := status(c); st != storage.StatusDisabled || why != storage.DisabledUnused {
				t.Fatalf("client %d after 91 days unused: %s (%s), want disabled (unused)", c.ID, st, why)
			}
		}
		// The admin enables the sign-in client again (the console signs in
		// with a password alone; here straight through the store), then the
		// key through the management API.
		if _, err := f.db.UpdateClient(t.Context(), f.dsp.ID, func(c *storage.Client) error { c.Enable(f.clock.now()); return nil }); err != nil {
			t.Fatal(err)
		}
		f.apiJSON("PATCH", "/keys/"+strconv.FormatInt(key.ID, 10), bearer(f.tokenDSP(f.dsp, "alice")), `{"status":"active"}`, http.StatusOK)
		f.clock.advance(time.Hour)
		sweep()
		for _, c := range []storage.Client{key, f.dsp} {
			if st, _ := status(c); st != storage.StatusActive {
				t.Errorf("client %d an hour after it was enabled again: %s, want active (a fresh grace period)", c.ID, st)
			}
		}
		if res := f.post("/auth/access/session", "", "", "X-API-Key", keyString); res.status != http.StatusOK {
			t.Errorf("key session after enabling: %d %s", res.status, res.body)
		}
		f.tokenDSP(f.dsp, "alice")

		// Another full period unused: swept again.
		f.clock.advance(91 * 24 * time.Hour)
		sweep()
		for _, c := range []storage.Client{key, f.dsp} {
			if st, why := status(c); st != storage.StatusDisabled || why != storage.DisabledUnused {
				t.Errorf("client %d 91 days after its last use: %s (%s), want disabled (unused)", c.ID, st, why)
			}
		}
	})
}
