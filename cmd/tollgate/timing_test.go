package main

import (
	"math/rand/v2"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/pkg/apikey"
	"github.com/tollgate/tollgate/pkg/secret"
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
