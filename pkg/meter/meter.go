// Package meter owns the check's one decision: for one /auth/check call it
// decides, atomically, the credential's per-second limit for its rate class,
// the credential's quota, and the per-second limits and quotas of the budgets
// of its account and of every ancestor that has one, and counts the call's
// outcome per minute (pkg/usage's layout). Every limit is checked first;
// then either all of them are spent, or none: a refused call spends
// nothing, and is still counted.
//
// Backends are sub-packages: meter/redis (one Lua script, one round trip,
// every key of a root account's tree in one Redis Cluster slot) and
// meter/memory (in process, for the embedded default). Both pass
// meter/conformance. Failing open when the backend is down is a decorator
// (FailOpen), as for pkg/ratelimit.
package meter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/pkg/ratelimit"
	"github.com/tollgate/tollgate/pkg/retryafter"
	"github.com/tollgate/tollgate/pkg/usage"
	"github.com/tollgate/tollgate/storage"
)

// MaxCost bounds the cost of one call: a million units, so that a gateway's
// mistake cannot drain a quota of any real size in one call, and a quota
// counter (at most storage.MaxQuotaLimit plus one cost) stays exact in a
// Lua number (2^53).
const MaxCost = 1_000_000

// ErrInvalidRequest is returned by Decide for a Request that cannot be
// decided: a cost out of range, an invalid limit or quota, no root.
var ErrInvalidRequest = errors.New("invalid meter request")

// QuotaKeyGrace is how long a quota counter outlives its period: instances
// whose clocks disagree near a boundary still read and write the same
// counter, and the remaining quota of a period just ended can be read.
const QuotaKeyGrace = 24 * time.Hour

// Budget is the part of an account's budget that holds for one call: the
// per-second limit of the call's rate class (nil: none) and the quota (nil:
// none).
type Budget struct {
	AccountID int64
	Rate      *ratelimit.Limit
	Quota     *storage.Quota
}

// Request is one call to decide.
type Request struct {
	// Root is the root account of the credential's tree: every counter of
	// the decision is stored under it (in Redis, its hash tag).
	Root         int64
	AccountID    int64 // the credential's account
	CredentialID int64
	Class        string // the rate class
	// Cost is what the call spends of every quota, 1..MaxCost. Per-second
	// limits count calls, whatever their cost.
	Cost    int64
	Rate    ratelimit.Limit // the credential's limit for Class
	Quota   *storage.Quota  // the credential's quota; nil: none
	Budgets []Budget        // the account's and its ancestors', the nearest first
	// Now chooses the minute the call is counted in and the quota periods
	// (UTC). Per-second limits run on the backend's own clock (the Redis
	// server's).
	Now time.Time
}

// Validate returns an error wrapping ErrInvalidRequest when r cannot be
// decided.
func (r Request) Validate() error {
	if r.Root <= 0 || r.CredentialID <= 0 {
		return fmt.Errorf("%w: no root account or credential", ErrInvalidRequest)
	}
	if r.Cost < 1 || r.Cost > MaxCost {
		return fmt.Errorf("%w: cost %d (want 1..%d)", ErrInvalidRequest, r.Cost, MaxCost)
	}
	if r.Class == "" || strings.ContainsAny(r.Class, ":{}") {
		return fmt.Errorf("%w: rate class %q", ErrInvalidRequest, r.Class)
	}
	if err := r.Rate.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	if r.Quota != nil && !r.Quota.Valid() {
		return fmt.Errorf("%w: quota %+v", ErrInvalidRequest, *r.Quota)
	}
	for _, b := range r.Budgets {
		if b.AccountID <= 0 {
			return fmt.Errorf("%w: budget of account %d", ErrInvalidRequest, b.AccountID)
		}
		if b.Rate != nil {
			if err := b.Rate.Validate(); err != nil {
				return fmt.Errorf("%w: budget of account %d: %w", ErrInvalidRequest, b.AccountID, err)
			}
		}
		if b.Quota != nil && !b.Quota.Valid() {
			return fmt.Errorf("%w: budget quota of account %d", ErrInvalidRequest, b.AccountID)
		}
	}
	return nil
}

// Kind is what a limit bounds.
type Kind string

// Kinds of limits; a refusal names its kind in X-Tollgate-Refusal.
const (
	KindRate  Kind = "rate"
	KindQuota Kind = "quota"
)

// Limit is one of the limits a call is held to.
type Limit struct {
	Kind      Kind
	AccountID int64 // the budget's account; 0 for the credential's own
	Class     string
	Rate      ratelimit.Limit // for KindRate
	Quota     storage.Quota   // for KindQuota
}

