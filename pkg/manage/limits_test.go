package manage_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/manage"
	"github.com/tollgate/tollgate/storage"
)

func TestCanonicalCIDRs(t *testing.T) {
	tests := []struct {
		in       []string
		want     []string
		badField string
	}{
		{in: []string{"10.1.2.3/8"}, want: []string{"10.0.0.0/8"}},
		{in: []string{"192.0.2.7"}, want: []string{"192.0.2.7/32"}},
		{in: []string{"2001:db8::1"}, want: []string{"2001:db8::1/128"}},
		{in: []string{"2001:db8::1/32", "2001:db8::/32"}, want: []string{"2001:db8::/32"}},
		{in: []string{"::ffff:10.0.0.1"}, want: []string{"10.0.0.1/32"}},
		{in: []string{"::ffff:10.0.0.0/104"}, want: []string{"10.0.0.0/8"}},
		{in: []string{" 10.0.0.0/8 ", "10.0.0.0/8"}, want: []string{"10.0.0.0/8"}},
		{in: []string{}, want: nil},
		{in: []string{"10.0.0.1/33"}, badField: "allowed_cidrs[0]"},
		{in: []string{"10.0.0.0/8", "::/129"}, badField: "allowed_cidrs[1]"},
		{in: []string{"garbage"}, badField: "allowed_cidrs[0]"},
		{in: []string{""}, badField: "allowed_cidrs[0]"},
		{in: []string{"10.0.0.1/-1"}, badField: "allowed_cidrs[0]"},
		{in: []string{"fe80::1%eth0"}, badField: "allowed_cidrs[0]"},
		{in: []string{"10.0.0.1/8/8"}, badField: "allowed_cidrs[0]"},
		{in: slices.Repeat([]string{"10.0.0.1"}, manage.MaxAllowedCIDRs+1), badField: "allowed_cidrs"},
	}
	for _, tt := range tests {
		got, errs := manage.CanonicalCIDRs(tt.in)
		if tt.badField != "" {
			if len(errs) == 0 || errs[0].Field != tt.badField {
				t.Errorf("CanonicalCIDRs(%q) errors = %v, want one on %s", tt.in, errs, tt.badField)
			}
			continue
		}
		if errs != nil || !slices.Equal(got, tt.want) {
			t.Errorf("CanonicalCIDRs(%q) = %q, %v; want %q", tt.in, got, errs, tt.want)
		}
	}
}

// spent answers fixed amounts, so the views' arithmetic can be checked.
type spent struct{ credential, account int64 }

func (s spent) CredentialSpent(context.Context, int64, int64, time.Time) (int64, error) {
	return s.credential, nil
}

func (s spent) AccountSpent(context.Context, int64, int64, time.Time) (int64, error) {
	return s.account, nil
}

func fieldsOf(err error) []string {
	e, ok := errors.AsType[*manage.Error](err)
	if !ok {
		return nil
	}
	var out []string
	for _, f := range e.Fields {
		out = append(out, f.Field)
	}
	return out
}

