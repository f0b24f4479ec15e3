package manage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tollgate/tollgate/pkg/usage"
	"github.com/tollgate/tollgate/storage"
)

// MaxUsageItems is the most rows one usage read returns; a range holding
// more is refused (narrow it, or ask for a coarser granularity).
const MaxUsageItems = 10000

// MaxUsageRange is the longest range one usage read may span, per
// granularity: 2 days of minutes, 31 days of hours, 2 years of days (what
// the default retention keeps, and at most a few thousand buckets).
var MaxUsageRange = map[storage.Granularity]time.Duration{
	storage.GranularityMinute: 48 * time.Hour,
	storage.GranularityHour:   31 * 24 * time.Hour,
	storage.GranularityDay:    731 * 24 * time.Hour,
}

// DefaultUsageRange is the range read when From is not given: the last
// hour of minutes, the last 24 hours, the last 30 days.
var DefaultUsageRange = map[storage.Granularity]time.Duration{
	storage.GranularityMinute: time.Hour,
	storage.GranularityHour:   24 * time.Hour,
	storage.GranularityDay:    30 * 24 * time.Hour,
}

// UsageQuery selects usage: of one credential, or of every credential of
// an account's subtree (exactly one of the two), in buckets of Granularity
// (hour when empty) overlapping [From, To). A zero To is now; a zero From
// is DefaultUsageRange before To.
type UsageQuery struct {
	CredentialID int64
	AccountID    int64
	Granularity  storage.Granularity
	From, To     time.Time
}

// UsageReader reads the usage a filter selects: the rolled-up minutes and
// those after the roll-up's watermark, from the live counters
// (*usage.Reader).
type UsageReader interface {
	Read(ctx context.Context, f storage.UsageFilter) (usage.Report, error)
}

// Usage reads the usage q selects, oldest first. A credential's
// usage is for whoever may read the credential (its owner, an admin of its
// account's subtree); an account's for an admin of a subtree holding it.
// The minutes not rolled up yet come from the live counters; when those
// cannot be read the report holds the rolled-up minutes, marked Partial.
func (s *Service) Usage(ctx context.Context, act Actor, q UsageQuery) (usage.Report, error) {
	f, err := s.usageFilter(q)
	if err != nil {
		return usage.Report{}, err
	}
	p := act.p
	if q.CredentialID != 0 {
		if _, err := s.loadAnyClient(ctx, p, q.CredentialID); err != nil {
			return usage.Report{}, err
		}
	} else if err := s.reach(ctx, p, q.AccountID); err != nil {
		return usage.Report{}, err
	}
	if s.opts.Usage == nil {
		return usage.Report{}, unavailable(errors.New("no usage store"))
	}
	f.Limit = MaxUsageItems + 1
	rep, err := s.opts.Usage.Read(ctx, f)
	if err != nil {
		return usage.Report{}, unavailable(err)
	}
	if len(rep.Rows) > MaxUsageItems {
		return usage.Report{}, invalid([]FieldError{{Field: "from", Detail: fmt.Sprintf("the range holds more than %d items: narrow it or use a coarser granularity", MaxUsageItems)}})
	}
	return rep, nil
}

// usageFilter checks q and returns the filter it describes.
func (s *Service) usageFilter(q UsageQuery) (storage.UsageFilter, error) {
	var errs []FieldError
	switch {
	case q.CredentialID == 0 && q.AccountID == 0:
		errs = append(errs, FieldError{Field: "credential_id", Detail: "give credential_id or account_id"})
	case q.CredentialID != 0 && q.AccountID != 0:
		errs = append(errs, FieldError{Field: "account_id", Detail: "give credential_id or account_id, not both"})
	case q.CredentialID < 0:
		errs = append(errs, FieldError{Field: "credential_id", Detail: "must be a positive id"})
	case q.AccountID < 0:
		errs = append(errs, FieldError{Field: "account_id", Detail: "must be a positive id"})
	}
	g := q.Granularity
	if g == "" {
		g = storage.GranularityHour
	}
	if !g.Valid() {
		errs = append(errs, FieldError{Field: "granularity", Detail: "must be minute, hour or day"})
		return storage.UsageFilter{}, invalid(errs)
	}
	to := q.To
	if to.IsZero() {
		to = s.opts.Now()
	}
	from := q.From
	if from.IsZero() {
		from = to.Add(-DefaultUsageRange[g])
	}
	switch {
	case !from.Before(to):
		errs = append(errs, FieldError{Field: "from", Detail: "must be before to"})
	case to.Sub(from) > MaxUsageRange[g]:
		errs = append(errs, FieldError{Field: "from", Detail: fmt.Sprintf("the range may span at most %s of %ss", humanRange(MaxUsageRange[g]), g)})
	}
	if len(errs) > 0 {
		return storage.UsageFilter{}, invalid(errs)
	}
	return storage.UsageFilter{CredentialID: q.CredentialID, AccountID: q.AccountID, Granularity: g, From: from.UTC(), To: to.UTC()}, nil
}

// humanRange says d in days, or hours below two days.
func humanRange(d time.Duration) string {
	if d < 48*time.Hour {
		return fmt.Sprintf("%d hours", int(d/time.Hour))
	}
	return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
}

// loadAnyClient reads credential id, of either kind, for p: not found when
// it does not exist or is not p's to see.
func (s *Service) loadAnyClient(ctx context.Context, p *principal, id int64) (storage.Client, error) {
	c, err := s.opts.Store.GetClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return c, errNotFound()
	}
	if err != nil {
		return c, unavailable(err)
	}
	return s.loadClient(ctx, p, id, c.Kind)
}