// Name is the limit's name in the RateLimit-Policy and RateLimit headers:
// the rate class for the credential's per-second limit, "quota" for its
// quota, "account-<id>-<class>" and "account-<id>-quota" for a budget's.
func (l Limit) Name() string {
	var name string
	if l.Kind == KindQuota {
		name = "quota"
	} else {
		name = l.Class
	}
	if l.AccountID == 0 {
		return name
	}
	return "account-" + strconv.FormatInt(l.AccountID, 10) + "-" + name
}

// Check is the verdict of one limit.
type Check struct {
	Limit   Limit
	Allowed bool
	// Remaining is what is left after the call when it was allowed, what is
	// left now when it was refused: calls for a rate, cost for a quota.
	Remaining int64
	// Used is what the quota's period has spent, the call included when it
	// was allowed; 0 for a rate.
	Used int64
	// ResetAfter is when a rate is fully replenished, or a quota refilled.
	ResetAfter time.Duration
	// RetryAfter is how long to wait before this limit lets one more call
	// through; 0 when it allowed this one.
	RetryAfter time.Duration
	// Window is the length of a quota's period (a day, or this month).
	Window time.Duration
}

// Decision is the verdict of one call.
type Decision struct {
	Allowed bool
	// Outcome is the usage outcome it was counted with: allowed,
	// rate_limited or quota_exceeded.
	Outcome string
	// Checks lists every limit's verdict: the credential's rate, its quota,
	// then each budget's rate and quota, the nearest account first.
	Checks []Check
	// Refusal is the index in Checks of the limit that refused (-1 when
	// allowed): a quota before a rate (it waits longer), else the rate
	// with the longest wait.
	Refusal int
	// Thresholds are the quota thresholds (80% and 100%) this call
	// crossed.
	Thresholds []usage.QuotaThreshold
	// FailedOpen marks a call let through with no decision made: the
	// backend failed and FailOpen waived the limits. Nothing was counted.
	FailedOpen bool
}

// Refused answers the check that refused; ok is false when allowed.
func (d Decision) Refused() (Check, bool) {
	if d.Allowed || d.Refusal < 0 || d.Refusal >= len(d.Checks) {
		return Check{}, false
	}
	return d.Checks[d.Refusal], true
}

// RetryAfter is how long to wait before the call could pass: the longest
// wait of the refusing limits (a quota's refill, else a rate's).
func (d Decision) RetryAfter() time.Duration {
	c, ok := d.Refused()
	if !ok {
		return 0
	}
	return c.RetryAfter
}

// Holder names whose quota Spent reads: a credential's (CredentialID) or
// an account budget's (AccountID).
type Holder struct {
	CredentialID int64
	AccountID    int64
}

// Decider takes the check's one decision.
type Decider interface {
	// Decide checks every limit of req, spends them all or none, and counts
	// the outcome. An error means no decision was made (and nothing was
	// counted); it never comes with an allowed Decision.
	Decide(ctx context.Context, req Request) (Decision, error)
	// Spent reads, without changing anything, how much of quota q the
	// holder has spent in the period holding now, under root account root.
	Spent(ctx context.Context, root int64, h Holder, q storage.Quota, now time.Time) (int64, error)
}

// Limits lists the limits of req in the order of Decision.Checks.
func Limits(req Request) []Limit {
	out := make([]Limit, 0, 2+2*len(req.Budgets))
	out = append(out, Limit{Kind: KindRate, Class: req.Class, Rate: req.Rate})
	if req.Quota != nil {
		out = append(out, Limit{Kind: KindQuota, Class: req.Class, Quota: *req.Quota})
	}
	for _, b := range req.Budgets {
		if b.Rate != nil {
			out = append(out, Limit{Kind: KindRate, AccountID: b.AccountID, Class: req.Class, Rate: *b.Rate})
		}
		if b.Quota != nil {
			out = append(out, Limit{Kind: KindQuota, AccountID: b.AccountID, Class: req.Class, Quota: *b.Quota})
		}
	}
	return out
}