func TestCredentialLimits(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		key, _, err := f.svc.CreateClient(ctx, f.a.asAdmin, storage.KindKey, manage.ClientInput{
			Name:         ptr("limited"),
			Quota:        manage.Optional[manage.QuotaInput]{Set: true, Value: &manage.QuotaInput{Limit: 1000, Period: "day"}},
			AllowedCIDRs: &[]string{"10.1.2.3/8", "192.0.2.1"},
		})
		if err != nil {
			t.Fatalf("CreateClient: %v", err)
		}
		if key.Quota == nil || *key.Quota != (storage.Quota{Limit: 1000, Period: storage.QuotaDay}) {
			t.Errorf("quota = %+v, want 1000/day", key.Quota)
		}
		if want := []string{"10.0.0.0/8", "192.0.2.1/32"}; !slices.Equal(key.AllowedCIDRs, want) {
			t.Errorf("allowed_cidrs = %q, want %q", key.AllowedCIDRs, want)
		}

		// Bad values are refused, each by its field.
		bad := []struct {
			in   manage.ClientInput
			want string
		}{
			{manage.ClientInput{Quota: manage.Optional[manage.QuotaInput]{Set: true, Value: &manage.QuotaInput{Limit: 0, Period: "day"}}}, "quota.limit"},
			{manage.ClientInput{Quota: manage.Optional[manage.QuotaInput]{Set: true, Value: &manage.QuotaInput{Limit: -5, Period: "day"}}}, "quota.limit"},
			{manage.ClientInput{Quota: manage.Optional[manage.QuotaInput]{Set: true, Value: &manage.QuotaInput{Limit: storage.MaxQuotaLimit + 1, Period: "month"}}}, "quota.limit"},
			{manage.ClientInput{Quota: manage.Optional[manage.QuotaInput]{Set: true, Value: &manage.QuotaInput{Limit: 5, Period: "week"}}}, "quota.period"},
			{manage.ClientInput{AllowedCIDRs: &[]string{"10.0.0.1/33"}}, "allowed_cidrs[0]"},
		}
		for _, b := range bad {
			_, err := f.svc.UpdateClient(ctx, f.a.asAdmin, storage.KindKey, key.ID, 0, b.in)
			if code(err) != manage.Invalid || !slices.Contains(fieldsOf(err), b.want) {
				t.Errorf("UpdateClient(%+v) = %v (fields %v), want invalid on %s", b.in, err, fieldsOf(err), b.want)
			}
		}

		// A member may fence in their own key, but not give it a quota.
		own, _, err := f.svc.CreateClient(ctx, f.a.asMem, storage.KindKey, manage.ClientInput{Name: ptr("mine")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.UpdateClient(ctx, f.a.asMem, storage.KindKey, own.ID, 0, manage.ClientInput{AllowedCIDRs: &[]string{"2001:db8::/48"}}); err != nil {
			t.Errorf("member sets allowed_cidrs: %v", err)
		}
		_, err = f.svc.UpdateClient(ctx, f.a.asMem, storage.KindKey, own.ID, 0, manage.ClientInput{
			Quota: manage.Optional[manage.QuotaInput]{Set: true, Value: &manage.QuotaInput{Limit: 5, Period: "day"}}})
		if code(err) != manage.Invalid || !slices.Contains(fieldsOf(err), "quota") {
			t.Errorf("member sets quota: %v, want invalid on quota", err)
		}

		// Clearing: null quota, empty list.
		key, err = f.svc.UpdateClient(ctx, f.a.asAdmin, storage.KindKey, key.ID, 0, manage.ClientInput{
			Quota: manage.Optional[manage.QuotaInput]{Set: true}, AllowedCIDRs: &[]string{}})
		if err != nil || key.Quota != nil || len(key.AllowedCIDRs) != 0 {
			t.Fatalf("clear = %+v, %v; want no quota, no allowlist", key, err)
		}
		events, err := f.store.ListAudit(ctx, storage.AuditFilter{AccountID: f.a.account.ID}, storage.Page{Limit: 20})
		if err != nil {
			t.Fatal(err)
		}
		var details []string
		for _, e := range events {
			if e.TargetID == key.ID {
				details = append(details, e.Detail)
			}
		}
		all := strings.Join(details, "\n")
		for _, want := range []string{"quota 1000/day → none", "allowed_cidrs 10.0.0.0/8 192.0.2.1/32 → anywhere", "quota 1000/day, allowed_cidrs"} {
			if !strings.Contains(all, want) {
				t.Errorf("audit details %q lack %q", all, want)
			}
		}
	})
}

