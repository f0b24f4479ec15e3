package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// refusedAddresses returns the audit trail's allowlist refusals of
// credential id: the refused addresses, oldest first.
func (f *fixture) refusedAddresses(t *testing.T, id int64) []string {
	t.Helper()
	events, err := f.db.ListAudit(t.Context(), storage.AuditFilter{AccountID: f.root.ID, Subtree: true}, storage.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(events) - 1; i >= 0; i-- {
		e := events[i]
		if e.TargetID == id && (e.Action == "client.refused_address" || e.Action == "key.refused_address") {
			if e.Outcome != "failure" || e.Detail == "" {
				t.Errorf("refusal event %+v: want outcome failure and a detail", e)
			}
			out = append(out, e.RemoteAddr)
		}
	}
	return out
}

// TestAllowlistAtTheTokenEndpoint: a client with allowed_cidrs gets tokens
// from inside them only (the caller's address through the trusted proxies);
// from elsewhere it is refused exactly like a wrong secret, and the audit
// trail says why, once a minute at most.
func TestAllowlistAtTheTokenEndpoint(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		c := f.client(storage.Client{AccountID: f.root.ID, Name: "fenced", GrantTypes: []string{"client_credentials"},
			Scopes: []string{"read"}, AllowedCIDRs: []string{"203.0.113.0/24", "2001:db8::/32"}})
		token := func(from string) response {
			return f.post("/oauth/token", formCT, form("grant_type", "client_credentials"),
				"Authorization", basic(c.ID, f.secretOf[c.ID]), "X-Forwarded-For", from)
		}
		for _, from := range []string{"203.0.113.7", "2001:db8::5", "::ffff:203.0.113.9"} {
			if res := token(from); res.status != http.StatusOK {
				t.Errorf("from %s: status %d %s, want 200", from, res.status, res.body)
			}
		}
		wrongSecret := f.post("/oauth/token", formCT, form("grant_type", "client_credentials"),
			"Authorization", basic(c.ID, typo(f.secretOf[c.ID])), "X-Forwarded-For", "203.0.113.7")
		for _, from := range []string{"198.51.100.1", "203.0.114.1", "2001:db9::1"} {
			res := token(from)
			wantError(t, res, http.StatusUnauthorized, "invalid_client")
			if string(res.body) != string(wrongSecret.body) {
				t.Errorf("from %s: body %s, want the wrong secret's %s (no hint why)", from, res.body, wrongSecret.body)
			}
		}
		// One event in the minute, the first refusal's; another after it.
		if got := f.refusedAddresses(t, c.ID); len(got) != 1 || got[0] != "198.51.100.1" {
			t.Errorf("refusals audited = %q, want [198.51.100.1]", got)
		}
		f.clock.advance(61 * time.Second)
		wantError(t, token("192.0.2.44"), http.StatusUnauthorized, "invalid_client")
		if got := f.refusedAddresses(t, c.ID); len(got) != 2 || got[1] != "192.0.2.44" {
			t.Errorf("refusals audited = %q, want a second for 192.0.2.44", got)
		}
	}, behindProxy)
}

// TestAllowlistAtTheKeySession: an API key with allowed_cidrs opens key
// sessions from inside them only.
func TestAllowlistAtTheKeySession(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		c, key := f.apiKey(f.alice, "events")
		if _, err := f.db.UpdateClient(t.Context(), c.ID, func(c *storage.Client) error {
			c.AllowedCIDRs = []string{"203.0.113.0/24"}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if res := f.post("/auth/access/session", "", "", "X-API-Key", key, "X-Forwarded-For", "203.0.113.50"); res.status != http.StatusOK {
			t.Errorf("from inside: status %d %s, want 200", res.status, res.body)
		}
		wantError(t, f.post("/auth/access/session", "", "", "X-API-Key", key, "X-Forwarded-For", "198.51.100.1"), http.StatusUnauthorized, "invalid_client")
		if got := f.refusedAddresses(t, c.ID); len(got) != 1 || got[0] != "198.51.100.1" {
			t.Errorf("refusals audited = %q, want [198.51.100.1]", got)
		}
	}, behindProxy)
}

