package e2e

import (
	"math/rand/v2"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/pkg/apikey"
	"github.com/tollgate/tollgate/pkg/secret"
	"github.com/tollgate/tollgate/storage"
)

// TestNoTimingOracle compares the median answer time of a refused
// credential whose id (client id, API key id, username) does not exist
// with that of an existing id with a wrong secret. The medians of many
// interleaved samples must be close: the refusal must not tell an attacker
// which ids exist. The bounds are wide (a factor of 2) so that a shared,
// noisy machine does not fail the test; the exact equality of the work is
// checked in pkg/oauth (TestAuthenticateSameWorkForEveryRefusal) by
// counting secret comparisons.
//
// Both ids are warm in the client cache, as an attacker's repeated probes
// make them. The brute-force back-off is off: it treats both alike, and
// would answer 429 to both after a few attempts.
func TestNoTimingOracle(t *testing.T) {
	if testing.Short() {
		t.Skip("timing comparison")
	}
	const (
		warmup  = 30
		samples = 300
	)
	forEachBackend(t, func(t *testing.T, f *fixture) {
		keyClient, _ := f.apiKey(f.alice, "events")
		other, err := secret.Generate()
		if err != nil {
			t.Fatal(err)
		}
		const unknownID = 987654321
		unknownKey, err := apikey.Format(unknownID, other)
		if err != nil {
			t.Fatal(err)
		}
		wrongKey, err := apikey.Format(keyClient.ID, other)
		if err != nil {
			t.Fatal(err)
		}
		cc := "grant_type=client_credentials"
		dsp := basic(f.dsp.ID, f.secretOf[f.dsp.ID])
		cases := []struct {
			name           string
			unknown, known func() response
			want           int
		}{
			{
				name:    "client id at the token endpoint",
				unknown: func() response { return f.post("/oauth/token", formCT, cc, "Authorization", basic(unknownID, other)) },
				known:   func() response { return f.post("/oauth/token", formCT, cc, "Authorization", basic(f.cc.ID, other)) },
				want:    http.StatusUnauthorized,
			},
			{
				name:    "API key at the check endpoint",
				unknown: func() response { return f.check(http.MethodGet, "X-API-Key", unknownKey) },
				known:   func() response { return f.check(http.MethodGet, "X-API-Key", wrongKey) },
				want:    http.StatusUnauthorized,
			},
			{
				name: "username at the eskimi_dsp grant",
				unknown: func() response {
					return f.post("/oauth/token", formCT, form("grant_type", "eskimi_dsp", "username", "nobody", "password", other), "Authorization", dsp)
				},
				known: func() response {
					return f.post("/oauth/token", formCT, form("grant_type", "eskimi_dsp", "username", "bob", "password", other), "Authorization", dsp)
				},
				want: http.StatusBadRequest,
			},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				timed := func(call func() response) time.Duration {
					start := time.Now()
					res := call()
					d := time.Since(start)
					if res.status != c.want {
						t.Fatalf("status %d, want %d (body %s)", res.status, c.want, res.body)
					}
					return d
				}
				for range warmup {
					timed(c.unknown)
					timed(c.known)
				}
				unknown := make([]time.Duration, 0, samples)
				known := make([]time.Duration, 0, samples)
				for range samples {
					// Interleaved, in a random order, so drift and
					// bursts of load on the machine hit both alike.
					if rand.IntN(2) == 0 {
						unknown = append(unknown, timed(c.unknown))
						known = append(known, timed(c.known))
					} else {
						known = append(known, timed(c.known))
						unknown = append(unknown, timed(c.unknown))
					}
				}
				mu, mk := median(unknown), median(known)
				ratio := float64(mu) / float64(mk)
				t.Logf("median unknown %s, known with a wrong secret %s (ratio %.2f)", mu, mk, ratio)
				if ratio < 0.5 || ratio > 2 {
					t.Errorf("median answer time: unknown id %s, known id with a wrong secret %s: ratio %.2f, want 0.5 to 2", mu, mk, ratio)
				}
			})
		}
	}, func(c *config.Config) { c.BruteForce.Enabled = false })
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestPasswordWorkSameForEveryRefusal counts the password hashes computed
// (secret.Passwords.Derivations) for every way a user's password check can
// be refused, at each place that checks one: the eskimi_dsp grant, the
// console's sign-in and the management API's password confirmations. An
// unknown username must cost the one hash a wrong password costs (the dummy
// verification), and so must a disabled user or a user of a disabled
// account, so that the time of a refusal does not tell which usernames
// exist. The brute-force back-off is off: a held-back attempt computes
// nothing, by design, whatever the username.
func TestPasswordWorkSameForEveryRefusal(t *testing.T) {
	f := newFixture(t, "embedded", func(c *config.Config) { c.BruteForce.Enabled = false })
	ctx := t.Context()
	gone, err := f.db.CreateAccount(ctx, storage.Account{Name: "gone", ParentID: f.root.ID, Status: storage.StatusDisabled})
	if err != nil {
		t.Fatal(err)
	}
	hash, err := f.passwords.Hash(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.CreateUser(ctx, storage.User{AccountID: gone.ID, Username: "erin", PasswordHash: hash,
		Role: storage.RoleAdmin, Status: storage.StatusActive}); err != nil {
		t.Fatal(err)
	}
	alice := f.admUser("alice")
	type attempt struct {
		name   string
		call   func() int // the status
		status int
	}
	dsp := func(username, password string) func() int {
		return func() int { return f.tokenWithPassword(username, password).status }
	}
	signIn := func(username, password string) func() int {
		b := f.browser(t)
		return func() int {
			b.get("/console/signin").want(t, http.StatusOK)
			return b.post("/console/signin", "username", username, "password", password).status
		}
	}
	api := func(path, body string) func() int {
		return func() int { return f.admDo(t, alice, http.MethodPost, path, body).status }
	}
	change := func(old string) string {
		return admBody(map[string]any{"old_password": old, "password": testPassword})
	}
	pwPath, tokenPath := admPath("/users", f.alice.ID, "/password"), admPath("/clients", f.cc.ID, "/tokens")
	places := []struct {
		place    string
		accepted attempt
		refused  []attempt
	}{
		{"eskimi_dsp grant", attempt{"right password", dsp("bob", testPassword), http.StatusOK}, []attempt{
			{"unknown username", dsp("nobody", testPassword), http.StatusBadRequest},
			{"wrong password", dsp("bob", "wrong password"), http.StatusBadRequest},
			{"disabled user", dsp("dave", testPassword), http.StatusBadRequest},
			{"disabled user, wrong password", dsp("dave", "wrong password"), http.StatusBadRequest},
			{"user outside the client's accounts", dsp("carol", testPassword), http.StatusBadRequest},
			{"user of a disabled account", dsp("erin", testPassword), http.StatusBadRequest},
		}},
		{"console sign-in", attempt{"right password", signIn("bob", testPassword), http.StatusSeeOther}, []attempt{
			{"unknown username", signIn("nobody", testPassword), http.StatusUnauthorized},
			{"wrong password", signIn("bob", "wrong password"), http.StatusUnauthorized},
			{"disabled user", signIn("dave", testPassword), http.StatusUnauthorized},
			{"disabled user, wrong password", signIn("dave", "wrong password"), http.StatusUnauthorized},
			{"user of a disabled account", signIn("erin", testPassword), http.StatusUnauthorized},
		}},
		// The management API checks the password of the signed-in caller,
		// who always exists: a wrong one costs what the right one costs.
		{"management API", attempt{"right password confirming a client token", api(tokenPath, admBody(map[string]any{"password": testPassword})), http.StatusCreated}, []attempt{
			{"wrong old password", api(pwPath, change("wrong password")), http.StatusForbidden},
			{"wrong password confirming a client token", api(tokenPath, admBody(map[string]any{"password": "wrong password"})), http.StatusForbidden},
		}},
	}
	for _, p := range places {
		t.Run(p.place, func(t *testing.T) {
			work := func(a attempt) int64 {
				t.Helper()
				before := f.passwords.Derivations()
				if got := a.call(); got != a.status {
					t.Fatalf("%s: status %d, want %d", a.name, got, a.status)
				}
				return f.passwords.Derivations() - before
			}
			want := work(p.accepted)
			if want != 1 {
				t.Fatalf("%s: %d password hashes computed, want 1", p.accepted.name, want)
			}
			for _, a := range p.refused {
				if got := work(a); got != want {
					t.Errorf("%s: %d password hashes computed, want %d as for every refusal and the right password", a.name, got, want)
				}
			}
		})
	}
}
