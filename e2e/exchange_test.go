package e2e

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/pkg/apikey"
	"github.com/tollgate/tollgate/storage"
)

// Token exchange (RFC 8693) names.
const (
	exchangeGrant  = "urn:ietf:params:oauth:grant-type:token-exchange"
	typeAccess     = "urn:ietf:params:oauth:token-type:access_token"
	typeAPIKey     = "urn:tollgate:token-type:api_key"
	accountAudPref = "urn:tollgate:account:"
)

func audienceOf(acc storage.Account) string { return accountAudPref + strconv.FormatInt(acc.ID, 10) }

// exchange exchanges subject (an access token) as client c, with the
// further parameters kv.
func (f *fixture) exchange(c storage.Client, subject string, kv ...string) response {
	f.t.Helper()
	params := append([]string{"grant_type", exchangeGrant, "subject_token", subject, "subject_token_type", typeAccess}, kv...)
	return f.post("/oauth/token", formCT, form(params...), "Authorization", basic(c.ID, f.secretOf[c.ID]))
}

// exchanged wants res to be a good exchange answer and returns its token.
func exchanged(t *testing.T, res response) (string, map[string]any) {
	t.Helper()
	if res.status != http.StatusOK {
		t.Fatalf("exchange: status %d, body %s", res.status, res.body)
	}
	m := res.json(t)
	if got := m["issued_token_type"]; got != typeAccess {
		t.Errorf("issued_token_type = %v, want %s", got, typeAccess)
	}
	if got := m["token_type"]; got != "bearer" {
		t.Errorf("token_type = %v, want bearer", got)
	}
	if got := res.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	tok, _ := m["access_token"].(string)
	if tok == "" {
		t.Fatalf("no access_token in %s", res.body)
	}
	return tok, m
}

// treeBelowChild adds a grandchild under the fixture's child and a sibling
// of the child: root ── child ── grandchild, root ── sibling.
func (f *fixture) treeBelowChild() (grandchild, sibling storage.Account) {
	f.t.Helper()
	mk := func(name string, parent int64) storage.Account {
		a, err := f.db.CreateAccount(f.t.Context(), storage.Account{Name: name, ParentID: parent, Status: storage.StatusActive})
		if err != nil {
			f.t.Fatal(err)
		}
		return a
	}
	return mk("grandchild", f.child.ID), mk("sibling", f.root.ID)
}

