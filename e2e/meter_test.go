package e2e

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/pkg/apikey"
	"github.com/tollgate/tollgate/pkg/secret"
	"github.com/tollgate/tollgate/pkg/usage"
	"github.com/tollgate/tollgate/storage"
)

// roomyRates are rate classes that never bind, for the tests of quotas
// and budgets.
func roomyRates(c *config.Config) {
	c.RateLimits.Classes = map[string]string{"default": "100000", "reports": "100000"}
}

// meterKey creates an API key in account acc with quota q (nil: none).
func (f *fixture) meterKey(acc storage.Account, q *storage.Quota) (storage.Client, string) {
	f.t.Helper()
	c := f.client(storage.Client{AccountID: acc.ID, Kind: storage.KindKey, Name: "metered key",
		GrantTypes: []string{"client_credentials"}, Scopes: []string{"events"}, Quota: q})
	key, err := apikey.Format(c.ID, f.secretOf[c.ID])
	if err != nil {
		f.t.Fatal(err)
	}
	f.secrets = append(f.secrets, key)
	return c, key
}

// setBudget sets the budget of account acc through the storage layer (the
// cached store every instance reads through).
func (f *fixture) setBudget(acc storage.Account, b *storage.Budget) {
	f.t.Helper()
	// Also from a clean-up, after the test's context has ended.
	if _, err := f.db.UpdateAccount(context.WithoutCancel(f.t.Context()), acc.ID, func(a *storage.Account) error { a.Budget = b; return nil }); err != nil {
		f.t.Fatal(err)
	}
}

// countOf reads the usage count of a credential's calls in the current
// minute of the fixture's clock, with one outcome, from wherever the
// backend keeps it.
func (f *fixture) countOf(root, credentialID int64, class, outcome string) int64 {
	f.t.Helper()
	minute := f.clock.now().UTC().Truncate(time.Minute)
	if f.redis != nil {
		n, err := f.redis.HGet(f.t.Context(), f.redisPrefix+"u:"+usage.HashTag(root)+":"+strconv.FormatInt(minute.Unix()/60, 10),
			usage.CountField(credentialID, class, outcome)).Int64()
		if err != nil && !strings.Contains(err.Error(), "nil") {
			f.t.Fatal(err)
		}
		return n
	}
	counts, err := f.counts.ReadMinute(f.t.Context(), root, minute)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, c := range counts {
		if c.CredentialID == credentialID && c.Class == class && c.Outcome == outcome {
			return c.N
		}
	}
	return 0
}

