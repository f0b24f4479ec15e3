package meter_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/meter"
	"github.com/tollgate/tollgate/pkg/ratelimit"
	"github.com/tollgate/tollgate/pkg/usage"
	"github.com/tollgate/tollgate/storage"
)

func TestLimitNames(t *testing.T) {
	for _, tt := range []struct {
		l    meter.Limit
		want string
	}{
		{meter.Limit{Kind: meter.KindRate, Class: "default"}, "default"},
		{meter.Limit{Kind: meter.KindQuota, Class: "default"}, "quota"},
		{meter.Limit{Kind: meter.KindRate, AccountID: 42, Class: "reports"}, "account-42-reports"},
		{meter.Limit{Kind: meter.KindQuota, AccountID: 42, Class: "reports"}, "account-42-quota"},
	} {
		if got := tt.l.Name(); got != tt.want {
			t.Errorf("%+v: Name() = %q, want %q", tt.l, got, tt.want)
		}
	}
}

// A quota refusal is named before a rate refusal (it waits longer); among
// rates, the longest wait.
func TestFinishPicksTheRefusal(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	req := meter.Request{Root: 1, CredentialID: 2, AccountID: 3, Class: "default", Cost: 1, Now: now}
	rate := func(account int64, retry time.Duration) meter.Check {
		return meter.Check{Limit: meter.Limit{Kind: meter.KindRate, AccountID: account, Class: "default"}, Allowed: retry == 0, RetryAfter: retry}
	}
	q := storage.Quota{Limit: 5, Period: storage.QuotaDay}
	quota := meter.QuotaCheck(meter.Limit{Kind: meter.KindQuota, AccountID: 9, Quota: q}, false, 5, now)
	d := meter.Finish(req, []meter.Check{rate(0, time.Second), quota, rate(3, 2*time.Second)})
	if c, ok := d.Refused(); !ok || c.Limit.Kind != meter.KindQuota || d.Outcome != usage.OutcomeQuotaExceeded {
		t.Errorf("refused by %+v (%t), outcome %q; want the quota, quota_exceeded", c.Limit, ok, d.Outcome)
	}
	if got, want := d.RetryAfter(), 12*time.Hour; got != want {
		t.Errorf("RetryAfter %v, want %v (until midnight UTC)", got, want)
	}
	d = meter.Finish(req, []meter.Check{rate(0, time.Second), rate(3, 2*time.Second), rate(4, 0)})
	if c, _ := d.Refused(); c.Limit.AccountID != 3 || d.Outcome != usage.OutcomeRateLimited {
		t.Errorf("refused by %+v, outcome %q; want account 3's rate, rate_limited", c.Limit, d.Outcome)
	}
	if d := meter.Finish(req, []meter.Check{rate(0, 0)}); !d.Allowed || d.Refusal != -1 || d.Outcome != usage.OutcomeAllowed {
		t.Errorf("all allowed: %+v", d)
	}
}

func TestHeaders(t *testing.T) {
	now := time.Date(2026, 2, 10, 0, 0, 0, 0, time.UTC)
	q := storage.Quota{Limit: 100, Period: storage.QuotaMonth}
	rate := meter.Check{Limit: meter.Limit{Kind: meter.KindRate, Class: "default", Rate: ratelimit.Limit{Rate: 3, Burst: 3}},
		Allowed: true, Remaining: 2, ResetAfter: 300 * time.Millisecond}
	budget := meter.QuotaCheck(meter.Limit{Kind: meter.KindQuota, AccountID: 7, Quota: q}, true, 40, now)
	h := http.Header{}
	meter.Headers(h, meter.Decision{Allowed: true, Refusal: -1, Checks: []meter.Check{rate, budget}})
	if got, want := h.Get("RateLimit-Policy"), `"default";q=3;w=1, "account-7-quota";q=100;w=2419200`; got != want {
		t.Errorf("RateLimit-Policy %q, want %q (February: 28 days)", got, want)
	}
	if got, want := h.Get("RateLimit"), `"default";r=2;t=1, "account-7-quota";r=60;t=1641600`; got != want {
		t.Errorf("RateLimit %q, want %q", got, want)
	}
	if h.Get("Retry-After") != "" || h.Get(meter.HeaderRefusal) != "" {
		t.Errorf("allowed: Retry-After %q, refusal %q; want none", h.Get("Retry-After"), h.Get(meter.HeaderRefusal))
	}
	refused := meter.QuotaCheck(meter.Limit{Kind: meter.KindQuota, AccountID: 7, Quota: q}, false, 100, now)
	h = http.Header{}
	meter.Headers(h, meter.Decision{Refusal: 1, Checks: []meter.Check{rate, refused}})
	if got, want := h.Get("RateLimit-Policy"), `"account-7-quota";q=100;w=2419200`; got != want {
		t.Errorf("refused: RateLimit-Policy %q, want only the refusing limit %q", got, want)
	}
	if got := h.Get(meter.HeaderRefusal); got != "quota" {
		t.Errorf("refusal %q, want quota", got)
	}
	if got := h.Get("Retry-After"); got != "1641600" {
		t.Errorf("Retry-After %q, want 1641600 (19 days, to March 1st)", got)
	}
}
