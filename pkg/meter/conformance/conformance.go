// Package conformance is the test suite every meter.Decider backend must
// pass, so that the in-process decider and the Redis one decide alike. A
// backend's test calls Run with a constructor; the suite owns the cases.
//
// Per-second limits run on the backend's clock (the Redis server's): the
// cases that depend on them use rates slow enough (1/s, 1 per 10 s) that no
// refill happens between two calls on a loaded machine. Quotas and counts
// run on the request's Now, which the suite chooses.
package conformance

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/meter"
	"github.com/tollgate/tollgate/pkg/ratelimit"
	"github.com/tollgate/tollgate/pkg/usage"
	"github.com/tollgate/tollgate/storage"
)

// Counts reads back the counts of root's minute, by usage.CountField.
type Counts func(t *testing.T, root int64, minute time.Time) map[string]int64

// Run runs the suite; newDecider returns a fresh backend and the reader of
// the counts it writes.
func Run(t *testing.T, newDecider func(t *testing.T) (meter.Decider, Counts)) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, d meter.Decider, counts Counts)
	}{
		{"RateRefuses", testRateRefuses},
		{"QuotaRefusesUntilRefill", testQuotaRefusesUntilRefill},
		{"RefusedSpendsNothing", testRefusedSpendsNothing},
		{"AncestorBudgetHolds", testAncestorBudgetHolds},
		{"MoreKeysBuyNothing", testMoreKeysBuyNothing},
		{"Cost", testCost},
		{"Thresholds", testThresholds},
		{"Counts", testCounts},
		{"Concurrent", testConcurrent},
		{"Invalid", testInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, counts := newDecider(t)
			tc.fn(t, d, counts)
		})
	}
}

var roots atomic.Int64

// newRoot returns a root account id no other case uses.
func newRoot() int64 { return 1_000_000 + roots.Add(1)*1000 }

// slow is a per-second limit that does not refill between two calls.
var slow = ratelimit.Limit{Rate: 1, Burst: 1000}

func decide(t *testing.T, d meter.Decider, req meter.Request) meter.Decision {
	t.Helper()
	if req.Cost == 0 {
		req.Cost = 1
	}
	if req.Class == "" {
		req.Class = "default"
	}
	if req.Rate == (ratelimit.Limit{}) {
		req.Rate = slow
	}
	if req.Now.IsZero() {
		req.Now = time.Now()
	}
	dec, err := d.Decide(t.Context(), req)
	if err != nil {
		t.Fatalf("Decide(%+v): %v", req, err)
	}
	return dec
}

func spent(t *testing.T, d meter.Decider, root int64, h meter.Holder, q storage.Quota, now time.Time) int64 {
	t.Helper()
	n, err := d.Spent(t.Context(), root, h, q, now)
	if err != nil {
		t.Fatalf("Spent(%d, %+v): %v", root, h, err)
	}
	return n
}

func wantRefusal(t *testing.T, step string, dec meter.Decision, kind meter.Kind, account int64) {
	t.Helper()
	c, ok := dec.Refused()
	if !ok {
		t.Fatalf("%s: got allowed, want refused by %s of account %d", step, kind, account)
	}
	if c.Limit.Kind != kind || c.Limit.AccountID != account {
		t.Fatalf("%s: refused by %s of account %d, want %s of account %d", step, c.Limit.Kind, c.Limit.AccountID, kind, account)
	}
	if dec.RetryAfter() <= 0 {
		t.Errorf("%s: RetryAfter %v, want > 0", step, dec.RetryAfter())
	}
	wantOutcome := usage.OutcomeRateLimited
	if kind == meter.KindQuota {
		wantOutcome = usage.OutcomeQuotaExceeded
	}
	if dec.Outcome != wantOutcome {
		t.Errorf("%s: outcome %q, want %q", step, dec.Outcome, wantOutcome)
	}
}

func wantAllowed(t *testing.T, step string, dec meter.Decision) {
	t.Helper()
	if !dec.Allowed || dec.Outcome != usage.OutcomeAllowed {
		c, _ := dec.Refused()
		t.Fatalf("%s: refused by %+v, want allowed", step, c.Limit)
	}
}

