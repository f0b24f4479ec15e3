package e2e

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/storage"
)

// roomyChecks lifts the gateway's rate classes: these tests are about which
// tokens are good, not about the limits.
func roomyChecks(c *config.Config) {
	c.RateLimits.Classes = map[string]string{"default": "1000", "reports": "1000"}
}

// bearerGood reports whether tok is good both at introspection and at the
// gateway check, failing t when the two disagree.
func (f *fixture) bearerGood(t *testing.T, tok string) bool {
	t.Helper()
	active := f.active(tok)
	res := f.check("GET", "Authorization", "Bearer "+tok)
	if want := map[bool]int{true: http.StatusOK, false: http.StatusUnauthorized}[active]; res.status != want {
		t.Errorf("introspection says active=%v, /auth/check answers %d, want %d (body %s)", active, res.status, want, res.body)
	}
	return active
}

func TestPasswordResetRevokesUserTokens(t *testing.T) {
	forEachBackendAndFormat(t, func(t *testing.T, f *fixture) {
		alice := f.admUser("alice")
		old := f.tokenDSP(f.dsp, "bob")
		own := f.tokenCC(f.dsp) // the client's own token: no user, not revoked
		if !f.bearerGood(t, old) || !f.bearerGood(t, own) {
			t.Fatal("fresh tokens are not good")
		}

		f.clock.advance(time.Minute)
		// Issued in the second of the reset, before it: revoked too.
		sameSecond := f.tokenDSP(f.dsp, "bob")
		reset := "bob-has-a-new-password"
		f.secrets = append(f.secrets, reset)
		bobPath := "/users/" + strconv.FormatInt(f.bob.ID, 10)
		f.admWant(t, alice, http.MethodPost, bobPath+"/password", admBody(map[string]any{"password": reset}), http.StatusNoContent)

		if u, err := f.db.GetUser(t.Context(), f.bob.ID); err != nil || !u.TokensValidAfter.Equal(f.clock.now().Truncate(time.Second)) {
			t.Errorf("TokensValidAfter after the reset = %v (%v), want %v", u.TokensValidAfter, err, f.clock.now().Truncate(time.Second))
		}
		if f.bearerGood(t, old) {
			t.Error("a token from before the password reset is good")
		}
		if f.bearerGood(t, sameSecond) {
			t.Error("a token issued in the second of the password reset is good")
		}
		if !f.bearerGood(t, own) {
			t.Error("the client's own token died with a user's password")
		}
		if !f.bearerGood(t, string(alice)) {
			t.Error("another user's token died with bob's password")
		}

		// A fresh login with the new password works; the old password
		// does not.
		f.clock.advance(time.Second)
		wantError(t, f.admLogin("bob", testPassword), http.StatusBadRequest, "invalid_grant")
		login := f.admLogin("bob", reset)
		if login.status != http.StatusOK {
			t.Fatalf("sign in with the new password: status %d body %s", login.status, login.body)
		}
		fresh := login.json(t)["access_token"].(string)
		if !f.bearerGood(t, fresh) {
			t.Error("a token issued after the password reset is not good")
		}
		// Still good later, and the old ones stay dead.
		f.clock.advance(time.Hour)
		if !f.bearerGood(t, fresh) || f.bearerGood(t, old) {
			t.Error("an hour later: the fresh token is not good or the old one is")
		}
	}, roomyChecks)
}

func TestUserDisableRevokesTokensForGood(t *testing.T) {
	forEachBackendAndFormat(t, func(t *testing.T, f *fixture) {
		alice := f.admUser("alice")
		old := f.tokenDSP(f.dsp, "bob")
		if !f.bearerGood(t, old) {
			t.Fatal("fresh token is not good")
		}
		f.clock.advance(time.Minute)
		bobPath := "/users/" + strconv.FormatInt(f.bob.ID, 10)
		f.admWant(t, alice, http.MethodPatch, bobPath, `{"status":"disabled"}`, http.StatusOK)
		if f.bearerGood(t, old) {
			t.Error("the disabled user's token is good")
		}

		// Back on: the old token stays dead, a new login works.
		f.clock.advance(time.Minute)
		f.admWant(t, alice, http.MethodPatch, bobPath, `{"status":"active"}`, http.StatusOK)
		if u, err := f.db.GetUser(t.Context(), f.bob.ID); err != nil || u.Status != storage.StatusActive {
			t.Fatalf("bob after re-enabling: %+v, %v", u, err)
		}
		if f.bearerGood(t, old) {
			t.Error("re-enabling the user revived a token issued before they were disabled")
		}
		fresh := f.tokenDSP(f.dsp, "bob")
		if !f.bearerGood(t, fresh) {
			t.Error("a token issued after re-enabling is not good")
		}

		// A role change is no revocation.
		f.clock.advance(time.Minute)
		f.admWant(t, alice, http.MethodPatch, bobPath, `{"role":"member"}`, http.StatusOK)
		if !f.bearerGood(t, fresh) {
			t.Error("a role change revoked the user's token")
		}
	}, roomyChecks)
}
