package manage

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// MaxAllowedCIDRs bounds a credential's IP allowlist: enough for any real
// set of egress networks, and few enough that matching one address against
// every entry costs nothing at the check.
const MaxAllowedCIDRs = 100

// maxRate bounds a rate and a burst, of a credential's override as of an
// account's budget.
const maxRate = 1_000_000

// QuotaInput sets a quota: Limit in 1..storage.MaxQuotaLimit, Period day
// or month.
type QuotaInput struct {
	Limit  int64
	Period string
}

// BudgetInput replaces an account's budget: a per-second limit per rate
// class over the whole subtree, and a quota. Both empty removes it.
type BudgetInput struct {
	RateLimits map[string]storage.RateLimit
	Quota      *QuotaInput
}

// checkQuota validates q for field, returning the quota or the problems.
func checkQuota(field string, q QuotaInput) (*storage.Quota, []FieldError) {
	var errs []FieldError
	if q.Limit < 1 || q.Limit > storage.MaxQuotaLimit {
		errs = append(errs, FieldError{Field: field + ".limit", Detail: fmt.Sprintf("must be 1 to %d", int64(storage.MaxQuotaLimit))})
	}
	if !storage.QuotaPeriod(q.Period).Valid() {
		errs = append(errs, FieldError{Field: field + ".period", Detail: "must be day or month"})
	}
	if errs != nil {
		return nil, errs
	}
	return &storage.Quota{Limit: q.Limit, Period: storage.QuotaPeriod(q.Period)}, nil
}

// checkRateLimits validates per-class limits for field: known rate classes
// only, rate and burst 1..1000000. An empty set is nil.
func (s *Service) checkRateLimits(field string, in map[string]storage.RateLimit) (map[string]storage.RateLimit, []FieldError) {
	var errs []FieldError
	limits := map[string]storage.RateLimit{}
	for _, class := range slices.Sorted(maps.Keys(in)) {
		l := in[class]
		switch {
		case !slices.Contains(s.opts.RateClasses, class):
			errs = append(errs, FieldError{Field: field, Detail: fmt.Sprintf("%q is not a rate class (%s)", class, strings.Join(s.opts.RateClasses, ", "))})
		case l.Rate < 1 || l.Burst < 1 || l.Rate > maxRate || l.Burst > maxRate:
			errs = append(errs, FieldError{Field: field, Detail: fmt.Sprintf("class %q: rate and burst must be 1 to %d", class, maxRate)})
		default:
			limits[class] = storage.RateLimit{Rate: l.Rate, Burst: l.Burst}
		}
	}
	if len(limits) == 0 {
		limits = nil
	}
	return limits, errs
}