func testRateRefuses(t *testing.T, d meter.Decider, _ Counts) {
	req := meter.Request{Root: newRoot(), CredentialID: 1, AccountID: 1, Rate: ratelimit.Limit{Rate: 1, Burst: 3}}
	req.Root = newRoot()
	for i := range 3 {
		dec := decide(t, d, req)
		wantAllowed(t, "within the burst", dec)
		if got, want := dec.Checks[0].Remaining, int64(2-i); got != want {
			t.Errorf("call %d: remaining %d, want %d", i+1, got, want)
		}
	}
	dec := decide(t, d, req)
	wantRefusal(t, "past the burst", dec, meter.KindRate, 0)
	if r := dec.RetryAfter(); r > time.Second {
		t.Errorf("RetryAfter %v, want at most 1s at 1/s", r)
	}
	// Another class and another credential have limits of their own.
	other := req
	other.Class = "search"
	wantAllowed(t, "another class", decide(t, d, other))
	other = req
	other.CredentialID = 2
	wantAllowed(t, "another credential", decide(t, d, other))
}

func testQuotaRefusesUntilRefill(t *testing.T, d meter.Decider, _ Counts) {
	now := time.Now().UTC()
	q := storage.Quota{Limit: 3, Period: storage.QuotaDay}
	req := meter.Request{Root: newRoot(), CredentialID: 7, AccountID: 1, Quota: &q, Now: now}
	for range 3 {
		wantAllowed(t, "within the quota", decide(t, d, req))
	}
	dec := decide(t, d, req)
	wantRefusal(t, "over the quota", dec, meter.KindQuota, 0)
	_, next := q.Start(now)
	if got := dec.RetryAfter(); got != next.Sub(now) {
		t.Errorf("RetryAfter %v, want %v (until the next UTC midnight)", got, next.Sub(now))
	}
	if got := spent(t, d, req.Root, meter.Holder{CredentialID: 7}, q, now); got != 3 {
		t.Errorf("Spent = %d, want 3", got)
	}
	// The next UTC day refills it.
	req.Now = next.Add(time.Second)
	wantAllowed(t, "after the refill", decide(t, d, req))
	if got := spent(t, d, req.Root, meter.Holder{CredentialID: 7}, q, req.Now); got != 1 {
		t.Errorf("Spent the next day = %d, want 1", got)
	}
	if got := spent(t, d, req.Root, meter.Holder{CredentialID: 7}, q, now); got != 3 {
		t.Errorf("Spent of the day before = %d, want 3 (read-only)", got)
	}
	// A month quota refills at the first of the next month.
	mq := storage.Quota{Limit: 1, Period: storage.QuotaMonth}
	mreq := meter.Request{Root: newRoot(), CredentialID: 8, AccountID: 1, Quota: &mq, Now: now}
	wantAllowed(t, "month quota", decide(t, d, mreq))
	dec = decide(t, d, mreq)
	wantRefusal(t, "month quota spent", dec, meter.KindQuota, 0)
	_, mnext := mq.Start(now)
	if got := dec.RetryAfter(); got != mnext.Sub(now) {
		t.Errorf("month RetryAfter %v, want %v", got, mnext.Sub(now))
	}
}

