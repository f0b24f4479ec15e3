package console

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/tollgate/tollgate/pkg/manage"
	"github.com/tollgate/tollgate/storage"
)

// limitsForm is a credential's quota and IP allowlist as the form shows
// them: the quota's limit and period ("" for none), and the allowlist one
// entry a line.
type limitsForm struct {
	QuotaLimit  string
	QuotaPeriod string
	CIDRs       string
	// MayQuota shows the quota fields: only admins set quotas.
	MayQuota bool
	// Quota and Usage are the stored quota and what is spent of it this
	// period (nil: none, or unread).
	Quota *storage.Quota
	Usage *manage.QuotaUsage
	// Allowed is the stored allowlist.
	Allowed []string
}

func init() {
	credentialLabels["quota"] = "Quota"
	credentialLabels["quota.limit"] = "Quota"
	credentialLabels["quota.period"] = "Quota"
	credentialLabels["allowed_cidrs"] = "Allowed networks"
}

// limitsOf fills the form's limits from cl.
func (c *Console) limitsOf(r *http.Request, st *state, cl storage.Client) limitsForm {
	l := limitsForm{MayQuota: st.act.Admin(), Quota: cl.Quota, Allowed: cl.AllowedCIDRs, CIDRs: strings.Join(cl.AllowedCIDRs, "\n")}
	if cl.Quota != nil {
		l.QuotaLimit, l.QuotaPeriod = strconv.FormatInt(cl.Quota.Limit, 10), string(cl.Quota.Period)
		u, err := c.opts.Service.ClientQuotaUsage(r.Context(), cl)
		if err != nil {
			c.opts.Logger.WarnContext(r.Context(), "read quota usage", "err", err)
		}
		l.Usage = u
	}
	return l
}