// TestTokenExchangeActsOnChildOnly: a root client's token, exchanged with
// the child account as audience, gives a token of the same format that
// introspects as the child's, passes /auth/check on the child and its
// descendants, and is refused (403) on the parent and on a sibling.
func TestTokenExchangeActsOnChildOnly(t *testing.T) {
	forEachBackendAndFormat(t, func(t *testing.T, f *fixture) {
		grandchild, sibling := f.treeBelowChild()
		subject := f.tokenCC(f.cc)
		tok, m := exchanged(t, f.exchange(f.cc, subject, "audience", audienceOf(f.child), "scope", "read"))
		f.secrets = append(f.secrets, subject, tok)
		if got := m["scope"]; got != "read" {
			t.Errorf("scope = %v, want read", got)
		}
		if isJWT, subjectJWT := strings.Count(tok, ".") == 2, strings.Count(subject, ".") == 2; isJWT != subjectJWT {
			t.Errorf("exchanged token is a JWT: %v; the client's tokens: %v", isJWT, subjectJWT)
		} else if isJWT {
			// The JWT says so too, verified against the JWK Set.
			_, claims := f.verifyJWT(t, tok)
			if claims["account_id"] != float64(f.child.ID) || claims["scope"] != "read" || claims["client_id"] != strconv.FormatInt(f.cc.ID, 10) ||
				mustJSON(claims["aud"]) != mustJSON([]string{audienceOf(f.child)}) {
				t.Errorf("JWT claims = %v, want the child account (as account_id and aud), scope read and the client", claims)
			}
		}
		intro := f.introspect(f.rs, tok).json(t)
		if intro["active"] != true {
			t.Fatalf("exchanged token inactive: %v", intro)
		}
		if got := intro["account_id"]; got != float64(f.child.ID) {
			t.Errorf("introspected account_id = %v, want the child %d", got, f.child.ID)
		}
		if got := intro["scope"]; got != "read" {
			t.Errorf("introspected scope = %v, want read", got)
		}
		if got := intro["grant_type"]; got != exchangeGrant {
			t.Errorf("introspected grant_type = %v, want %s", got, exchangeGrant)
		}
		if got := mustJSON(intro["aud"]); got != mustJSON([]string{audienceOf(f.child)}) {
			t.Errorf("introspected aud = %s, want the child's audience", got)
		}
		// The child's own resource server sees the token: it is the child's.
		if got := f.introspect(f.childRS, tok).json(t)["active"]; got != true {
			t.Errorf("child resource server: active = %v, want true", got)
		}
		for _, tt := range []struct {
			name   string
			acc    storage.Account
			status int
		}{
			{"child", f.child, http.StatusOK},
			{"grandchild", grandchild, http.StatusOK},
			{"parent", f.root, http.StatusForbidden},
			{"sibling", sibling, http.StatusForbidden},
			{"other tree", f.other, http.StatusForbidden},
		} {
			res := f.check(http.MethodGet, "Authorization", bearer(tok), "X-Tollgate-Account", strconv.FormatInt(tt.acc.ID, 10))
			if res.status != tt.status {
				t.Errorf("check on the %s: status %d, want %d (body %s)", tt.name, res.status, tt.status, res.body)
			}
		}
		res := f.check(http.MethodGet, "Authorization", bearer(tok))
		if got := res.header.Get("X-Tollgate-Account-Id"); res.status != http.StatusOK || got != strconv.FormatInt(f.child.ID, 10) {
			t.Errorf("check without account: status %d, X-Tollgate-Account-Id %q, want 200 and the child", res.status, got)
		}
		// The subject token is untouched: it still acts on the root.
		if res := f.check(http.MethodGet, "Authorization", bearer(subject), "X-Tollgate-Account", strconv.FormatInt(f.root.ID, 10)); res.status != http.StatusOK {
			t.Errorf("subject token on the root: status %d", res.status)
		}
		// An exchanged token exchanges again, further down only.
		deeper, _ := exchanged(t, f.exchange(f.cc, tok, "audience", audienceOf(grandchild)))
		if got := f.introspect(f.rs, deeper).json(t)["account_id"]; got != float64(grandchild.ID) {
			t.Errorf("twice exchanged: account_id = %v, want %d", got, grandchild.ID)
		}
		wantError(t, f.exchange(f.cc, tok, "audience", audienceOf(f.root)), http.StatusBadRequest, "invalid_target")
		// Without audience, the token stays on the subject token's account.
		same, _ := exchanged(t, f.exchange(f.cc, subject))
		if got := f.introspect(f.rs, same).json(t)["account_id"]; got != float64(f.root.ID) {
			t.Errorf("no audience: account_id = %v, want %d", got, f.root.ID)
		}
		// The client revokes an exchanged token like any of its own; the
		// subject token and its other exchanges stay.
		if res := f.post("/oauth/revoke", formCT, form("token", tok), "Authorization", basic(f.cc.ID, f.secretOf[f.cc.ID])); res.status != http.StatusOK {
			t.Fatalf("revoke: status %d", res.status)
		}
		if f.active(tok) || !f.active(subject) || !f.active(deeper) {
			t.Errorf("after revoking the exchanged token: it active %v, subject active %v, its own exchange active %v; want false, true, true",
				f.active(tok), f.active(subject), f.active(deeper))
		}
	}, roomyLimits)
}

// roomyLimits lifts the per-second limits of /auth/check: these tests are
// about everything but the limits.
func roomyLimits(c *config.Config) {
	c.RateLimits.Classes = map[string]string{"default": "1000", "reports": "1000"}
}

// good reports whether /auth/check takes tok (200) or refuses it (401).
func (f *fixture) good(tok string) bool {
	f.t.Helper()
	res := f.check(http.MethodGet, "Authorization", bearer(tok))
	if res.status != http.StatusOK && res.status != http.StatusUnauthorized {
		f.t.Fatalf("check: status %d, body %s", res.status, res.body)
	}
	return res.status == http.StatusOK
}