// TestCheckQuotasAndBudgets: a credential's quota, the budgets of its
// account and of an ancestor, the cost header, the refusal headers and the
// usage counts, end to end on every backend.
func TestCheckQuotasAndBudgets(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		want := func(t *testing.T, name string, res response, status int, refusal string) {
			t.Helper()
			if res.status != status {
				t.Fatalf("%s: status %d, want %d (body %s)", name, res.status, status, res.body)
			}
			if got := res.header.Get("X-Tollgate-Refusal"); got != refusal {
				t.Errorf("%s: X-Tollgate-Refusal %q, want %q", name, got, refusal)
			}
		}
		now := f.clock.now().UTC()
		day := storage.Quota{Limit: 3, Period: storage.QuotaDay}
		_, next := day.Start(now)
		untilRefill := strconv.FormatInt(int64((next.Sub(now)+time.Second-1)/time.Second), 10)

		t.Run("credential quota", func(t *testing.T) {
			c, key := f.meterKey(f.child, &day)
			for i := range 3 {
				res := f.check("GET", "X-API-Key", key)
				want(t, "within the quota", res, 200, "")
				if got, w := res.header.Get("RateLimit"), `"quota";r=`+strconv.Itoa(2-i); !strings.Contains(got, w) {
					t.Errorf("call %d: RateLimit %q, want it to hold %s", i+1, got, w)
				}
			}
			res := f.check("GET", "X-API-Key", key)
			want(t, "over the quota", res, 429, "quota")
			if got := res.header.Get("RateLimit-Policy"); got != `"quota";q=3;w=86400` {
				t.Errorf("RateLimit-Policy %q, want \"quota\";q=3;w=86400", got)
			}
			if got := res.header.Get("RateLimit"); !strings.HasPrefix(got, `"quota";r=0;t=`) {
				t.Errorf("RateLimit %q, want \"quota\";r=0;…", got)
			}
			if got := res.header.Get("Retry-After"); got != untilRefill {
				t.Errorf("Retry-After %q, want %s (the next UTC midnight)", got, untilRefill)
			}
			if !strings.Contains(string(res.body), `"error":"quota_exceeded"`) {
				t.Errorf("body %s, want quota_exceeded", res.body)
			}
			if got := f.countOf(f.root.ID, c.ID, "default", usage.OutcomeAllowed); got != 3 {
				t.Errorf("allowed count %d, want 3", got)
			}
			if got := f.countOf(f.root.ID, c.ID, "default", usage.OutcomeQuotaExceeded); got != 1 {
				t.Errorf("quota_exceeded count %d, want 1", got)
			}
		})

		t.Run("cost", func(t *testing.T) {
			q := storage.Quota{Limit: 10, Period: storage.QuotaMonth}
			_, key := f.meterKey(f.child, &q)
			for _, bad := range []string{"0", "-1", "+5", "05", "1.5", "abc", "5 5", "1000001", "99999999999999999999", "1e3"} {
				res := f.check("GET", "X-API-Key", key, "X-Tollgate-Cost", bad)
				want(t, "cost "+strconv.Quote(bad), res, 400, "")
				if !strings.Contains(string(res.body), "invalid_request") {
					t.Errorf("cost %q: body %s, want invalid_request", bad, res.body)
				}
			}
			want(t, "repeated cost", f.check("GET", "X-API-Key", key, "X-Tollgate-Cost", "1", "X-Tollgate-Cost", "1"), 400, "")
			want(t, "cost 7", f.check("GET", "X-API-Key", key, "X-Tollgate-Cost", "7"), 200, "")
			want(t, "cost 4 of the 3 left", f.check("GET", "X-API-Key", key, "X-Tollgate-Cost", "4"), 429, "quota")
			want(t, "cost 3", f.check("GET", "X-API-Key", key, "X-Tollgate-Cost", "3"), 200, "")
			want(t, "nothing left", f.check("GET", "X-API-Key", key), 429, "quota")
			want(t, "the largest cost parses", f.check("GET", "X-API-Key", key, "X-Tollgate-Cost", "1000000"), 429, "quota")
		})

		t.Run("budgets", func(t *testing.T) {
			grand, err := f.db.CreateAccount(t.Context(), storage.Account{Name: "grandchild", ParentID: f.child.ID, Status: storage.StatusActive})
			if err != nil {
				t.Fatal(err)
			}
			// The child's budget holds for the keys of its child: more
			// keys buy no more traffic.
			f.setBudget(f.child, &storage.Budget{Quota: &storage.Quota{Limit: 4, Period: storage.QuotaDay}})
			t.Cleanup(func() { f.setBudget(f.child, nil) })
			_, k1 := f.meterKey(grand, nil)
			_, k2 := f.meterKey(grand, nil)
			allowed := 0
			var last response
			for range 3 {
				for _, k := range []string{k1, k2} {
					if last = f.check("GET", "X-API-Key", k); last.status == 200 {
						allowed++
					}
				}
			}
			if allowed != 4 {
				t.Errorf("2 keys × 3 calls under an ancestor's budget of 4: %d allowed, want 4", allowed)
			}
			want(t, "budget spent", last, 429, "quota")
			name := `"account-` + strconv.FormatInt(f.child.ID, 10) + `-quota"`
			if got := last.header.Get("RateLimit-Policy"); got != name+";q=4;w=86400" {
				t.Errorf("RateLimit-Policy %q, want %s;q=4;w=86400", got, name)
			}
			// A budget change shows at once: raised, the keys pass again.
			f.setBudget(f.child, &storage.Budget{Quota: &storage.Quota{Limit: 5, Period: storage.QuotaDay}})
			want(t, "budget raised", f.check("GET", "X-API-Key", k1), 200, "")
			want(t, "budget raised, then spent", f.check("GET", "X-API-Key", k2), 429, "quota")

			// A budget's per-second limit: shared by the keys, named by
			// account and class.
			f.setBudget(f.child, &storage.Budget{RateLimits: map[string]storage.RateLimit{"reports": {Rate: 1, Burst: 2}}})
			allowed = 0
			for _, k := range []string{k1, k2, k1, k2} {
				if last = f.check("GET", "X-API-Key", k, "X-Tollgate-Rate-Class", "reports"); last.status == 200 {
					allowed++
				}
			}
			if allowed != 2 {
				t.Errorf("4 calls under a budget burst of 2: %d allowed, want 2", allowed)
			}
			want(t, "budget rate", last, 429, "rate")
			if got, w := last.header.Get("RateLimit-Policy"), `"account-`+strconv.FormatInt(f.child.ID, 10)+`-reports";q=2;w=1`; got != w {
				t.Errorf("RateLimit-Policy %q, want %s", got, w)
			}
			if !strings.Contains(string(last.body), `"error":"rate_limited"`) {
				t.Errorf("body %s, want rate_limited", last.body)
			}
			want(t, "other classes are not held", f.check("GET", "X-API-Key", k1), 200, "")
		})

		t.Run("refusals before the decision are counted", func(t *testing.T) {
			c, key := f.meterKey(f.child, nil)
			wrong, err := secret.Generate()
			if err != nil {
				t.Fatal(err)
			}
			wrongKey, err := apikey.Format(c.ID, wrong) // well formed, its checksum right, its secret wrong
			if err != nil {
				t.Fatal(err)
			}
			want(t, "wrong secret", f.check("GET", "X-API-Key", wrongKey), 401, "")
			want(t, "missing scope", f.check("GET", "X-API-Key", key, "X-Tollgate-Scope", "contacts"), 403, "")
			want(t, "account out of reach", f.check("GET", "X-API-Key", key, "X-Tollgate-Account", strconv.FormatInt(f.root.ID, 10)), 403, "")
			if got := f.countOf(f.root.ID, c.ID, "default", usage.OutcomeUnauthorized); got != 1 {
				t.Errorf("unauthorized count %d, want 1", got)
			}
			if got := f.countOf(f.root.ID, c.ID, "default", usage.OutcomeForbidden); got != 2 {
				t.Errorf("forbidden count %d, want 2", got)
			}
		})
	}, roomyRates)
}