// testRefusedSpendsNothing: a call refused by any limit spends none of the
// others.
func testRefusedSpendsNothing(t *testing.T, d meter.Decider, _ Counts) {
	now := time.Now().UTC()
	own := storage.Quota{Limit: 100, Period: storage.QuotaDay}
	budget := storage.Quota{Limit: 2, Period: storage.QuotaDay}
	root := newRoot()
	req := meter.Request{Root: root, CredentialID: 3, AccountID: root, Quota: &own, Now: now,
		Budgets: []meter.Budget{{AccountID: root, Quota: &budget}}}
	wantAllowed(t, "1", decide(t, d, req))
	wantAllowed(t, "2", decide(t, d, req))
	for range 3 {
		wantRefusal(t, "budget spent", decide(t, d, req), meter.KindQuota, root)
	}
	if got := spent(t, d, root, meter.Holder{CredentialID: 3}, own, now); got != 2 {
		t.Errorf("credential quota spent %d after 2 allowed and 3 refused calls, want 2", got)
	}
	// A rate refusal spends no quota either.
	rate := ratelimit.Limit{Rate: 1, Burst: 1}
	req2 := meter.Request{Root: newRoot(), CredentialID: 4, AccountID: 1, Quota: &own, Rate: rate, Now: now}
	wantAllowed(t, "first", decide(t, d, req2))
	wantRefusal(t, "rate", decide(t, d, req2), meter.KindRate, 0)
	if got := spent(t, d, req2.Root, meter.Holder{CredentialID: 4}, own, now); got != 1 {
		t.Errorf("quota spent %d after a rate refusal, want 1", got)
	}
	// A quota refusal spends no rate: the burst is still there.
	tiny := storage.Quota{Limit: 1, Period: storage.QuotaDay}
	req3 := meter.Request{Root: newRoot(), CredentialID: 5, AccountID: 1, Quota: &tiny, Rate: ratelimit.Limit{Rate: 1, Burst: 3}, Now: now}
	wantAllowed(t, "first", decide(t, d, req3))
	wantRefusal(t, "quota", decide(t, d, req3), meter.KindQuota, 0)
	req3.Quota = nil
	wantAllowed(t, "burst left after a quota refusal", decide(t, d, req3))
	if dec := decide(t, d, req3); !dec.Allowed {
		t.Errorf("third call refused: the quota refusal spent the rate")
	}
}

// testAncestorBudgetHolds: a parent's budget holds for the credentials of a
// child account, rate and quota alike.
func testAncestorBudgetHolds(t *testing.T, d meter.Decider, _ Counts) {
	now := time.Now().UTC()
	root := newRoot()
	parent, child := root, root+1
	pq := storage.Quota{Limit: 3, Period: storage.QuotaDay}
	cq := storage.Quota{Limit: 10, Period: storage.QuotaDay}
	req := meter.Request{Root: root, CredentialID: 11, AccountID: child, Now: now,
		Budgets: []meter.Budget{{AccountID: child, Quota: &cq}, {AccountID: parent, Quota: &pq}}}
	for range 3 {
		wantAllowed(t, "within", decide(t, d, req))
	}
	wantRefusal(t, "parent budget spent", decide(t, d, req), meter.KindQuota, parent)
	if got := spent(t, d, root, meter.Holder{AccountID: child}, cq, now); got != 3 {
		t.Errorf("child budget spent %d, want 3", got)
	}
	// The parent's per-second limit holds too.
	pr := ratelimit.Limit{Rate: 1, Burst: 2}
	rreq := meter.Request{Root: newRoot(), CredentialID: 12, AccountID: 2, Now: now,
		Budgets: []meter.Budget{{AccountID: 2, Rate: &slow}, {AccountID: 1, Rate: &pr}}}
	rreq.Budgets[1].AccountID = rreq.Root
	wantAllowed(t, "1", decide(t, d, rreq))
	wantAllowed(t, "2", decide(t, d, rreq))
	wantRefusal(t, "parent rate", decide(t, d, rreq), meter.KindRate, rreq.Root)
}

// testMoreKeysBuyNothing: the credentials of an account share its budget.
func testMoreKeysBuyNothing(t *testing.T, d meter.Decider, _ Counts) {
	now := time.Now().UTC()
	root := newRoot()
	q := storage.Quota{Limit: 5, Period: storage.QuotaMonth}
	br := ratelimit.Limit{Rate: 1, Burst: 1000}
	allowed := 0
	for cred := int64(1); cred <= 4; cred++ {
		for range 3 {
			req := meter.Request{Root: root, CredentialID: cred, AccountID: root, Now: now, Budgets: []meter.Budget{{AccountID: root, Rate: &br, Quota: &q}}}
			if decide(t, d, req).Allowed {
				allowed++
			}
		}
	}
	if allowed != 5 {
		t.Errorf("4 credentials × 3 calls under a budget of 5: %d allowed, want 5", allowed)
	}
	// The budget's per-second limit is shared too.
	root = newRoot()
	shared := ratelimit.Limit{Rate: 1, Burst: 3}
	allowed = 0
	for cred := int64(1); cred <= 3; cred++ {
		for range 2 {
			req := meter.Request{Root: root, CredentialID: cred, AccountID: root, Now: now, Budgets: []meter.Budget{{AccountID: root, Rate: &shared}}}
			if decide(t, d, req).Allowed {
				allowed++
			}
		}
	}
	if allowed != 3 {
		t.Errorf("3 credentials × 2 calls under a budget burst of 3: %d allowed, want 3", allowed)
	}
}

