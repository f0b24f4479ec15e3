package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/app"
	"github.com/tollgate/tollgate/pkg/client"
	"github.com/tollgate/tollgate/storage"
)

// TestSDKLimits: quotas, allowlists and budgets through the Go SDK, with
// the remaining quota read from the counters the check keeps (Redis), or
// nothing spent on the embedded backend.
func TestSDKLimits(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		alice := f.sdk(t, f.admUser("alice"))
		key, err := alice.CreateKey(ctx, client.CredentialCreate{Name: "metered",
			Quota:        &client.Quota{Limit: 1000, Period: client.QuotaDay},
			AllowedCIDRs: []string{"203.0.113.9/24", "2001:db8::1"}})
		if err != nil {
			t.Fatalf("create key: %v", err)
		}
		f.secrets = append(f.secrets, key.Key, key.ClientSecret)
		if key.Quota == nil || *key.Quota != (client.Quota{Limit: 1000, Period: "day"}) ||
			!slices.Equal(key.AllowedCIDRs, []string{"203.0.113.0/24", "2001:db8::1/128"}) {
			t.Fatalf("created = quota %+v, allowed_cidrs %q", key.Quota, key.AllowedCIDRs)
		}
		spent := int64(0)
		if f.redis != nil {
			// What the check's decision script would have written.
			spent = 250
			start, _ := storage.Quota{Limit: 1000, Period: storage.QuotaDay}.Start(f.clock.now())
			if err := f.redis.Set(ctx, app.QuotaKey(f.redisPrefix, f.root.ID, "c", key.ID, start), spent, time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
		}
		got, err := alice.GetKey(ctx, key.ID)
		if err != nil {
			t.Fatal(err)
		}
		_, next := storage.Quota{Period: storage.QuotaDay}.Start(f.clock.now())
		if u := got.QuotaUsage; u == nil || u.Used != spent || u.Remaining != 1000-spent || !u.ResetsAt.Equal(next) {
			t.Errorf("quota_usage = %+v, want used %d, remaining %d, resets %s", u, spent, 1000-spent, next)
		}
		// Removing both.
		got, err = alice.UpdateKey(ctx, key.ID, client.CredentialUpdate{Quota: client.Remove[client.Quota](), AllowedCIDRs: []string{}})
		if err != nil || got.Quota != nil || got.QuotaUsage != nil || len(got.AllowedCIDRs) != 0 {
			t.Errorf("remove = %+v, %v", got, err)
		}
		_, err = alice.UpdateKey(ctx, key.ID, client.CredentialUpdate{AllowedCIDRs: []string{"10.0.0.0/8", "10.0.0.1/33"}})
		wantAPIError(t, "a bad CIDR", err, client.IsInvalid, http.StatusUnprocessableEntity, "allowed_cidrs[1]")

		// Budgets: alice (root admin) sets the child's; bob, the child's
		// own admin, cannot change it.
		budget := client.Budget{RateLimits: map[string]client.RateLimit{"default": {Rate: 20, Burst: 40}},
			Quota: &client.Quota{Limit: 5000, Period: client.QuotaMonth}}
		acc, err := alice.UpdateAccount(ctx, f.child.ID, client.AccountUpdate{Budget: client.Set(budget)})
		if err != nil || acc.Budget == nil || acc.Budget.RateLimits["default"] != (client.RateLimit{Rate: 20, Burst: 40}) ||
			acc.Budget.Quota == nil || acc.Budget.Quota.Limit != 5000 {
			t.Fatalf("set budget = %+v, %v", acc, err)
		}
		if acc.QuotaUsage == nil || acc.QuotaUsage.Remaining != 5000 {
			t.Errorf("account quota_usage = %+v, want 5000 remaining", acc.QuotaUsage)
		}
		bob := f.sdk(t, f.admUser("bob"))
		_, err = bob.UpdateAccount(ctx, f.child.ID, client.AccountUpdate{Budget: client.Set(client.Budget{
			RateLimits: map[string]client.RateLimit{"default": {Rate: 1000, Burst: 1000}}})})
		wantAPIError(t, "bob raises his own budget", err, client.IsInvalid, http.StatusUnprocessableEntity, "budget")
		_, err = bob.UpdateAccount(ctx, f.child.ID, client.AccountUpdate{Budget: client.Remove[client.Budget]()})
		wantAPIError(t, "bob removes his own budget", err, client.IsInvalid, http.StatusUnprocessableEntity, "budget")
		_, err = alice.UpdateAccount(ctx, f.root.ID, client.AccountUpdate{Budget: client.Set(budget)})
		wantAPIError(t, "alice sets her own root's budget", err, client.IsInvalid, http.StatusUnprocessableEntity, "budget")
		if got, err := bob.GetAccount(ctx, f.child.ID); err != nil || got.Budget == nil || got.Budget.RateLimits["default"].Rate != 20 {
			t.Errorf("bob reads his budget = %+v, %v; want it unchanged", got, err)
		}
		acc, err = alice.UpdateAccount(ctx, f.child.ID, client.AccountUpdate{Budget: client.Remove[client.Budget]()})
		if err != nil || acc.Budget != nil {
			t.Errorf("remove budget = %+v, %v", acc, err)
		}
	})
}

