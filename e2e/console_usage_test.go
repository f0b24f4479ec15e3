package e2e

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// A credential's and an account's usage pages draw the rolled-up counts as
// SVG bars (no script, the strict CSP kept) beside a table of the same
// numbers; the range links switch between hours and days; another tree's
// credential is not found.
func TestConsoleUsage(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		for range 4 {
			f.tokenCC(f.cc)
		}
		res := f.post("/oauth/token", "application/x-www-form-urlencoded", form("grant_type", "client_credentials"),
			"Authorization", basic(f.cc.ID, "wrong"))
		if res.status != http.StatusUnauthorized {
			t.Fatalf("wrong secret: %d", res.status)
		}
		f.rollUp(t)
		b := f.browser(t)
		b.signIn("alice")
		path := "/console/clients/" + strconv.FormatInt(f.cc.ID, 10)
		b.get(path).want(t, http.StatusOK).has(t, `href="`+path+`/usage"`)
		for _, rng := range []string{"", "?range=24h", "?range=7d", "?range=30d", "?range=bogus"} {
			p := b.get(path+"/usage"+rng).want(t, http.StatusOK)
			wantPageHeaders(t, p)
			body := string(p.body)
			if strings.Contains(body, "<script>") || strings.Contains(body, " style=") || strings.Contains(body, "<style") {
				t.Errorf("%s: inline script or style", rng)
			}
			if n := strings.Count(body, `class="o-allowed" data-outcome="allowed" data-count="4"`); n != 1 {
				t.Errorf("%s: %d allowed bars of 4, want 1", rng, n)
			}
			if n := strings.Count(body, `data-outcome="unauthorized" data-count="1"`); n != 1 {
				t.Errorf("%s: %d unauthorized bars of 1, want 1", rng, n)
			}
			// The table's row of that bucket: 4 allowed, 1 unauthorized, 5.
			row := regexp.MustCompile(`<td data-label="allowed">4</td><td data-label="rate limited">0</td><td data-label="quota exceeded">0</td><td data-label="unauthorized">1</td><td data-label="forbidden">0</td><td data-label="Total">5</td>`)
			if !row.MatchString(body) {
				t.Errorf("%s: no table row with the bar's numbers", rng)
			}
			p.has(t, `<th scope="col">allowed</th>`, `aria-current="page">Last`, "<caption>")
		}
		b.get("/console/usage?range=7d").want(t, http.StatusOK).has(t, `data-count="4"`, "and its sub-accounts")

		// bob (the child's admin) does not see the root's client.
		bob := f.browser(t)
		bob.signIn("bob")
		bob.get(path+"/usage").want(t, http.StatusNotFound)
	})
}
