package admin

import (
	"time"

	"github.com/tollgate/tollgate/pkg/manage"
	"github.com/tollgate/tollgate/storage"
)

// quotaView is a quota: at most limit (calls, or their cost) per UTC day
// or month.
type quotaView struct {
	Limit  int64  `json:"limit"`
	Period string `json:"period"`
}

// quotaUsageView is what is spent of a quota in the current period.
type quotaUsageView struct {
	Used      int64     `json:"used"`
	Remaining int64     `json:"remaining"`
	ResetsAt  time.Time `json:"resets_at"`
}

// budgetView is an account's budget: per-second limits per rate class and
// a quota, for the whole subtree together.
type budgetView struct {
	RateLimits map[string]rateLimitView `json:"rate_limits"`
	Quota      *quotaView               `json:"quota"`
}

func viewQuota(q *storage.Quota) *quotaView {
	if q == nil {
		return nil
	}
	return &quotaView{Limit: q.Limit, Period: string(q.Period)}
}

func viewQuotaUsage(u *manage.QuotaUsage) *quotaUsageView {
	if u == nil {
		return nil
	}
	return &quotaUsageView{Used: u.Used, Remaining: u.Remaining, ResetsAt: u.ResetsAt.UTC()}
}

func viewBudget(b *storage.Budget) *budgetView {
	if b == nil || b.Empty() {
		return nil
	}
	v := &budgetView{RateLimits: map[string]rateLimitView{}, Quota: viewQuota(b.Quota)}
	for class, l := range b.RateLimits {
		v.RateLimits[class] = rateLimitView{Rate: l.Rate, Burst: l.Burst}
	}
	return v
}

// quotaInput returns a quota member as the service takes it.
func quotaInput(in Optional[quotaView]) manage.Optional[manage.QuotaInput] {
	out := manage.Optional[manage.QuotaInput]{Set: in.Set}
	if in.Value != nil {
		out.Value = &manage.QuotaInput{Limit: in.Value.Limit, Period: in.Value.Period}
	}
	return out
}

// budgetInput is the budget member of an account body; null removes the
// budget, an object replaces it whole.
type budgetInput struct {
	RateLimits map[string]rateLimitView `json:"rate_limits"`
	Quota      *quotaView               `json:"quota"`
}

// budgetDomain returns a budget member as the service takes it.
func budgetDomain(in Optional[budgetInput]) manage.Optional[manage.BudgetInput] {
	out := manage.Optional[manage.BudgetInput]{Set: in.Set}
	if in.Value == nil {
		return out
	}
	b := manage.BudgetInput{RateLimits: map[string]storage.RateLimit{}}
	for class, l := range in.Value.RateLimits {
		b.RateLimits[class] = storage.RateLimit{Rate: l.Rate, Burst: l.Burst}
	}
	if q := in.Value.Quota; q != nil {
		b.Quota = &manage.QuotaInput{Limit: q.Limit, Period: q.Period}
	}
	out.Value = &b
	return out
}