// Finish completes a decision from the checks a backend made: the outcome,
// the refusal, and (when allowed) the quota thresholds crossed. Backends
// call it so that both decide alike.
func Finish(req Request, checks []Check) Decision {
	d := Decision{Allowed: true, Outcome: usage.OutcomeAllowed, Checks: checks, Refusal: -1}
	for i, c := range checks {
		if c.Allowed {
			continue
		}
		d.Allowed = false
		if d.Refusal < 0 {
			d.Refusal = i
			continue
		}
		cur := checks[d.Refusal]
		switch {
		case c.Limit.Kind == KindQuota && cur.Limit.Kind == KindRate:
			d.Refusal = i
		case c.Limit.Kind == cur.Limit.Kind && c.RetryAfter > cur.RetryAfter:
			d.Refusal = i
		}
	}
	if !d.Allowed {
		d.Outcome = usage.OutcomeRateLimited
		if checks[d.Refusal].Limit.Kind == KindQuota {
			d.Outcome = usage.OutcomeQuotaExceeded
		}
		return d
	}
	for _, c := range checks {
		if c.Limit.Kind != KindQuota {
			continue
		}
		before, limit := c.Used-req.Cost, c.Limit.Quota.Limit
		for _, p := range []int64{80, 100} {
			// Crossed: below p% before the call, at or above it after.
			if before*100 < p*limit && c.Used*100 >= p*limit {
				start, _ := c.Limit.Quota.Start(req.Now)
				e := usage.QuotaThreshold{AccountID: c.Limit.AccountID, Percent: int(p), Limit: limit, Used: c.Used,
					Period: c.Limit.Quota.Period, PeriodStart: start}
				if e.AccountID == 0 {
					e.AccountID, e.CredentialID = req.AccountID, req.CredentialID
				}
				d.Thresholds = append(d.Thresholds, e)
			}
		}
	}
	return d
}

// QuotaCheck makes the check of a quota: fits says whether the call's cost
// fitted, used is what the period has spent after the decision (the call
// included when the decision spent it).
func QuotaCheck(l Limit, fits bool, used int64, now time.Time) Check {
	start, next := l.Quota.Start(now)
	c := Check{Limit: l, Allowed: fits, Used: used, Remaining: max(l.Quota.Limit-used, 0), ResetAfter: next.Sub(now), Window: next.Sub(start)}
	if !fits {
		c.RetryAfter = c.ResetAfter
	}
	return c
}

// QuotaExpiry is when the counter of quota q's period holding now may go:
// QuotaKeyGrace after the refill.
func QuotaExpiry(q storage.Quota, now time.Time) time.Time {
	_, next := q.Start(now)
	return next.Add(QuotaKeyGrace)
}

// Headers sets the RateLimit-Policy and RateLimit headers
// (draft-ietf-httpapi-ratelimit-headers, structured-field lists) and, when
// the call was refused, Retry-After and X-Tollgate-Refusal. A refusal names
// only the limit that refused; an allowed call names every limit, the
// credential's rate first (alone when it is the only one, as
// ratelimit.Headers writes it).
//
//	RateLimit-Policy: "<name>";q=<quota>;w=<window seconds>
//	RateLimit: "<name>";r=<remaining>;t=<seconds until reset>
func Headers(h http.Header, d Decision) {
	checks := d.Checks
	if c, ok := d.Refused(); ok {
		checks = []Check{c}
	}
	var policy, limit strings.Builder
	for i, c := range checks {
		if i > 0 {
			policy.WriteString(", ")
			limit.WriteString(", ")
		}
		name := ratelimit.SFString(c.Limit.Name())
		policy.WriteString(name)
		limit.WriteString(name)
		if c.Limit.Kind == KindQuota {
			policy.WriteString(";q=" + strconv.FormatInt(c.Limit.Quota.Limit, 10) + ";w=" + strconv.FormatInt(int64(c.Window/time.Second), 10))
		} else {
			policy.WriteString(";q=" + strconv.Itoa(c.Limit.Rate.Burst) + ";w=1")
		}
		limit.WriteString(";r=" + strconv.FormatInt(max(c.Remaining, 0), 10) + ";t=" + strconv.FormatInt(ratelimit.CeilSeconds(c.ResetAfter), 10))
	}
	if len(checks) > 0 {
		h.Set("RateLimit-Policy", policy.String())
		h.Set("RateLimit", limit.String())
	}
	if c, ok := d.Refused(); ok {
		retryafter.Set(h, c.RetryAfter)
		h.Set(HeaderRefusal, string(c.Limit.Kind))
	}
}

// HeaderRefusal names the kind of limit that refused a call: rate or quota.
const HeaderRefusal = "X-Tollgate-Refusal"

// FailOpen returns d that lets a call through when d fails (Redis is down,
// say) instead of reporting the error: the Decision allows it, names no
// limit, counts nothing, and is marked FailedOpen; each failure is logged
// at level Warn with the request's context. A request d refuses as invalid
// is still an error. A nil logger logs nothing.
func FailOpen(d Decider, logger *slog.Logger) Decider {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return failOpen{Decider: d, logger: logger}
}

type failOpen struct {
	Decider
	logger *slog.Logger
}

// Decide implements Decider.
func (f failOpen) Decide(ctx context.Context, req Request) (Decision, error) {
	d, err := f.Decider.Decide(ctx, req)
	if err == nil || errors.Is(err, ErrInvalidRequest) {
		return d, err
	}
	f.logger.WarnContext(ctx, "meter unavailable; failing open", "err", err)
	return Decision{Allowed: true, Outcome: usage.OutcomeAllowed, Refusal: -1, FailedOpen: true}, nil
}
