package guard

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzLocalVerify: whatever a caller sends as a Bearer token, Local.Verify
// answers an identity only for the claims the published key signed, and
// otherwise one of its three errors; it never panics. The seeds are a good
// token and its mangled forms.
func FuzzLocalVerify(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	key := newECKey(f, "k1")
	ks := newKeyServer(f, key.public())
	l := newTestLocal(f, ks, &now, LocalOptions{})
	good := key.sign(f, "at+jwt", goodClaims(now))
	for _, seed := range []string{good, good + "x", strings.Replace(good, ".", "..", 1), "a.b.c", "..", "tg_at_x", "e30.e30.",
		key.sign(f, "at+jwt", with(goodClaims(now), "cnf", map[string]string{"jkt": "x"}))} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		id, err := l.Verify(t.Context(), token)
		switch {
		case err == nil:
			// Only the good token's claims verify (its encoding may vary: a
			// base64 character can carry padding bits).
			if id.ClientID != 42 || id.AccountID != 7 || id.Subject != "42" || strings.Join(id.Scopes, " ") != "events reports" {
				t.Fatalf("Verify accepted %q as %+v", token, id)
			}
		case errors.Is(err, ErrNotLocal), errors.Is(err, ErrInvalidToken), errors.Is(err, ErrKeysUnavailable):
		default:
			t.Fatalf("Verify(%q): unexpected error %v", token, err)
		}
	})
}