// TestTokenExchangeScopesOnlyNarrow: a requested scope outside the subject
// token's is invalid_scope, and without a scope parameter the new token
// gets the subject token's scopes, not the client's.
func TestTokenExchangeScopesOnlyNarrow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		narrow := f.tokenCC(f.cc, "scope", "read") // the client has read and write
		wantError(t, f.exchange(f.cc, narrow, "scope", "write"), http.StatusBadRequest, "invalid_scope")
		wantError(t, f.exchange(f.cc, narrow, "scope", "read write"), http.StatusBadRequest, "invalid_scope")
		wantError(t, f.exchange(f.cc, narrow, "scope", "admin"), http.StatusBadRequest, "invalid_scope")
		tok, m := exchanged(t, f.exchange(f.cc, narrow, "audience", audienceOf(f.child)))
		if got := m["scope"]; got != "read" {
			t.Errorf("no scope asked: scope = %v, want the subject token's read", got)
		}
		if got := f.introspect(f.rs, tok).json(t)["scope"]; got != "read" {
			t.Errorf("introspected scope = %v, want read", got)
		}
		// A scope the client lost since is not carried over.
		wide := f.tokenCC(f.cc)
		if _, err := f.db.UpdateClient(t.Context(), f.cc.ID, func(c *storage.Client) error {
			c.Scopes = []string{"read"}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if _, m := exchanged(t, f.exchange(f.cc, wide)); m["scope"] != "read" {
			t.Errorf("client narrowed to read: scope = %v, want read", m["scope"])
		}
	})
}

// TestTokenExchangeLifetimeCapped: the new token never outlives the
// subject token, and dies with it at its expiry.
func TestTokenExchangeLifetimeCapped(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		subject := f.tokenCC(f.cc) // one hour (client_credentials_lifetime)
		f.clock.advance(50 * time.Minute)
		tok, m := exchanged(t, f.exchange(f.cc, subject, "audience", audienceOf(f.child)))
		if got, _ := m["expires_in"].(float64); got <= 0 || got > 600 {
			t.Errorf("expires_in = %v, want at most the subject token's remaining 600 s", m["expires_in"])
		}
		f.clock.advance(9 * time.Minute)
		if !f.active(tok) {
			t.Fatal("exchanged token inactive before the subject token expired")
		}
		f.clock.advance(2 * time.Minute)
		if f.active(tok) {
			t.Error("exchanged token active after the subject token expired")
		}
		wantError(t, f.exchange(f.cc, subject), http.StatusBadRequest, "invalid_request")
	})
}