// TestAllowlistAtTheCheck: at /auth/check the caller is the API's caller,
// whose address the trusted gateway forwards in X-Forwarded-For: a key, or
// a token of a credential, with allowed_cidrs is refused from elsewhere
// and when the gateway forwards no address, like a credential that is not
// good.
func TestAllowlistAtTheCheck(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		key, keyString := f.apiKey(f.alice, "events")
		c := f.client(storage.Client{AccountID: f.root.ID, Name: "fenced", GrantTypes: []string{"client_credentials"},
			Scopes: []string{"read"}, AllowedCIDRs: []string{"203.0.113.0/24"}})
		tok := f.post("/oauth/token", formCT, form("grant_type", "client_credentials"),
			"Authorization", basic(c.ID, f.secretOf[c.ID]), "X-Forwarded-For", "203.0.113.1").json(t)["access_token"].(string)
		f.secrets = append(f.secrets, tok)
		if _, err := f.db.UpdateClient(t.Context(), key.ID, func(c *storage.Client) error {
			c.AllowedCIDRs = []string{"203.0.113.0/24"}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for name, cred := range map[string][][]string{
			"key":   {{"X-API-Key", keyString}, {"X-API-Key", typo(keyString)}},
			"token": {{"Authorization", "Bearer " + tok}, {"Authorization", "Bearer " + typo(tok)}},
		} {
			if res := f.check("GET", append(cred[0], "X-Forwarded-For", "203.0.113.9")...); res.status != http.StatusOK {
				t.Errorf("%s from inside: status %d %s, want 200", name, res.status, res.body)
			}
			bad := f.check("GET", append(cred[1], "X-Forwarded-For", "203.0.113.9")...)
			for _, h := range [][]string{{"X-Forwarded-For", "198.51.100.1"}, {}} {
				wantRefusedLike(t, f.check("GET", append(cred[0], h...)...), bad)
			}
		}
		if got := f.refusedAddresses(t, key.ID); len(got) != 1 || got[0] != "198.51.100.1" {
			t.Errorf("key refusals audited = %q, want [198.51.100.1]", got)
		}
		if got := f.refusedAddresses(t, c.ID); len(got) != 1 || got[0] != "198.51.100.1" {
			t.Errorf("token refusals audited = %q, want [198.51.100.1]", got)
		}
	}, behindProxy)
}

// TestAllowlistAtTheCheckUntrustedGateway: a gateway that is not among the
// trusted proxies forwards nothing Tollgate believes, and its own address
// is never the API caller's: a credential with an allowlist is refused even
// when the gateway's address is in it.
func TestAllowlistAtTheCheckUntrustedGateway(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		key, keyString := f.apiKey(f.alice, "events")
		if _, err := f.db.UpdateClient(t.Context(), key.ID, func(c *storage.Client) error {
			c.AllowedCIDRs = []string{"127.0.0.0/8", "::1/128", "203.0.113.0/24"}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		bad := f.check("GET", "X-API-Key", typo(keyString))
		for _, h := range [][]string{{}, {"X-Forwarded-For", "203.0.113.9"}} {
			wantRefusedLike(t, f.check("GET", append([]string{"X-API-Key", keyString}, h...)...), bad)
		}
		// The token endpoint, called directly, sees the peer's own address.
		if res := f.post("/auth/access/session", "", "", "X-API-Key", keyString); res.status != http.StatusOK {
			t.Errorf("key session from 127.0.0.1: status %d %s, want 200", res.status, res.body)
		}
	})
}

// wantRefusedLike wants res to be the check's refusal of a credential
// that is not good, exactly as bad is: status, challenge and body, and no
// identity.
func wantRefusedLike(t *testing.T, res, bad response) {
	t.Helper()
	if res.status != http.StatusUnauthorized || string(res.body) != string(bad.body) ||
		res.header.Get("WWW-Authenticate") != bad.header.Get("WWW-Authenticate") {
		t.Errorf("refusal = %d %q (%q), want 401 like a bad credential: %q (%q)", res.status, res.body,
			res.header.Get("WWW-Authenticate"), bad.body, bad.header.Get("WWW-Authenticate"))
	}
	if res.header.Get("X-Tollgate-Client-Id") != "" {
		t.Errorf("refused with identity headers %v", res.header)
	}
}
