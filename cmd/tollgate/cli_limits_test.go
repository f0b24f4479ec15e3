package main

import (
	"strconv"
	"strings"
	"testing"
)

// The CLI sets, shows and clears a credential's quota and allowlist, and an
// account's budget; the server's refusals come through as its answer.
func TestCLILimits(t *testing.T) {
	f := newFixture(t, "embedded")
	alice := f.TokenDSP(f.DSP(), "alice")
	bob := f.TokenDSP(f.DSP(), "bob")
	cli := func(tok string, args ...string) cliResult { t.Helper(); return f.cli(tok, nil, args...) }

	created := cli(alice, "keys", "create", "--name", "metered", "--quota", "1000/day",
		"--allowed-cidr", "203.0.113.7/24", "--allowed-cidr", "2001:db8::1,10.0.0.1").ok(t, "keys create")
	id := created.field(t, "id")
	f.HandOut(created.field(t, "key"), created.field(t, "client_secret"))
	if got, want := created.field(t, "quota"), "limit=1000 period=day"; got != want {
		t.Errorf("quota = %q, want %q", got, want)
	}
	if got, want := created.field(t, "allowed_cidrs"), "203.0.113.0/24 2001:db8::1/128 10.0.0.1/32"; got != want {
		t.Errorf("allowed_cidrs = %q, want %q", got, want)
	}
	shown := cli(alice, "keys", "get", id).ok(t, "keys get")
	if got := shown.field(t, "quota_usage"); !strings.Contains(got, "remaining=1000") || !strings.Contains(got, "used=0") {
		t.Errorf("quota_usage = %q, want 1000 remaining", got)
	}
	updated := cli(alice, "keys", "edit", id, "--quota", "none", "--allowed-cidr", "none").ok(t, "keys edit")
	if got := updated.field(t, "quota"); got != "-" {
		t.Errorf("quota after none = %q, want -", got)
	}
	if got := updated.field(t, "allowed_cidrs"); got != "-" && got != "" {
		t.Errorf("allowed_cidrs after none = %q, want none", got)
	}
	for _, bad := range [][]string{
		{"keys", "edit", id, "--quota", "1000/week"},
		{"keys", "edit", id, "--quota", "lots"},
		{"accounts", "budget", strconv.FormatInt(f.Child().ID, 10), "--budget-quota", "5/year"},
		{"accounts", "budget", strconv.FormatInt(f.Child().ID, 10), "--budget-rate", "default"},
	} {
		if res := cli(alice, bad...); exitStatus(res.err) != 2 {
			t.Errorf("%v: err %v (stderr %q), want a usage error", bad, res.err, res.stderr)
		}
	}
	if res := cli(alice, "keys", "edit", id, "--allowed-cidr", "10.0.0.1/33"); res.err == nil || !strings.Contains(res.stderr, "allowed_cidrs[0]") {
		t.Errorf("bad CIDR: err %v, stderr %q; want the server's refusal naming allowed_cidrs[0]", res.err, res.stderr)
	}
	if res := cli(alice, "keys", "edit", id, "--quota", "0/day"); res.err == nil || !strings.Contains(res.stderr, "quota.limit") {
		t.Errorf("zero quota: err %v, stderr %q; want the server's refusal naming quota.limit", res.err, res.stderr)
	}

	child := strconv.FormatInt(f.Child().ID, 10)
	res := cli(alice, "accounts", "budget", child, "--budget-rate", "default=20:40", "--budget-quota", "5000/month").ok(t, "accounts budget")
	if got := res.field(t, "budget"); !strings.Contains(got, "limit=5000") || !strings.Contains(got, "month") || !strings.Contains(got, "rate=20") {
		t.Errorf("budget = %q, want 20:40 and 5000/month", got)
	}
	// Changing the quota alone keeps the rate limits.
	res = cli(alice, "accounts", "budget", child, "--budget-quota", "100/day").ok(t, "accounts budget quota")
	if got := res.field(t, "budget"); !strings.Contains(got, "rate=20") || !strings.Contains(got, "limit=100") {
		t.Errorf("budget = %q, want 20:40 kept and 100/day", got)
	}
	// Bob administers the child: he reads its budget and cannot raise it.
	if got := cli(bob, "accounts", "budget", child).ok(t, "bob reads").field(t, "budget"); !strings.Contains(got, "rate=20") {
		t.Errorf("bob reads budget %q", got)
	}
	if res := cli(bob, "accounts", "budget", child, "--budget-rate", "default=1000000"); res.err == nil || !strings.Contains(res.stderr, "422") {
		t.Errorf("bob raises his budget: err %v, stderr %q; want 422", res.err, res.stderr)
	}
	res = cli(alice, "accounts", "budget", child, "--remove").ok(t, "accounts budget --remove")
	if got := res.field(t, "budget"); got != "-" && got != "" {
		t.Errorf("budget after --remove = %q, want none", got)
	}
}
