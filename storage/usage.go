package storage

import (
	"context"
	"time"
)

// Granularity is the width of a usage row's time bucket.
type Granularity string

// Usage granularities: per-minute rows are copied from the counters, hours
// and days are sums of them (UTC boundaries).
const (
	GranularityMinute Granularity = "minute"
	GranularityHour   Granularity = "hour"
	GranularityDay    Granularity = "day"
)

// Valid reports whether g is a known granularity.
func (g Granularity) Valid() bool {
	return g == GranularityMinute || g == GranularityHour || g == GranularityDay
}

// Duration returns the width of g's buckets (0 for an unknown one).
func (g Granularity) Duration() time.Duration {
	switch g {
	case GranularityMinute:
		return time.Minute
	case GranularityHour:
		return time.Hour
	case GranularityDay:
		return 24 * time.Hour
	}
	return 0
}

// UsageRow is how many calls one credential made in one bucket (a UTC
// minute, hour or day starting at Time), in one rate class, ending with one
// outcome.
type UsageRow struct {
	Time         time.Time
	RootID       int64 // the root account of the credential's tree
	AccountID    int64 // the credential's account when the row was rolled up
	CredentialID int64
	Class        string
	Outcome      string
	Count        int64
}

// UsageFilter selects usage rows: of CredentialID, or of every credential
// of AccountID's subtree, in the buckets of Granularity that overlap
// [From, To), oldest first, at most Limit rows (0: no limit).
type UsageFilter struct {
	CredentialID int64
	AccountID    int64
	Granularity  Granularity
	From, To     time.Time
	Limit        int
}

// Usage stores the rolled-up usage counts and the roll-up's progress.
type Usage interface {
	// ListRootAccounts returns up to limit ids of root accounts greater
	// than after, ascending.
	ListRootAccounts(ctx context.Context, after int64, limit int) ([]int64, error)
	// RootAccounts returns the root account of each existing account of
	// ids (a root is its own root).
	RootAccounts(ctx context.Context, ids []int64) (map[int64]int64, error)
	// CredentialAccounts returns the account of each of ids that exists.
	CredentialAccounts(ctx context.Context, ids []int64) (map[int64]int64, error)
	// UsageWatermark returns the last minute completely copied (zero when
	// none).
	UsageWatermark(ctx context.Context) (time.Time, error)
	// WriteUsageMinute stores rows, all of minute, in one transaction: each
	// row's count is SET (a rerun writes the same numbers, never adds),
	// the hour and the day holding minute are recomputed from their
	// minutes and hours, and the watermark moves to minute unless it is
	// already later. rows may be empty (a minute without calls).
	WriteUsageMinute(ctx context.Context, minute time.Time, rows []UsageRow) error
	// DeleteUsageBefore deletes the rows of granularity g older than
	// before and returns how many it deleted.
	DeleteUsageBefore(ctx context.Context, g Granularity, before time.Time) (int64, error)
	// ListUsage returns the rows f selects.
	ListUsage(ctx context.Context, f UsageFilter) ([]UsageRow, error)
}