// formLimits reads the limits fields into form and in, sending only what
// changed from cur (nil when creating): a member saving a form never sends
// the quota an admin set.
func formLimits(r *http.Request, form *formPage, in *manage.ClientInput, cur *storage.Client) {
	f := r.PostForm
	if f.Get("limits_shown") == "" {
		return
	}
	form.Limits.CIDRs = f.Get("allowed_cidrs")
	cidrs := strings.FieldsFunc(form.Limits.CIDRs, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' || r == ' ' || r == '\t' })
	if cur == nil && len(cidrs) > 0 || cur != nil && !slices.Equal(cidrs, cur.AllowedCIDRs) && !(len(cidrs) == 0 && len(cur.AllowedCIDRs) == 0) {
		if cidrs == nil {
			cidrs = []string{}
		}
		in.AllowedCIDRs = &cidrs
	}
	if f.Get("quota_shown") == "" {
		return
	}
	form.Limits.QuotaLimit, form.Limits.QuotaPeriod = strings.TrimSpace(f.Get("quota_limit")), f.Get("quota_period")
	var next *manage.QuotaInput
	if form.Limits.QuotaPeriod != "" || form.Limits.QuotaLimit != "" {
		n, err := strconv.ParseInt(form.Limits.QuotaLimit, 10, 64)
		if err != nil {
			n = -1 // refused by the service, next to the field
		}
		next = &manage.QuotaInput{Limit: n, Period: form.Limits.QuotaPeriod}
	}
	switch {
	case cur == nil && next == nil:
	case cur != nil && next == nil && cur.Quota == nil:
	case cur != nil && next != nil && cur.Quota != nil && cur.Quota.Limit == next.Limit && string(cur.Quota.Period) == next.Period:
	default:
		in.Quota = manage.Optional[manage.QuotaInput]{Set: true, Value: next}
	}
}

// withLimitFields shows the errors about the quota's limit and period at
// the quota's fieldset.
func withLimitFields(form func(int, formErrors)) func(int, formErrors) {
	return func(status int, errs formErrors) {
		for _, f := range []string{"quota.limit", "quota.period"} {
			if msgs, ok := errs[f]; ok {
				errs["quota"] = append(errs["quota"], msgs...)
				delete(errs, f)
			}
		}
		form(status, errs)
	}
}

// budgetPage is an account's budget on the settings page: shown to every
// admin of the account, editable only by an admin of a parent account (the
// console showing a sub-account of theirs).
type budgetPage struct {
	Budget   *storage.Budget
	Usage    *manage.QuotaUsage
	MayEdit  bool
	Classes  []budgetClass
	Limit    string
	Period   string
	Version  int64
	Disabled bool
}

// budgetClass is one rate class's budget field.
type budgetClass struct {
	Name, Rate, Burst string
}

// budgetLabels name the budget form's fields.
var budgetLabels = map[string]string{
	"budget":              "Budget",
	"budget.rate_limits":  "Rate limits",
	"budget.quota.limit":  "Quota",
	"budget.quota.period": "Quota",
}

func (c *Console) budgetFor(r *http.Request, st *state, acc storage.Account) budgetPage {
	p := budgetPage{Budget: acc.Budget, MayEdit: st.act.Admin() && acc.ID != st.act.AccountID(), Version: acc.Version}
	for _, class := range c.opts.RateClasses {
		bc := budgetClass{Name: class}
		if acc.Budget != nil {
			if l, ok := acc.Budget.RateLimits[class]; ok {
				bc.Rate, bc.Burst = strconv.Itoa(l.Rate), strconv.Itoa(l.Burst)
			}
		}
		p.Classes = append(p.Classes, bc)
	}
	if acc.Budget != nil && acc.Budget.Quota != nil {
		p.Limit, p.Period = strconv.FormatInt(acc.Budget.Quota.Limit, 10), string(acc.Budget.Quota.Period)
		u, err := c.opts.Service.AccountQuotaUsage(r.Context(), acc)
		if err != nil {
			c.opts.Logger.WarnContext(r.Context(), "read budget usage", "err", err)
		}
		p.Usage = u
	}
	return p
}

// saveBudget replaces the budget of the account the console shows: an
// admin of a parent account only (the service refuses the others).
func (c *Console) saveBudget(w http.ResponseWriter, r *http.Request, st *state) {
	if !st.act.Admin() {
		c.failure(w, r, st, forbidden)
		return
	}
	f := r.PostForm
	in := manage.BudgetInput{RateLimits: map[string]storage.RateLimit{}}
	bad := formErrors{}
	for _, class := range c.opts.RateClasses {
		rate, burst := strings.TrimSpace(f.Get("rate_"+class)), strings.TrimSpace(f.Get("burst_"+class))
		if rate == "" && burst == "" {
			continue
		}
		rt, err1 := strconv.Atoi(rate)
		if burst == "" {
			burst = rate
		}
		bt, err2 := strconv.Atoi(burst)
		if err1 != nil || err2 != nil {
			bad["rate_limits"] = append(bad["rate_limits"], "Class "+class+": give whole numbers of requests per second and at once.")
			continue
		}
		in.RateLimits[class] = storage.RateLimit{Rate: rt, Burst: bt}
	}
	if limit, period := strings.TrimSpace(f.Get("budget_limit")), f.Get("budget_period"); limit != "" || period != "" {
		n, err := strconv.ParseInt(limit, 10, 64)
		if err != nil {
			n = -1 // refused by the service, next to the field
		}
		in.Quota = &manage.QuotaInput{Limit: n, Period: period}
	}
	change := manage.Optional[manage.BudgetInput]{Set: true, Value: &in}
	if f.Get("remove") != "" {
		change.Value = nil
	}
	fail := func(status int, errs formErrors) {
		p, perr := c.settingsFor(r, st, st.account)
		if perr != nil {
			c.failure(w, r, st, perr)
			return
		}
		c.render(w, r, st, status, "settings", view{Title: "Account settings", Nav: "settings", Errors: budgetField(errs), Page: p})
	}
	if len(bad) > 0 {
		fail(http.StatusUnprocessableEntity, bad)
		return
	}
	_, err := c.opts.Service.UpdateAccount(r.Context(), st.act, st.account.ID, formInt(r, "version"), manage.AccountInput{Budget: change})
	if err != nil {
		c.refused(w, r, st, err, budgetLabels, fail)
		return
	}
	http.Redirect(w, r, Prefix+"/settings?ok=saved", http.StatusSeeOther)
}

// budgetField is the budget form's field of an API field.
func budgetField(errs formErrors) formErrors {
	out := formErrors{}
	for field, msgs := range errs {
		switch {
		case strings.HasPrefix(field, "budget.quota"):
			field = "budget_quota"
		case field == "budget.rate_limits" || field == "rate_limits":
			field = "budget_rates"
		case field == "budget":
			field = "budget"
		}
		out[field] = append(out[field], msgs...)
	}
	return out
}