// TestTokenExchangeDiesWithCredential: the exchanged token dies at once
// with the subject token's client (disabled, rotated, deleted), user and
// accounts, as every token does.
func TestTokenExchangeDiesWithCredential(t *testing.T) {
	tests := []struct {
		name string
		// user, when set, makes the subject token a user token of alice.
		user bool
		// subjectLives: the subject token stays good (only the new one's
		// account was disabled).
		subjectLives bool
		kill         func(t *testing.T, f *fixture)
	}{
		{name: "client disabled", kill: func(t *testing.T, f *fixture) {
			updateClient(t, f, f.cc.ID, func(c *storage.Client) { c.Status = storage.StatusDisabled })
		}},
		{name: "client secret rotated", kill: func(t *testing.T, f *fixture) {
			updateClient(t, f, f.cc.ID, func(c *storage.Client) { c.Generation++ })
		}},
		{name: "client deleted", kill: func(t *testing.T, f *fixture) {
			if err := f.db.DeleteClient(t.Context(), f.cc.ID); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "user disabled", user: true, kill: func(t *testing.T, f *fixture) {
			if _, err := f.db.UpdateUser(t.Context(), f.alice.ID, func(u *storage.User) error {
				u.Status = storage.StatusDisabled
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "target account disabled", subjectLives: true, kill: func(t *testing.T, f *fixture) { setAccountStatus(t, f, f.child.ID, storage.StatusDisabled) }},
		{name: "subject account disabled", kill: func(t *testing.T, f *fixture) { setAccountStatus(t, f, f.root.ID, storage.StatusDisabled) }},
	}
	for _, b := range testBackends {
		for _, strategy := range []string{storage.StrategyOpaque, storage.StrategyJWT} {
			for _, tt := range tests {
				t.Run(b+"/"+strategy+"/"+tt.name, func(t *testing.T) {
					f := newFixture(t, b, roomyLimits)
					exchanger := f.cc
					if tt.user {
						exchanger = f.dsp
					}
					updateClient(t, f, exchanger.ID, func(c *storage.Client) { c.AccessTokenStrategy = strategy })
					subject := ""
					if tt.user {
						subject = f.tokenDSP(f.dsp, "alice")
					} else {
						subject = f.tokenCC(f.cc)
					}
					tok, _ := exchanged(t, f.exchange(exchanger, subject, "audience", audienceOf(f.child)))
					keep := f.tokenCC(f.weird) // another client's token, in the root account
					if !f.good(tok) {
						t.Fatal("exchanged token inactive")
					}
					tt.kill(t, f)
					if f.good(tok) {
						t.Error("exchanged token still active")
					}
					if got := f.good(subject); got != tt.subjectLives {
						t.Errorf("subject token active: %v, want %v", got, tt.subjectLives)
					}
					if !strings.HasPrefix(tt.name, "subject account") && !f.good(keep) {
						t.Error("an unrelated token went inactive")
					}
				})
			}
		}
	}
}

func updateClient(t *testing.T, f *fixture, id int64, change func(*storage.Client)) {
	t.Helper()
	if _, err := f.db.UpdateClient(t.Context(), id, func(c *storage.Client) error {
		change(c)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func setAccountStatus(t *testing.T, f *fixture, id int64, status storage.Status) {
	t.Helper()
	if _, err := f.db.UpdateAccount(t.Context(), id, func(a *storage.Account) error {
		a.Status = status
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestTokenExchangeAPIKey: an API key as subject token (the standard form
// of POST /auth/access/session) is the request's client authentication and
// gives a key token that dies with the key, under the key session's rules.
func TestTokenExchangeAPIKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		key, keyString := f.apiKey(f.alice, "events", "contacts")
		exchangeKey := func(k string, kv ...string) response {
			t.Helper()
			params := append([]string{"grant_type", exchangeGrant, "subject_token", k, "subject_token_type", typeAPIKey}, kv...)
			return f.post("/oauth/token", formCT, form(params...), kvHeaders(kv)...)
		}
		tok, m := exchanged(t, exchangeKey(keyString))
		if got, _ := m["expires_in"].(float64); got != 86400 {
			t.Errorf("expires_in = %v, want the key session's 86400", m["expires_in"])
		}
		if got := m["scope"]; got != "events contacts" {
			t.Errorf("scope = %v, want events contacts", got)
		}
		intro := f.introspect(f.rs, tok).json(t)
		if intro["active"] != true || intro["client_id"] != strconv.FormatInt(key.ID, 10) || intro["account_id"] != float64(f.root.ID) {
			t.Errorf("introspection = %v, want active, the key's client and the root account", intro)
		}
		// JSON body, a narrower scope and a child account.
		res := f.post("/oauth/token", "application/json", `{"grant_type":"`+exchangeGrant+`","subject_token":"`+keyString+
			`","subject_token_type":"`+typeAPIKey+`","scope":"events","audience":"`+audienceOf(f.child)+`"}`)
		child, m := exchanged(t, res)
		if m["scope"] != "events" {
			t.Errorf("scope = %v, want events", m["scope"])
		}
		if res := f.check(http.MethodGet, "Authorization", bearer(child), "X-Tollgate-Account", strconv.FormatInt(f.root.ID, 10)); res.status != http.StatusForbidden {
			t.Errorf("key token of the child on the root: status %d, want 403", res.status)
		}
		wantError(t, exchangeKey(keyString, "audience", audienceOf(f.other)), http.StatusBadRequest, "invalid_target")
		wantError(t, exchangeKey(keyString, "scope", "write"), http.StatusBadRequest, "invalid_scope")
		wantError(t, exchangeKey(typo(keyString)), http.StatusUnauthorized, "invalid_client")
		wantError(t, exchangeKey("not-a-key"), http.StatusUnauthorized, "invalid_client")
		// The key is the only client authentication.
		wantError(t, f.post("/oauth/token", formCT, form("grant_type", exchangeGrant, "subject_token", keyString, "subject_token_type", typeAPIKey),
			"Authorization", basic(f.cc.ID, f.secretOf[f.cc.ID])), http.StatusBadRequest, "invalid_request")
		wantError(t, exchangeKey(keyString, "client_id", strconv.FormatInt(f.cc.ID, 10)), http.StatusBadRequest, "invalid_request")
		// A plain client is not allowed the key session unless it lists it.
		plainKey, err := apikey.Format(f.cc.ID, f.secretOf[f.cc.ID])
		if err != nil {
			t.Fatal(err)
		}
		wantError(t, exchangeKey(plainKey), http.StatusBadRequest, "unauthorized_client")
		updateClient(t, f, f.cc.ID, func(c *storage.Client) { c.GrantTypes = append(c.GrantTypes, "api_key_session") })
		exchanged(t, exchangeKey(plainKey))
		// The key token dies with the key.
		updateClient(t, f, key.ID, func(c *storage.Client) { c.Status = storage.StatusDisabled })
		if f.active(tok) || f.active(child) {
			t.Error("key token active after its key was disabled")
		}
		wantError(t, exchangeKey(keyString), http.StatusUnauthorized, "invalid_client")
	})
}

// kvHeaders returns no headers: exchangeKey's requests authenticate with
// the key alone.
func kvHeaders([]string) []string { return nil }

// TestTokenExchangeErrors: every refusal is an RFC 6749 §5.2 answer with
// the code RFC 8693 §2.2.2 names, never a 500; a subject token that is not
// the client's own looks like one that is no token at all.
func TestTokenExchangeErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		_, sibling := f.treeBelowChild()
		off, err := f.db.CreateAccount(t.Context(), storage.Account{Name: "off", ParentID: f.root.ID, Status: storage.StatusDisabled})
		if err != nil {
			t.Fatal(err)
		}
		subject := f.tokenCC(f.cc)
		childTok := f.tokenDSP(f.dsp, "bob") // a token of the child account
		// Refusals must not log the subject tokens (checkLogs).
		f.secrets = append(f.secrets, subject, childTok)
		base := func(kv ...string) string {
			return form(append([]string{"grant_type", exchangeGrant, "subject_token", subject, "subject_token_type", typeAccess}, kv...)...)
		}
		asCC := []string{"Authorization", basic(f.cc.ID, f.secretOf[f.cc.ID])}
		tests := []struct {
			name   string
			body   string
			header []string
			status int
			code   string
		}{
			{"missing subject_token", form("grant_type", exchangeGrant, "subject_token_type", typeAccess), asCC, 400, "invalid_request"},
			{"missing subject_token_type", form("grant_type", exchangeGrant, "subject_token", subject), asCC, 400, "invalid_request"},
			{"unknown subject_token_type", base("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"), asCC, 400, "unsupported_token_type"},
			{"garbage subject_token_type", base("subject_token_type", "x"), asCC, 400, "unsupported_token_type"},
			{"refresh token requested", base("requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token"), asCC, 400, "unsupported_token_type"},
			{"actor token", base("actor_token", subject, "actor_token_type", typeAccess), asCC, 400, "invalid_request"},
			{"resource", base("resource", "https://api.example.test/"), asCC, 400, "invalid_target"},
			{"malformed audience", base("audience", "account:1"), asCC, 400, "invalid_target"},
			{"audience with leading zero", base("audience", accountAudPref+"0"+strconv.FormatInt(f.child.ID, 10)), asCC, 400, "invalid_target"},
			{"audience with sign", base("audience", accountAudPref+"+"+strconv.FormatInt(f.child.ID, 10)), asCC, 400, "invalid_target"},
			{"audience beyond int64", base("audience", accountAudPref+"99999999999999999999"), asCC, 400, "invalid_target"},
			{"unknown account", base("audience", accountAudPref+"987654321"), asCC, 400, "invalid_target"},
			{"disabled account", base("audience", audienceOf(off)), asCC, 400, "invalid_target"},
			{"account of another tree", base("audience", audienceOf(f.other)), asCC, 400, "invalid_target"},
			{"parent of the subject's account", form("grant_type", exchangeGrant, "subject_token", childTok, "subject_token_type", typeAccess,
				"audience", audienceOf(f.root)), []string{"Authorization", basic(f.dsp.ID, f.secretOf[f.dsp.ID])}, 400, "invalid_target"},
			{"sibling of the subject's account", form("grant_type", exchangeGrant, "subject_token", childTok, "subject_token_type", typeAccess,
				"audience", audienceOf(sibling)), []string{"Authorization", basic(f.dsp.ID, f.secretOf[f.dsp.ID])}, 400, "invalid_target"},
			{"duplicated audience", base("audience", audienceOf(f.child)) + "&audience=" + audienceOf(f.child), asCC, 400, "invalid_request"},
			{"duplicated subject_token", base() + "&subject_token=" + subject, asCC, 400, "invalid_request"},
			{"another client's token", base(), []string{"Authorization", basic(f.dsp.ID, f.secretOf[f.dsp.ID])}, 400, "invalid_request"},
			{"not a token", base("subject_token", "garbage"), asCC, 400, "invalid_request"},
			{"a mistyped token", base("subject_token", typo(subject)), asCC, 400, "invalid_request"},
			{"an API key as access token", base("subject_token", "tgk_1_abc"), asCC, 400, "invalid_request"},
			{"huge subject_token", base("subject_token", strings.Repeat("a", 5000)), asCC, 400, "invalid_request"},
			{"body beyond the cap", base("subject_token", strings.Repeat("a", 70000)), asCC, 413, "invalid_request"},
			{"no client authentication", base(), nil, 401, "invalid_client"},
			{"wrong secret", base(), []string{"Authorization", basic(f.cc.ID, typo(f.secretOf[f.cc.ID]))}, 401, "invalid_client"},
			{"scope outside the subject token's", base("scope", "events"), asCC, 400, "invalid_scope"},
			{"malformed scope", base("scope", "a\"b"), asCC, 400, "invalid_scope"},
			{"API key subject without key", form("grant_type", exchangeGrant, "subject_token_type", typeAPIKey), nil, 400, "invalid_request"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				res := f.post("/oauth/token", formCT, tt.body, tt.header...)
				wantError(t, res, tt.status, tt.code)
				if strings.Contains(string(res.body), subject) {
					t.Errorf("the answer repeats the subject token: %s", res.body)
				}
			})
		}
		// Refusals cost the subject token nothing.
		if !f.active(subject) {
			t.Error("subject token inactive after refused exchanges")
		}
		// A JSON body with a non-string subject_token is refused as
		// malformed, like every other parameter.
		wantError(t, f.post("/oauth/token", "application/json", `{"grant_type":"`+exchangeGrant+`","subject_token":{"a":1},"subject_token_type":"`+typeAccess+`"}`,
			asCC...), 400, "invalid_request")
	})
}

// TestTokenExchangeWithGoOAuth2: golang.org/x/oauth2's client credentials
// client, a third-party client that knows nothing of Tollgate, performs the
// exchange by its EndpointParams, authenticating in the header or in the
// body, and reads the answer.
func TestTokenExchangeWithGoOAuth2(t *testing.T) {
	f := newFixture(t, "embedded")
	subject := f.tokenCC(f.cc)
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		cfg := clientcredentials.Config{
			ClientID:     strconv.FormatInt(f.cc.ID, 10),
			ClientSecret: f.secretOf[f.cc.ID],
			TokenURL:     f.srv.URL + "/oauth/token",
			Scopes:       []string{"read"},
			AuthStyle:    style,
			EndpointParams: url.Values{
				"grant_type":         {exchangeGrant},
				"subject_token":      {subject},
				"subject_token_type": {typeAccess},
				"audience":           {audienceOf(f.child)},
			},
		}
		tok, err := cfg.Token(t.Context())
		if err != nil {
			t.Fatalf("auth style %d: Token: %v", style, err)
		}
		if got := tok.Extra("issued_token_type"); got != typeAccess {
			t.Errorf("auth style %d: issued_token_type = %v", style, got)
		}
		if got := f.introspect(f.rs, tok.AccessToken).json(t)["account_id"]; got != float64(f.child.ID) {
			t.Errorf("auth style %d: account_id = %v, want %d", style, got, f.child.ID)
		}
	}
	// A refusal reaches the client as an *oauth2.RetrieveError with the
	// RFC 8693 code.
	cfg := clientcredentials.Config{ClientID: strconv.FormatInt(f.cc.ID, 10), ClientSecret: f.secretOf[f.cc.ID], TokenURL: f.srv.URL + "/oauth/token",
		AuthStyle: oauth2.AuthStyleInHeader, EndpointParams: url.Values{"grant_type": {exchangeGrant}, "subject_token": {subject},
			"subject_token_type": {typeAccess}, "audience": {audienceOf(f.other)}}}
	_, err := cfg.Token(t.Context())
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_target" {
		t.Errorf("Token with another tree's account = %v, want a RetrieveError invalid_target", err)
	}
}

// TestTokenExchangeDPoPBound: a subject token bound to a DPoP key is
// exchanged only with a proof of that key, and gives a token bound to it:
// the exchange cannot strip the sender constraint.
func TestTokenExchangeDPoPBound(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		key, other := f.newDPoPKey(t), f.newDPoPKey(t)
		res := f.tokenDPoP(f.cc, key.proof("POST", tokenURL, ""))
		if res.status != http.StatusOK {
			t.Fatalf("bound token: status %d, body %s", res.status, res.body)
		}
		subject := res.json(t)["access_token"].(string)
		f.secrets = append(f.secrets, subject)
		body := form("grant_type", exchangeGrant, "subject_token", subject, "subject_token_type", typeAccess, "audience", audienceOf(f.child))
		auth := basic(f.cc.ID, f.secretOf[f.cc.ID])
		wantError(t, f.post("/oauth/token", formCT, body, "Authorization", auth), http.StatusBadRequest, "invalid_dpop_proof")
		otherProof := other.proof("POST", tokenURL, "")
		f.noteProof(otherProof)
		wantError(t, f.post("/oauth/token", formCT, body, "Authorization", auth, "DPoP", otherProof), http.StatusBadRequest, "invalid_dpop_proof")
		proof := key.proof("POST", tokenURL, "")
		f.noteProof(proof)
		res = f.post("/oauth/token", formCT, body, "Authorization", auth, "DPoP", proof)
		if res.status != http.StatusOK {
			t.Fatalf("exchange with a proof of the key: status %d, body %s", res.status, res.body)
		}
		m := res.json(t)
		if m["token_type"] != "DPoP" || m["issued_token_type"] != typeAccess {
			t.Errorf("answer = %v, want token_type DPoP and issued_token_type", m)
		}
		tok := m["access_token"].(string)
		f.secrets = append(f.secrets, tok)
		in := f.introspect(f.rs, tok).json(t)
		cnf, _ := in["cnf"].(map[string]any)
		if in["active"] != true || cnf["jkt"] != key.jkt() || in["account_id"] != float64(f.child.ID) {
			t.Errorf("introspection = %v, want active, cnf.jkt %s, the child account", in, key.jkt())
		}
		// An unbound subject token may be exchanged with a proof: the new
		// token is bound to the proof's key, as any token asked with one.
		plain := f.tokenCC(f.cc)
		proof = other.proof("POST", tokenURL, "")
		f.noteProof(proof)
		res = f.post("/oauth/token", formCT, form("grant_type", exchangeGrant, "subject_token", plain, "subject_token_type", typeAccess),
			"Authorization", auth, "DPoP", proof)
		if res.status != http.StatusOK || res.json(t)["token_type"] != "DPoP" {
			t.Errorf("unbound subject with a proof: status %d, body %s; want a DPoP token", res.status, res.body)
		}
	})
}