func testCost(t *testing.T, d meter.Decider, _ Counts) {
	now := time.Now().UTC()
	q := storage.Quota{Limit: 5, Period: storage.QuotaDay}
	req := meter.Request{Root: newRoot(), CredentialID: 1, AccountID: 1, Quota: &q, Cost: 3, Now: now}
	dec := decide(t, d, req)
	wantAllowed(t, "cost 3 of 5", dec)
	if c := dec.Checks[1]; c.Used != 3 || c.Remaining != 2 {
		t.Errorf("after cost 3: used %d, remaining %d, want 3 and 2", c.Used, c.Remaining)
	}
	wantRefusal(t, "cost 3 more", decide(t, d, req), meter.KindQuota, 0)
	req.Cost = 2
	wantAllowed(t, "cost 2: exactly the limit", decide(t, d, req))
	if got := spent(t, d, req.Root, meter.Holder{CredentialID: 1}, q, now); got != 5 {
		t.Errorf("Spent %d, want 5", got)
	}
	req.Cost = 1
	wantRefusal(t, "full", decide(t, d, req), meter.KindQuota, 0)
	// A cost above the quota itself never passes.
	big := storage.Quota{Limit: 10, Period: storage.QuotaDay}
	breq := meter.Request{Root: newRoot(), CredentialID: 1, AccountID: 1, Quota: &big, Cost: 11, Now: now}
	wantRefusal(t, "cost above the limit", decide(t, d, breq), meter.KindQuota, 0)
}

func testThresholds(t *testing.T, d meter.Decider, _ Counts) {
	now := time.Now().UTC()
	root := newRoot()
	q := storage.Quota{Limit: 10, Period: storage.QuotaDay}
	bq := storage.Quota{Limit: 100, Period: storage.QuotaDay}
	req := meter.Request{Root: root, CredentialID: 9, AccountID: root, Quota: &q, Now: now, Cost: 7,
		Budgets: []meter.Budget{{AccountID: root, Quota: &bq}}}
	if dec := decide(t, d, req); len(dec.Thresholds) != 0 {
		t.Errorf("70%%: thresholds %+v, want none", dec.Thresholds)
	}
	req.Cost = 1
	dec := decide(t, d, req)
	start, _ := q.Start(now)
	want := usage.QuotaThreshold{AccountID: root, CredentialID: 9, Percent: 80, Limit: 10, Used: 8, Period: storage.QuotaDay, PeriodStart: start}
	if len(dec.Thresholds) != 1 || dec.Thresholds[0] != want {
		t.Errorf("80%%: thresholds %+v, want [%+v]", dec.Thresholds, want)
	}
	if dec := decide(t, d, req); len(dec.Thresholds) != 0 {
		t.Errorf("90%%: thresholds %+v, want none", dec.Thresholds)
	}
	req.Cost = 1
	dec = decide(t, d, req)
	if len(dec.Thresholds) != 1 || dec.Thresholds[0].Percent != 100 {
		t.Errorf("100%%: thresholds %+v, want one at 100", dec.Thresholds)
	}
	// A budget's crossing names the account, no credential; one call can
	// cross both of its thresholds.
	broot := newRoot()
	breq := meter.Request{Root: broot, CredentialID: 9, AccountID: broot + 1, Now: now, Cost: 100,
		Budgets: []meter.Budget{{AccountID: broot, Quota: &bq}}}
	dec = decide(t, d, breq)
	if len(dec.Thresholds) != 2 || dec.Thresholds[0].AccountID != broot || dec.Thresholds[0].CredentialID != 0 ||
		dec.Thresholds[0].Percent != 80 || dec.Thresholds[1].Percent != 100 {
		t.Errorf("budget from 0 to 100%%: thresholds %+v, want 80 and 100 of account %d", dec.Thresholds, broot)
	}
	// A refused call crosses nothing.
	if dec := decide(t, d, breq); dec.Allowed || len(dec.Thresholds) != 0 {
		t.Errorf("refused call: allowed %t, thresholds %+v", dec.Allowed, dec.Thresholds)
	}
}