// TestAdminLimitsHostile: absurd quotas, bad CIDRs and wrong types in
// budgets are precise 4xx problems naming the field, and change nothing.
func TestAdminLimitsHostile(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		alice := f.admUser("alice")
		key := f.admWant(t, alice, http.MethodPost, "/keys", `{"name":"k"}`, http.StatusCreated)
		keyPath := "/keys/" + id(key)
		f.secrets = append(f.secrets, key["key"].(string), key["client_secret"].(string))
		childPath := fmt.Sprintf("/accounts/%d", f.child.ID)
		before := f.admWant(t, alice, http.MethodGet, keyPath, "", http.StatusOK)
		beforeAcc := f.admWant(t, alice, http.MethodGet, childPath, "", http.StatusOK)
		many := make([]string, 10000)
		for i := range many {
			many[i] = fmt.Sprintf("10.%d.%d.0/24", i/256, i%256)
		}
		manyBody, _ := json.Marshal(map[string]any{"allowed_cidrs": many[:101]})
		hugeBody, _ := json.Marshal(map[string]any{"allowed_cidrs": many})
		for _, c := range []struct {
			path, body string
			status     int
			field      string
		}{
			{keyPath, `{"quota":{"limit":0,"period":"day"}}`, 422, "quota.limit"},
			{keyPath, `{"quota":{"limit":-1,"period":"day"}}`, 422, "quota.limit"},
			{keyPath, `{"quota":{"limit":1125899906842625,"period":"day"}}`, 422, "quota.limit"},
			{keyPath, `{"quota":{"limit":9223372036854775808,"period":"day"}}`, 400, "quota.limit"},
			{keyPath, `{"quota":{"limit":1e30,"period":"day"}}`, 400, "quota.limit"},
			{keyPath, `{"quota":{"limit":1.5,"period":"day"}}`, 400, "quota.limit"},
			{keyPath, `{"quota":{"limit":"1000","period":"day"}}`, 400, "quota.limit"},
			{keyPath, `{"quota":{"limit":10,"period":"week"}}`, 422, "quota.period"},
			{keyPath, `{"quota":{"limit":10}}`, 422, "quota.period"},
			{keyPath, `{"quota":{"limit":10,"period":"day","burst":1}}`, 400, "burst"},
			{keyPath, `{"quota":{"limit":10,"limit":20,"period":"day"}}`, 400, "quota/limit"},
			{keyPath, `{"quota":"1000/day"}`, 400, "quota"},
			{keyPath, `{"quota":[1000]}`, 400, "quota"},
			{keyPath, `{"allowed_cidrs":["10.0.0.1/33"]}`, 422, "allowed_cidrs[0]"},
			{keyPath, `{"allowed_cidrs":["10.0.0.0/8","::/129"]}`, 422, "allowed_cidrs[1]"},
			{keyPath, `{"allowed_cidrs":["garbage"]}`, 422, "allowed_cidrs[0]"},
			{keyPath, `{"allowed_cidrs":["10.0.0.0/8\u0000"]}`, 422, "allowed_cidrs[0]"},
			{keyPath, `{"allowed_cidrs":"10.0.0.0/8"}`, 400, "allowed_cidrs"},
			{keyPath, `{"allowed_cidrs":[10]}`, 400, "allowed_cidrs"},
			{keyPath, `{"allowed_cidrs":null}`, 200, ""}, // null: left as it is
			{keyPath, string(manyBody), 422, "allowed_cidrs"},
			{keyPath, string(hugeBody), 413, ""},
			{childPath, `{"budget":{"rate_limits":{"default":{"rate":"10","burst":1}}}}`, 400, "budget.rate_limits.rate"},
			{childPath, `{"budget":{"rate_limits":{"default":{"rate":0,"burst":1}}}}`, 422, "budget.rate_limits"},
			{childPath, `{"budget":{"rate_limits":{"nope":{"rate":1,"burst":1}}}}`, 422, "budget.rate_limits"},
			{childPath, `{"budget":{"rate_limits":[1]}}`, 400, "budget.rate_limits"},
			{childPath, `{"budget":{"quota":{"limit":-5,"period":"month"}}}`, 422, "budget.quota.limit"},
			{childPath, `{"budget":{"quota":{"limit":5,"period":"year"}}}`, 422, "budget.quota.period"},
			{childPath, `{"budget":{"quota":{"limit":5,"period":"day"},"quota":null}}`, 400, "budget/quota"},
			{childPath, `{"budget":{"extra":1}}`, 400, "extra"},
			{childPath, `{"budget":true}`, 400, "budget"},
			{childPath, `{"budget":"unlimited"}`, 400, "budget"},
		} {
			res := f.admDo(t, alice, http.MethodPatch, c.path, c.body)
			if c.status == 200 {
				if res.status != 200 {
					t.Errorf("%s: status %d %s, want 200", c.body, res.status, res.body)
				}
				continue
			}
			if c.field == "" {
				if res.status != c.status {
					t.Errorf("%.80s: status %d, want %d", c.body, res.status, c.status)
				}
				continue
			}
			t.Run(c.body[:min(len(c.body), 60)], func(t *testing.T) { admProblem(t, res, c.status, c.field) })
		}
		after := f.admWant(t, alice, http.MethodGet, keyPath, "", http.StatusOK)
		afterAcc := f.admWant(t, alice, http.MethodGet, childPath, "", http.StatusOK)
		for _, k := range []string{"quota", "allowed_cidrs"} {
			if fmt.Sprint(before[k]) != fmt.Sprint(after[k]) {
				t.Errorf("%s changed by refused requests: %v → %v", k, before[k], after[k])
			}
		}
		if fmt.Sprint(beforeAcc["budget"]) != fmt.Sprint(afterAcc["budget"]) || !strings.Contains(fmt.Sprint(afterAcc), "budget") {
			t.Errorf("budget changed by refused requests: %v → %v", beforeAcc["budget"], afterAcc["budget"])
		}
	})
}