// TestTokenExchangeNotGiven: every client may exchange its own tokens, so
// token exchange is no grant type a client is given: the management API
// refuses it in grant_types, and a client without it exchanges all the
// same.
func TestTokenExchangeNotGiven(t *testing.T) {
	f := newFixture(t, "embedded")
	alice := bearer(f.tokenDSP(f.dsp, "alice"))
	admProblem(t, f.apiDo("POST", "/clients", alice, `{"name":"x","grant_types":["client_credentials","`+exchangeGrant+`"]}`),
		http.StatusUnprocessableEntity, "grant_types")
	if slices.Contains(f.cc.GrantTypes, exchangeGrant) {
		t.Fatal("the fixture's client lists token exchange")
	}
	exchanged(t, f.exchange(f.cc, f.tokenCC(f.cc), "audience", audienceOf(f.child)))
}

// TestTokenExchangeBruteForce: an API key presented as a token exchange's
// subject token is the request's client authentication, so a wrong one
// counts as a failure of its client like any wrong secret, a block answers
// 429, and the right key still gets in during a block.
func TestTokenExchangeBruteForce(t *testing.T) {
	// This test is about the client id: keep the source out of the way.
	f := newFixture(t, "embedded", func(c *config.Config) { c.BruteForce.SourceThreshold = 1000 })
	key, keyString := f.apiKey(f.alice, "events")
	bad := wrongKey(t, key.ID)
	exchangeKey := func(k string) response {
		return f.post("/oauth/token", formCT, form("grant_type", exchangeGrant, "subject_token", k, "subject_token_type", typeAPIKey))
	}
	for range bfThreshold {
		wantError(t, exchangeKey(bad), http.StatusUnauthorized, "invalid_client")
	}
	wantBlocked(t, exchangeKey(bad), 1)
	wantBlocked(t, f.post("/auth/access/session", "", "", "X-API-Key", bad), 1)
	exchanged(t, exchangeKey(keyString))
}