func testCounts(t *testing.T, d meter.Decider, counts Counts) {
	now := time.Now().UTC()
	root := newRoot()
	q := storage.Quota{Limit: 2, Period: storage.QuotaDay}
	rate := ratelimit.Limit{Rate: 1, Burst: 3}
	req := meter.Request{Root: root, CredentialID: 21, AccountID: root, Quota: &q, Rate: rate, Class: "search", Now: now}
	for range 4 { // 2 allowed, 2 over the quota
		decide(t, d, req)
	}
	req.Quota = nil
	for range 2 { // 1 allowed (the burst has one left), 1 over the rate
		decide(t, d, req)
	}
	got := counts(t, root, now.Truncate(time.Minute))
	want := map[string]int64{
		usage.CountField(21, "search", usage.OutcomeAllowed):       3,
		usage.CountField(21, "search", usage.OutcomeQuotaExceeded): 2,
		usage.CountField(21, "search", usage.OutcomeRateLimited):   1,
	}
	if len(got) != len(want) {
		t.Errorf("counts %v, want %v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("count %s = %d, want %d", k, got[k], w)
		}
	}
	// Another minute is counted apart.
	req.Now = now.Add(time.Minute)
	req.Rate = slow
	decide(t, d, req)
	if got := counts(t, root, req.Now.Truncate(time.Minute)); got[usage.CountField(21, "search", usage.OutcomeAllowed)] != 1 {
		t.Errorf("next minute's counts %v, want one allowed", got)
	}
}

// testConcurrent: no more than the limit passes, whatever the concurrency,
// and a refused call spends nothing.
func testConcurrent(t *testing.T, d meter.Decider, _ Counts) {
	now := time.Now().UTC()
	root := newRoot()
	cq := storage.Quota{Limit: 60, Period: storage.QuotaDay}
	pq := storage.Quota{Limit: 100, Period: storage.QuotaDay}
	var (
		wg      sync.WaitGroup
		allowed atomic.Int64
	)
	for g := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 15 {
				req := meter.Request{Root: root, CredentialID: int64(1 + g%4), AccountID: root + 1, Class: "default", Cost: 1, Rate: slow, Now: now,
					Budgets: []meter.Budget{{AccountID: root + 1, Quota: &cq}, {AccountID: root, Quota: &pq}}}
				dec, err := d.Decide(t.Context(), req)
				if err != nil {
					t.Error(err)
					return
				}
				if dec.Allowed {
					allowed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if got := allowed.Load(); got != 60 {
		t.Errorf("300 concurrent calls under a child budget of 60: %d allowed, want 60", got)
	}
	if got := spent(t, d, root, meter.Holder{AccountID: root}, pq, now); got != 60 {
		t.Errorf("parent budget spent %d, want 60", got)
	}
}

func testInvalid(t *testing.T, d meter.Decider, _ Counts) {
	good := meter.Request{Root: newRoot(), CredentialID: 1, AccountID: 1, Class: "default", Cost: 1, Rate: slow, Now: time.Now()}
	for name, mutate := range map[string]func(r *meter.Request){
		"cost 0":             func(r *meter.Request) { r.Cost = 0 },
		"negative cost":      func(r *meter.Request) { r.Cost = -1 },
		"cost over MaxCost":  func(r *meter.Request) { r.Cost = meter.MaxCost + 1 },
		"no root":            func(r *meter.Request) { r.Root = 0 },
		"bad rate":           func(r *meter.Request) { r.Rate = ratelimit.Limit{} },
		"bad quota":          func(r *meter.Request) { r.Quota = &storage.Quota{Limit: 0, Period: storage.QuotaDay} },
		"bad budget quota":   func(r *meter.Request) { r.Budgets = []meter.Budget{{AccountID: 1, Quota: &storage.Quota{Limit: 1}}} },
		"class with a brace": func(r *meter.Request) { r.Class = "{x}" },
	} {
		r := good
		mutate(&r)
		if _, err := d.Decide(t.Context(), r); !errors.Is(err, meter.ErrInvalidRequest) {
			t.Errorf("%s: error %v, want ErrInvalidRequest", name, err)
		}
	}
	good.Cost = meter.MaxCost
	if _, err := d.Decide(t.Context(), good); err != nil {
		t.Errorf("cost MaxCost: %v", err)
	}
}