// CanonicalCIDRs parses an IP allowlist with net/netip: each entry is a
// prefix ("10.0.0.0/8", "2001:db8::/32") or a bare address (a /32 or
// /128); prefixes are masked ("10.1.2.3/8" is 10.0.0.0/8), IPv4-mapped IPv6
// addresses become IPv4, and repeats are dropped, keeping the first order.
// A bad entry is refused by its position and text; more than
// MaxAllowedCIDRs entries are refused as a whole.
func CanonicalCIDRs(in []string) ([]string, []FieldError) {
	if len(in) > MaxAllowedCIDRs {
		return nil, []FieldError{{Field: "allowed_cidrs", Detail: fmt.Sprintf("must hold at most %d entries", MaxAllowedCIDRs)}}
	}
	var errs []FieldError
	out := []string{}
	for i, raw := range in {
		p, ok := parseCIDR(strings.TrimSpace(raw))
		if !ok {
			shown := raw
			if len(shown) > 50 {
				shown = shown[:50] + "…"
			}
			errs = append(errs, FieldError{Field: "allowed_cidrs[" + strconv.Itoa(i) + "]",
				Detail: fmt.Sprintf("%q is not an IP address or a CIDR prefix", shown)})
			continue
		}
		if s := p.String(); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	if errs != nil {
		return nil, errs
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// parseCIDR reads one allowlist entry, canonical.
func parseCIDR(s string) (netip.Prefix, bool) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, false
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, false
	}
	a, bits := p.Addr(), p.Bits()
	if a.Is4In6() {
		if bits < 96 {
			return netip.Prefix{}, false
		}
		a, bits = a.Unmap(), bits-96
	}
	return netip.PrefixFrom(a, bits).Masked(), true
}

func quotaText(q *storage.Quota) string {
	if q == nil {
		return "none"
	}
	return strconv.FormatInt(q.Limit, 10) + "/" + string(q.Period)
}

func cidrsText(c []string) string {
	if len(c) == 0 {
		return "anywhere"
	}
	// A long list would not fit the event's detail: its size says enough
	// beside the first entries.
	if len(c) > 4 {
		return strings.Join(c[:4], " ") + fmt.Sprintf(" (+%d more)", len(c)-4)
	}
	return strings.Join(c, " ")
}

func budgetText(b *storage.Budget) string {
	if b == nil || b.Empty() {
		return "none"
	}
	return "rate_limits " + rateLimitsText(b.RateLimits) + ", quota " + quotaText(b.Quota)
}

// QuotaSpent reads what has been spent of a quota in the period beginning
// at start, from the counters the check's decision writes (in Redis:
// usage's quota keys under the root account's hash tag). Read-only: the
// management surfaces show the remaining quota with it.
type QuotaSpent interface {
	// CredentialSpent returns the cost credential id (of root's tree) spent
	// in the period beginning at start.
	CredentialSpent(ctx context.Context, root, id int64, start time.Time) (int64, error)
	// AccountSpent returns the cost account id's subtree (of root's tree)
	// spent in the period beginning at start.
	AccountSpent(ctx context.Context, root, id int64, start time.Time) (int64, error)
}

// NoQuotaSpent answers that nothing was spent: for installations whose
// check keeps no quota counters the management surfaces can read.
type NoQuotaSpent struct{}

// CredentialSpent implements QuotaSpent.
func (NoQuotaSpent) CredentialSpent(context.Context, int64, int64, time.Time) (int64, error) {
	return 0, nil
}

// AccountSpent implements QuotaSpent.
func (NoQuotaSpent) AccountSpent(context.Context, int64, int64, time.Time) (int64, error) {
	return 0, nil
}

// QuotaUsage is how much of a quota is spent in the current period.
type QuotaUsage struct {
	Quota     storage.Quota
	Used      int64
	Remaining int64
	// ResetsAt is the refill: the start of the next UTC day or month.
	ResetsAt time.Time
}

// usageOf returns q's usage given spent.
func usageOf(q storage.Quota, spent int64, next time.Time) QuotaUsage {
	return QuotaUsage{Quota: q, Used: spent, Remaining: max(q.Limit-spent, 0), ResetsAt: next}
}

// rootOf returns the root of account id's tree.
func (s *Service) rootOf(ctx context.Context, id int64) (int64, error) {
	for range 64 { // far deeper than any real tree; no loop runs forever
		acc, err := s.opts.Store.GetAccount(ctx, id)
		if err != nil {
			return 0, err
		}
		if acc.ParentID == 0 {
			return acc.ID, nil
		}
		id = acc.ParentID
	}
	return 0, fmt.Errorf("account %d: tree deeper than 64", id)
}

// ClientQuotaUsage returns the usage of credential c's quota (read through
// the service), or nil when it has none.
func (s *Service) ClientQuotaUsage(ctx context.Context, c storage.Client) (*QuotaUsage, error) {
	if c.Quota == nil || s.opts.QuotaSpent == nil {
		return nil, nil
	}
	start, next := c.Quota.Start(s.opts.Now())
	root, err := s.rootOf(ctx, c.AccountID)
	if err != nil {
		return nil, storeError(err)
	}
	spent, err := s.opts.QuotaSpent.CredentialSpent(ctx, root, c.ID, start)
	if err != nil {
		return nil, unavailable(err)
	}
	u := usageOf(*c.Quota, spent, next)
	return &u, nil
}

// AccountQuotaUsage returns the usage of account acc's budget quota (read
// through the service), or nil when it has none.
func (s *Service) AccountQuotaUsage(ctx context.Context, acc storage.Account) (*QuotaUsage, error) {
	if acc.Budget == nil || acc.Budget.Quota == nil || s.opts.QuotaSpent == nil {
		return nil, nil
	}
	q := *acc.Budget.Quota
	start, next := q.Start(s.opts.Now())
	root, err := s.rootOf(ctx, acc.ID)
	if err != nil {
		return nil, storeError(err)
	}
	spent, err := s.opts.QuotaSpent.AccountSpent(ctx, root, acc.ID, start)
	if err != nil {
		return nil, unavailable(err)
	}
	u := usageOf(q, spent, next)
	return &u, nil
}
