package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/storage"
)

type usageItem struct {
	Time         time.Time `json:"time"`
	CredentialID int64     `json:"credential_id"`
	RateClass    string    `json:"rate_class"`
	Outcome      string    `json:"outcome"`
	Count        int64     `json:"count"`
}

// usageOf reads GET /usage?query as who and sums the counts per
// credential and outcome.
func (f *fixture) usageOf(t *testing.T, who admCaller, query string) map[string]int64 {
	t.Helper()
	res := f.admDo(t, who, http.MethodGet, "/usage?"+query, "")
	if res.status != http.StatusOK {
		t.Fatalf("GET /usage?%s: status %d, body %s", query, res.status, res.body)
	}
	var body struct {
		Items   []usageItem `json:"items"`
		Partial *bool       `json:"partial"`
	}
	if err := json.Unmarshal(res.body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Partial == nil || *body.Partial {
		t.Errorf("GET /usage?%s: partial %v, want false (Redis is up)", query, body.Partial)
	}
	out := map[string]int64{}
	for _, it := range body.Items {
		if it.Time.Location() != time.UTC || it.Time.Second() != 0 {
			t.Errorf("item time %s: want a UTC bucket start", it.Time)
		}
		out[fmt.Sprintf("%d/%s/%s", it.CredentialID, it.RateClass, it.Outcome)] += it.Count
	}
	return out
}

// Token issuances and refused authentications of a known client are
// counted, rolled up and read back through the management API, by whoever
// may read the credential or the account, and by nobody else.
func TestUsage(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		for range 3 {
			f.tokenCC(f.cc)
		}
		for range 2 {
			res := f.post("/oauth/token", "application/x-www-form-urlencoded", form("grant_type", "client_credentials"),
				"Authorization", basic(f.cc.ID, "wrong secret"))
			if res.status != http.StatusUnauthorized {
				t.Fatalf("wrong secret: status %d", res.status)
			}
		}
		f.tokenCC(f.childRS)
		from := f.clock.now().Add(-time.Hour).UTC().Format(time.RFC3339)
		f.rollUp(t)
		to := f.clock.now().Add(time.Hour).UTC().Format(time.RFC3339)
		rng := "&from=" + url.QueryEscape(from) + "&to=" + url.QueryEscape(to)
		alice := f.admUser("alice")
		cc := strconv.FormatInt(f.cc.ID, 10)
		child := strconv.FormatInt(f.childRS.ID, 10)

		for _, g := range []string{"minute", "hour", "day"} {
			got := f.usageOf(t, alice, "credential_id="+cc+"&granularity="+g+rng)
			if got[cc+"/token/allowed"] != 3 || got[cc+"/token/unauthorized"] != 2 || len(got) != 2 {
				t.Errorf("%s usage of cc = %v, want 3 allowed and 2 unauthorized", g, got)
			}
		}
		// The root's subtree holds the child's credential; the child's
		// does not hold the root's.
		got := f.usageOf(t, alice, "account_id="+strconv.FormatInt(f.root.ID, 10)+"&granularity=hour"+rng)
		if got[cc+"/token/allowed"] != 3 || got[child+"/token/allowed"] != 1 {
			t.Errorf("usage of root's subtree = %v", got)
		}
		bob := f.admUser("bob")
		got = f.usageOf(t, bob, "account_id="+strconv.FormatInt(f.child.ID, 10)+"&granularity=hour"+rng)
		if got[child+"/token/allowed"] != 1 || got[cc+"/token/allowed"] != 0 {
			t.Errorf("usage of child = %v", got)
		}

		// Outside one's reach: not found (nothing learned), a member
		// reading an account's usage: forbidden.
		carol := f.admCarol()
		mona, err := f.db.CreateUser(t.Context(), storage.User{AccountID: f.root.ID, Username: "mona", PasswordHash: f.passwordHash(),
			Role: storage.RoleMember, Status: storage.StatusActive})
		if err != nil {
			t.Fatal(err)
		}
		monaKey := f.client(storage.Client{AccountID: f.root.ID, OwnerID: mona.ID, Kind: storage.KindKey, Name: "mona's"})
		monaTok := f.admUser(mona.Username)
		for _, c := range []struct {
			name   string
			who    admCaller
			query  string
			status int
		}{
			{"admin of another tree, credential", carol, "credential_id=" + cc, http.StatusNotFound},
			{"admin of another tree, account", carol, "account_id=" + strconv.FormatInt(f.root.ID, 10), http.StatusNotFound},
			{"admin of a child, the parent's credential", bob, "credential_id=" + cc, http.StatusNotFound},
			{"admin of a child, the parent account", bob, "account_id=" + strconv.FormatInt(f.root.ID, 10), http.StatusNotFound},
			{"member, another owner's credential", monaTok, "credential_id=" + cc, http.StatusNotFound},
			{"member, the account", monaTok, "account_id=" + strconv.FormatInt(f.root.ID, 10), http.StatusForbidden},
			{"member, their own key", monaTok, "credential_id=" + strconv.FormatInt(monaKey.ID, 10), http.StatusOK},
			{"no token", "", "credential_id=" + cc, http.StatusUnauthorized},
		} {
			t.Run(c.name, func(t *testing.T) {
				res := f.admDo(t, c.who, http.MethodGet, "/usage?"+c.query, "")
				if res.status != c.status {
					t.Errorf("status %d, want %d (body %s)", res.status, c.status, res.body)
				}
			})
		}
	})
}