func TestAccountBudget(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		budget := manage.Optional[manage.BudgetInput]{Set: true, Value: &manage.BudgetInput{
			RateLimits: map[string]storage.RateLimit{"default": {Rate: 50, Burst: 100}},
			Quota:      &manage.QuotaInput{Limit: 1_000_000, Period: "month"},
		}}
		// The admin of the parent sets the child's budget.
		child, err := f.svc.UpdateAccount(ctx, f.a.asAdmin, f.a.child.ID, 0, manage.AccountInput{Budget: budget})
		if err != nil {
			t.Fatalf("UpdateAccount budget: %v", err)
		}
		if child.Budget == nil || child.Budget.RateLimits["default"] != (storage.RateLimit{Rate: 50, Burst: 100}) ||
			child.Budget.Quota == nil || child.Budget.Quota.Limit != 1_000_000 {
			t.Fatalf("budget = %+v", child.Budget)
		}

		// The child's own admin cannot raise (or touch) it.
		childAdmin, err := f.svc.CreateUser(ctx, f.a.asAdmin, manage.UserInput{Username: ptr("child-admin"), Password: ptr(adminPassword),
			AccountID: ptr(f.a.child.ID), Role: ptr(storage.RoleAdmin)})
		if err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
		asChildAdmin := manage.UserActor(childAdmin, storage.Client{}, "192.0.2.9")
		raise := manage.Optional[manage.BudgetInput]{Set: true, Value: &manage.BudgetInput{
			RateLimits: map[string]storage.RateLimit{"default": {Rate: 1_000_000, Burst: 1_000_000}}}}
		for _, in := range []manage.Optional[manage.BudgetInput]{raise, {Set: true}} {
			_, err = f.svc.UpdateAccount(ctx, asChildAdmin, f.a.child.ID, 0, manage.AccountInput{Budget: in})
			if code(err) != manage.Invalid || !slices.Contains(fieldsOf(err), "budget") {
				t.Errorf("child admin changes own budget: %v, want invalid on budget", err)
			}
		}
		// Nor can the root's admin set the root's own budget, nor a member.
		if _, err := f.svc.UpdateAccount(ctx, f.a.asAdmin, f.a.account.ID, 0, manage.AccountInput{Budget: raise}); code(err) != manage.Invalid {
			t.Errorf("root admin sets own budget: %v, want invalid", err)
		}
		if _, err := f.svc.UpdateAccount(ctx, f.a.asMem, f.a.child.ID, 0, manage.AccountInput{Budget: raise}); code(err) != manage.NotFound {
			t.Errorf("member sets a budget: %v, want not found", err)
		}
		got, err := f.svc.GetAccount(ctx, asChildAdmin, f.a.child.ID)
		if err != nil || got.Budget.RateLimits["default"].Rate != 50 {
			t.Errorf("budget after refusals = %+v, %v; want rate 50", got.Budget, err)
		}

		// Bad budgets.
		for _, b := range []struct {
			in    manage.BudgetInput
			field string
		}{
			{manage.BudgetInput{RateLimits: map[string]storage.RateLimit{"nope": {Rate: 1, Burst: 1}}}, "budget.rate_limits"},
			{manage.BudgetInput{RateLimits: map[string]storage.RateLimit{"default": {Rate: 0, Burst: 1}}}, "budget.rate_limits"},
			{manage.BudgetInput{Quota: &manage.QuotaInput{Limit: 0, Period: "day"}}, "budget.quota.limit"},
			{manage.BudgetInput{Quota: &manage.QuotaInput{Limit: 1, Period: ""}}, "budget.quota.period"},
		} {
			_, err := f.svc.UpdateAccount(ctx, f.a.asAdmin, f.a.child.ID, 0, manage.AccountInput{Budget: manage.Optional[manage.BudgetInput]{Set: true, Value: &b.in}})
			if code(err) != manage.Invalid || !slices.Contains(fieldsOf(err), b.field) {
				t.Errorf("budget %+v: %v (fields %v), want invalid on %s", b.in, err, fieldsOf(err), b.field)
			}
		}

		// Removing it is audited old → new.
		child, err = f.svc.UpdateAccount(ctx, f.a.asAdmin, f.a.child.ID, 0, manage.AccountInput{Budget: manage.Optional[manage.BudgetInput]{Set: true}})
		if err != nil || child.Budget != nil {
			t.Fatalf("remove budget = %+v, %v", child.Budget, err)
		}
		events, err := f.store.ListAudit(ctx, storage.AuditFilter{AccountID: f.a.child.ID}, storage.Page{Limit: 5})
		if err != nil || len(events) == 0 {
			t.Fatal(err)
		}
		if want := "budget rate_limits default=50:100, quota 1000000/month → none"; events[0].Detail != want {
			t.Errorf("audit detail = %q, want %q", events[0].Detail, want)
		}
	})
}

func TestQuotaUsage(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		now := time.Date(2026, 3, 31, 23, 59, 0, 0, time.UTC)
		svc := manage.New(manage.Options{Store: f.store, QuotaSpent: spent{credential: 70, account: 5000}, Now: func() time.Time { return now }})
		c := storage.Client{ID: 7, AccountID: f.a.child.ID, Quota: &storage.Quota{Limit: 50, Period: storage.QuotaDay}}
		u, err := svc.ClientQuotaUsage(ctx, c)
		if err != nil || u == nil {
			t.Fatalf("ClientQuotaUsage: %v, %v", u, err)
		}
		if u.Used != 70 || u.Remaining != 0 || !u.ResetsAt.Equal(time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("usage = %+v, want used 70, remaining 0, resets 2026-04-01", u)
		}
		acc := storage.Account{ID: f.a.child.ID, ParentID: f.a.account.ID, Budget: &storage.Budget{Quota: &storage.Quota{Limit: 8000, Period: storage.QuotaMonth}}}
		u, err = svc.AccountQuotaUsage(ctx, acc)
		if err != nil || u == nil || u.Remaining != 3000 || !u.ResetsAt.Equal(time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("AccountQuotaUsage = %+v, %v; want remaining 3000", u, err)
		}
		if u, err := svc.ClientQuotaUsage(ctx, storage.Client{AccountID: f.a.child.ID}); u != nil || err != nil {
			t.Errorf("no quota: %v, %v; want nil", u, err)
		}
	})
}