// hammer sends calls checks of key to srv from workers goroutines and
// returns how many were allowed; any answer other than 200 and 429 fails
// the test.
func hammer(t *testing.T, ctx context.Context, client *http.Client, url, key string, calls int, workers int) int64 {
	var (
		allowed atomic.Int64
		next    atomic.Int64
		wg      sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(calls) {
				req, err := http.NewRequestWithContext(ctx, "GET", url+"/auth/check", nil)
				if err != nil {
					t.Error(err)
					return
				}
				req.Header.Set("X-API-Key", key)
				res, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				_ = res.Body.Close()
				switch res.StatusCode {
				case 200:
					allowed.Add(1)
				case 429:
				default:
					t.Errorf("check: status %d", res.StatusCode)
					return
				}
			}
		}()
	}
	wg.Wait()
	return allowed.Load()
}

// accuracy hammers the credentials of a child account (each with a quota,
// under the child's budget and the parent's) and of a sibling account
// through every instance at once, and checks that no limit lets more
// through than it holds. It returns the figures for the log.
func accuracy(t *testing.T, instances []*fixture, callsPerKey, workers int) {
	f := instances[0]
	child, err := f.db.CreateAccount(t.Context(), storage.Account{Name: "metered child", ParentID: f.root.ID, Status: storage.StatusActive})
	if err != nil {
		t.Fatal(err)
	}
	sibling, err := f.db.CreateAccount(t.Context(), storage.Account{Name: "metered sibling", ParentID: f.root.ID, Status: storage.StatusActive})
	if err != nil {
		t.Fatal(err)
	}
	const (
		keyQuota    = 400
		childLimit  = 1000
		parentLimit = 1200
	)
	f.setBudget(child, &storage.Budget{Quota: &storage.Quota{Limit: childLimit, Period: storage.QuotaDay}})
	f.setBudget(f.root, &storage.Budget{Quota: &storage.Quota{Limit: parentLimit, Period: storage.QuotaMonth}})
	t.Cleanup(func() { f.setBudget(f.root, nil) })
	type keyOf struct {
		account string
		key     string
	}
	var keys []keyOf
	for range 4 {
		_, k := f.meterKey(child, &storage.Quota{Limit: keyQuota, Period: storage.QuotaDay})
		keys = append(keys, keyOf{"child", k})
	}
	_, k := f.meterKey(sibling, nil)
	keys = append(keys, keyOf{"sibling", k})

	var (
		mu      sync.Mutex
		perKey  = map[string]int64{}
		perAcct = map[string]int64{}
		wg      sync.WaitGroup
	)
	start := time.Now()
	for _, k := range keys {
		for _, in := range instances {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n := hammer(t, t.Context(), in.srv.Client(), in.srv.URL, k.key, callsPerKey/len(instances), workers)
				mu.Lock()
				perKey[k.key] += n
				perAcct[k.account] += n
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	total := perAcct["child"] + perAcct["sibling"]
	calls := len(keys) * (callsPerKey / len(instances)) * len(instances)
	for key, n := range perKey {
		if n > keyQuota {
			t.Errorf("a key with a quota of %d: %d allowed", keyQuota, n)
		}
		_ = key
	}
	if perAcct["child"] > childLimit {
		t.Errorf("child budget %d: %d allowed", childLimit, perAcct["child"])
	}
	// The demand is far above every limit: exactly the parent's budget
	// passes, no more (an excess) and no less (a refused call that spent).
	if total != parentLimit {
		t.Errorf("parent budget %d: %d allowed", parentLimit, total)
	}
	t.Logf("%d instance(s) × %d goroutines per key: parent budget %d, allowed %d of %d calls (child %d of its budget %d, sibling %d), in %v",
		len(instances), workers, parentLimit, total, calls, perAcct["child"], childLimit, perAcct["sibling"], elapsed.Round(time.Millisecond))
}

// TestCheckAccuracyAcrossInstances: three instances on one PostgreSQL and
// Redis, hammered in parallel: no more than the limit passes.
func TestCheckAccuracyAcrossInstances(t *testing.T) {
	f := newFixture(t, "postgres+redis", roomyRates)
	accuracy(t, []*fixture{f, f.secondInstance(), f.secondInstance()}, 1200, 4)
}

// TestCheckAccuracyEmbedded: the in-process meter under concurrency.
func TestCheckAccuracyEmbedded(t *testing.T) {
	f := newFixture(t, "embedded", roomyRates)
	accuracy(t, []*fixture{f}, 1200, 12)
}