// Calls show in the usage answers at once, before any roll-up, in minute,
// hour and day buckets and in the console's chart of the current hour;
// after a roll-up and more calls, each call is counted once.
func TestUsageNow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		flush := func() {
			t.Helper()
			if err := f.app.UsageCounter().Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		start := f.clock.now()
		alice := f.admUser("alice")
		cc := strconv.FormatInt(f.cc.ID, 10)
		check := func(want int64) {
			t.Helper()
			rng := "&from=" + url.QueryEscape(start.Add(-time.Hour).UTC().Format(time.RFC3339)) +
				"&to=" + url.QueryEscape(f.clock.now().Add(time.Hour).UTC().Format(time.RFC3339))
			for _, g := range []string{"minute", "hour", "day"} {
				got := f.usageOf(t, alice, "credential_id="+cc+"&granularity="+g+rng)
				if got[cc+"/token/allowed"] != want || len(got) != 1 {
					t.Errorf("%s usage of cc = %v, want %d allowed", g, got, want)
				}
			}
			// The defaults (the range ending now) hold them too.
			if got := f.usageOf(t, alice, "account_id="+strconv.FormatInt(f.root.ID, 10)+"&granularity=minute"); got[cc+"/token/allowed"] != want {
				t.Errorf("the last hour of minutes of the root's subtree = %v, want %d allowed of cc", got, want)
			}
		}
		for range 3 {
			f.tokenCC(f.cc)
		}
		flush()
		check(3)

		// Rolled up (the watermark passes those minutes), then two more
		// calls after it.
		f.rollUp(t)
		check(3)
		for range 2 {
			f.tokenCC(f.cc)
		}
		flush()
		check(5)

		// The console's chart: its bars hold all five (in the current
		// hour's, or the last two hours' when an hour began between them).
		b := f.browser(t)
		b.signIn("alice")
		p := b.get("/console/clients/"+cc+"/usage").want(t, http.StatusOK)
		if got := chartedAllowed(t, p.body); got != 5 {
			t.Errorf("the chart's bars hold %d allowed calls, want 5:\n%s", got, p.body)
		}
		if strings.Contains(p.body, `id="usage-partial"`) {
			t.Error("the usage page says the latest minutes are missing, with Redis up")
		}
	})
}

// Bad usage queries get a precise problem+json answer.
func TestUsageHostileQueries(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		alice := f.admUser("alice")
		cc := "credential_id=" + strconv.FormatInt(f.cc.ID, 10)
		for _, c := range []struct {
			query  string
			status int
			field  string
		}{
			{"", http.StatusUnprocessableEntity, "credential_id"},
			{cc + "&account_id=" + strconv.FormatInt(f.root.ID, 10), http.StatusUnprocessableEntity, "account_id"},
			{"credential_id=abc", http.StatusBadRequest, "credential_id"},
			{"credential_id=-1", http.StatusBadRequest, "credential_id"},
			{"credential_id=99999999999999999999", http.StatusBadRequest, "credential_id"},
			{cc + "&from=yesterday", http.StatusBadRequest, "from"},
			{cc + "&to=2026-13-01T00:00:00Z", http.StatusBadRequest, "to"},
			{cc + "&from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", http.StatusUnprocessableEntity, "from"},
			{cc + "&from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", http.StatusUnprocessableEntity, "from"},
			{cc + "&granularity=minute&from=2026-01-01T00:00:00Z&to=2026-01-04T00:00:00Z", http.StatusUnprocessableEntity, "from"},
			{cc + "&granularity=hour&from=2025-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", http.StatusUnprocessableEntity, "from"},
			{cc + "&granularity=day&from=0001-01-01T00:00:00Z&to=9999-01-01T00:00:00Z", http.StatusBadRequest, "from"},
			{cc + "&granularity=week", http.StatusBadRequest, "granularity"},
			{cc + "&granularity=minute&granularity=hour", http.StatusBadRequest, "granularity"},
			{cc + "&limit=5", http.StatusBadRequest, "limit"},
			{cc + "&from=%ff", http.StatusBadRequest, "from"},
		} {
			t.Run(c.query, func(t *testing.T) {
				admProblem(t, f.admDo(t, alice, http.MethodGet, "/usage?"+c.query, ""), c.status, c.field)
			})
		}
	})
}

// chartedAllowed sums the allowed calls over a usage page's bars: calls a
// test makes a few (test clock) minutes apart fall into two hours' bars
// when an hour begins between them.
func chartedAllowed(t *testing.T, body string) int {
	t.Helper()
	n := 0
	for _, m := range chartAllowed.FindAllStringSubmatch(body, -1) {
		c, err := strconv.Atoi(m[1])
		if err != nil {
			t.Fatalf("bar count %q: %v", m[1], err)
		}
		n += c
	}
	return n
}

var chartAllowed = regexp.MustCompile(`class="o-allowed" data-outcome="allowed" data-count="(\d+)"`)
