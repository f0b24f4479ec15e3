package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// A client with reuse_tokens gets its current token back for the same
// scopes while the token has half its life or more left; anything that
// tells two tokens apart, a revocation, a rotation or a disabled client
// gets a new one.
func TestTokenReuse(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		admin := f.admUser("alice")
		// Switched on through the management API, and shown by it.
		c := f.client(storage.Client{AccountID: f.root.ID, Name: "reuser", GrantTypes: []string{"client_credentials"},
			Scopes: []string{"read", "write"}, TokenLifetime: time.Hour})
		path := admPath("/clients", c.ID)
		got := f.admWant(t, admin, http.MethodPatch, path, `{"reuse_tokens":true}`, http.StatusOK)
		if got["reuse_tokens"] != true {
			t.Fatalf("PATCH reuse_tokens: answer %v", got)
		}
		if got := f.admWant(t, admin, http.MethodGet, path, "", http.StatusOK); got["reuse_tokens"] != true {
			t.Fatalf("GET after PATCH: reuse_tokens = %v", got["reuse_tokens"])
		}

		token := func(extra ...string) (string, int64) {
			t.Helper()
			res := f.post("/oauth/token", formCT, form(append([]string{"grant_type", "client_credentials"}, extra...)...),
				"Authorization", basic(c.ID, f.secretOf[c.ID]))
			if res.status != http.StatusOK {
				t.Fatalf("token: status %d, body %s", res.status, res.body)
			}
			m := res.json(t)
			return m["access_token"].(string), int64(m["expires_in"].(float64))
		}
		// The reuse windows are half an hour, from the epoch: start at one.
		now := f.clock.now()
		f.clock.advance(now.Truncate(30*time.Minute).Add(30*time.Minute).Sub(now) + time.Second)

		first, exp := token("scope", "read write")
		if exp != 3599 {
			t.Errorf("expires_in of a new token: %d, want 3599", exp)
		}
		f.clock.advance(10 * time.Minute)
		again, exp := token("scope", "write read") // the same scopes, in another order
		if again != first {
			t.Fatal("the same request ten minutes later: got a new token, want the current one back")
		}
		if exp != 3599-600 {
			t.Errorf("expires_in of the reused token: %d, want %d", exp, 3599-600)
		}
		if !f.active(first) {
			t.Fatal("reused token inactive")
		}
		if other, _ := token("scope", "read"); other == first {
			t.Fatal("other scopes: got the same token")
		}
		// Past half its life the token is not handed out any more.
		f.clock.advance(20 * time.Minute)
		next, exp := token("scope", "read write")
		if next == first {
			t.Fatal("after half the lifetime: got the same token, want a new one")
		}
		if exp != 3599 { // a second into the next window
			t.Errorf("expires_in of the next window's token: %d, want 3599", exp)
		}
		if !f.active(first) || !f.active(next) {
			t.Fatal("the older token died when the next one was issued")
		}

		// A revoked token is never handed out again, nor brought back.
		res := f.post("/oauth/revoke", formCT, form("token", next), "Authorization", basic(c.ID, f.secretOf[c.ID]))
		if res.status != http.StatusOK {
			t.Fatalf("revoke: status %d, body %s", res.status, res.body)
		}
		after, _ := token("scope", "read write")
		if after == next || f.active(next) {
			t.Fatalf("after revoking the current token: got it back (%v) or it is active again (%v)", after == next, f.active(next))
		}
		if !f.active(after) {
			t.Fatal("the token issued after the revocation is inactive")
		}

		// Disabling and enabling the client revokes its tokens: the one
		// after is new.
		f.admWant(t, admin, http.MethodPatch, path, `{"status":"disabled"}`, http.StatusOK)
		f.admWant(t, admin, http.MethodPatch, path, `{"status":"active"}`, http.StatusOK)
		if again, _ := token("scope", "read write"); again == after || f.active(after) {
			t.Fatal("after disabling and enabling the client: got an old token back, or it is active")
		}

		// Without the setting every request gets a new token.
		if first := f.tokenCC(f.cc); first == f.tokenCC(f.cc) {
			t.Fatal("a client without reuse_tokens got the same token twice")
		}
		f.admWant(t, admin, http.MethodPatch, path, `{"reuse_tokens":false}`, http.StatusOK)
		if a, _ := token(); a == func() string { b, _ := token(); return b }() {
			t.Fatal("reuse_tokens switched off: got the same token twice")
		}
	})
}
