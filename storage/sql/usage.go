package sql

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tollgate/tollgate/storage"
)

var _ storage.Usage = (*Store)(nil)

// usageRow is a row of usage_minutes, usage_hours or usage_days.
type usageRow struct {
	TS           int64  `gorm:"column:ts;primaryKey"`
	CredentialID int64  `gorm:"column:credential_id;primaryKey"`
	RateClass    string `gorm:"column:rate_class;primaryKey"`
	Outcome      string `gorm:"column:outcome;primaryKey"`
	RootID       int64  `gorm:"column:root_id"`
	AccountID    int64  `gorm:"column:account_id"`
	Count        int64  `gorm:"column:count"`
}

// usageTables names the table of each granularity.
var usageTables = map[storage.Granularity]string{
	storage.GranularityMinute: "usage_minutes",
	storage.GranularityHour:   "usage_hours",
	storage.GranularityDay:    "usage_days",
}

// rollupName is the usage_rollup row of the minutes' watermark.
const rollupName = "minutes"

// ListRootAccounts returns up to limit ids of root accounts above after.
func (s *Store) ListRootAccounts(ctx context.Context, after int64, limit int) ([]int64, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()
	if limit <= 0 || limit > MaxPageLimit {
		limit = MaxPageLimit
	}
	var ids []int64
	err := s.db.WithContext(ctx).Table("accounts").Where("parent_id IS NULL AND id > ?", after).
		Order("id").Limit(limit).Pluck("id", &ids).Error
	if err != nil {
		return nil, mapError("list root accounts", err)
	}
	return ids, nil
}

// rootQuery walks up from account ? to its root.
const rootQuery = `
WITH RECURSIVE ancestors (id, parent_id) AS (
	SELECT id, parent_id FROM accounts WHERE id = ?
	UNION
	SELECT a.id, a.parent_id FROM accounts a JOIN ancestors s ON a.id = s.parent_id
)
SELECT id FROM ancestors WHERE parent_id IS NULL`

// RootAccounts returns the root of each existing account of ids.
func (s *Store) RootAccounts(ctx context.Context, ids []int64) (map[int64]int64, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()
	out := make(map[int64]int64, len(ids))
	for _, id := range ids {
		var roots []int64
		if err := s.db.WithContext(ctx).Raw(rootQuery, id).Scan(&roots).Error; err != nil {
			return nil, mapError("root accounts", err)
		}
		if len(roots) > 0 {
			out[id] = roots[0]
		}
	}
	return out, nil
}

// CredentialAccounts returns the account of each existing credential of ids.
func (s *Store) CredentialAccounts(ctx context.Context, ids []int64) (map[int64]int64, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()
	out := make(map[int64]int64, len(ids))
	for start := 0; start < len(ids); start += MaxPageLimit {
		chunk := ids[start:min(start+MaxPageLimit, len(ids))]
		var rows []struct {
			ID        int64
			AccountID int64
		}
		if err := s.db.WithContext(ctx).Table("clients").Select("id, account_id").Where("id IN ?", chunk).Scan(&rows).Error; err != nil {
			return nil, mapError("credential accounts", err)
		}
		for _, r := range rows {
			out[r.ID] = r.AccountID
		}
	}
	return out, nil
}

// UsageWatermark returns the last minute completely rolled up.
func (s *Store) UsageWatermark(ctx context.Context) (time.Time, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()
	var minutes []int64
	if err := s.db.WithContext(ctx).Table("usage_rollup").Where("name = ?", rollupName).Pluck("minute", &minutes).Error; err != nil {
		return time.Time{}, mapError("usage watermark", err)
	}
	if len(minutes) == 0 {
		return time.Time{}, nil
	}
	return time.Unix(minutes[0], 0).UTC(), nil
}

// WriteUsageMinute sets minute's rows, recomputes its hour and day and
// moves the watermark, in one transaction.
func (s *Store) WriteUsageMinute(ctx context.Context, minute time.Time, rows []storage.UsageRow) error {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()
	minute = minute.UTC().Truncate(time.Minute)
	ts := minute.Unix()
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if len(rows) > 0 {
			recs := make([]usageRow, len(rows))
			for i, r := range rows {
				recs[i] = usageRow{TS: ts, CredentialID: r.CredentialID, RateClass: r.Class, Outcome: r.Outcome,
					RootID: r.RootID, AccountID: r.AccountID, Count: r.Count}
			}
			// SET, never add: a rerun of the same closed minute (after a
			// crash, or by another instance) writes the same numbers.
			if err := tx.Table("usage_minutes").Clauses(clause.OnConflict{
				Columns:   []clause.Column{{Name: "ts"}, {Name: "credential_id"}, {Name: "rate_class"}, {Name: "outcome"}},
				DoUpdates: clause.AssignmentColumns([]string{"count", "root_id", "account_id"}),
			}).CreateInBatches(recs, 500).Error; err != nil {
				return err
			}
		}
		hour := minute.Truncate(time.Hour)
		if err := recompute(tx, "usage_hours", "usage_minutes", hour, time.Hour); err != nil {
			return err
		}
		day := minute.Truncate(24 * time.Hour)
		if err := recompute(tx, "usage_days", "usage_hours", day, 24*time.Hour); err != nil {
			return err
		}
		return tx.Exec(`INSERT INTO usage_rollup (name, minute) VALUES (?, ?)
ON CONFLICT (name) DO UPDATE SET minute = excluded.minute WHERE usage_rollup.minute < excluded.minute`, rollupName, ts).Error
	})
	return mapError("write usage minute", err)
}

// recompute sets the rows of bucket start (width d) of table to the sums
// of the finer rows of from within it.
func recompute(tx *gorm.DB, table, from string, start time.Time, d time.Duration) error {
	lo, hi := start.Unix(), start.Add(d).Unix()
	// The WHERE clause also settles SQLite's parsing of INSERT … SELECT …
	// ON CONFLICT. Tables are constants of this file.
	q := fmt.Sprintf(`INSERT INTO %s (ts, credential_id, rate_class, outcome, root_id, account_id, count)
SELECT ?, credential_id, rate_class, outcome, MAX(root_id), MAX(account_id), SUM(count)
FROM %s WHERE ts >= ? AND ts < ? GROUP BY credential_id, rate_class, outcome
ON CONFLICT (ts, credential_id, rate_class, outcome) DO UPDATE SET count = excluded.count,
root_id = excluded.root_id, account_id = excluded.account_id`, table, from)
	return tx.Exec(q, lo, lo, hi).Error
}

// DeleteUsageBefore deletes g's rows older than before.
func (s *Store) DeleteUsageBefore(ctx context.Context, g storage.Granularity, before time.Time) (int64, error) {
	table, ok := usageTables[g]
	if !ok {
		return 0, fmt.Errorf("delete usage: unknown granularity %q", g)
	}
	ctx, cancel := s.queryContext(ctx)
	defer cancel()
	res := s.db.WithContext(ctx).Exec("DELETE FROM "+table+" WHERE ts < ?", before.Unix())
	if res.Error != nil {
		return 0, mapError("delete usage", res.Error)
	}
	return res.RowsAffected, nil
}

// ListUsage returns the rows f selects, oldest first.
func (s *Store) ListUsage(ctx context.Context, f storage.UsageFilter) ([]storage.UsageRow, error) {
	table, ok := usageTables[f.Granularity]
	if !ok {
		return nil, fmt.Errorf("list usage: unknown granularity %q", f.Granularity)
	}
	if (f.CredentialID == 0) == (f.AccountID == 0) {
		return nil, errors.New("list usage: exactly one of credential and account")
	}
	ctx, cancel := s.queryContext(ctx)
	defer cancel()
	// The buckets overlapping [From, To): a day's row counts for a range
	// starting in its afternoon.
	width := int64(f.Granularity.Duration() / time.Second)
	db := s.db.WithContext(ctx).Table(table).Where("ts > ? AND ts < ?", f.From.Unix()-width, f.To.Unix())
	if f.CredentialID != 0 {
		db = db.Where("credential_id = ?", f.CredentialID)
	} else {
		db = whereAccount(db, "account_id", f.AccountID, true)
	}
	db = db.Order("ts, credential_id, rate_class, outcome")
	if f.Limit > 0 {
		db = db.Limit(f.Limit)
	}
	var recs []usageRow
	if err := db.Find(&recs).Error; err != nil {
		return nil, mapError("list usage", err)
	}
	out := make([]storage.UsageRow, len(recs))
	for i, r := range recs {
		out[i] = storage.UsageRow{Time: time.Unix(r.TS, 0).UTC(), RootID: r.RootID, AccountID: r.AccountID,
			CredentialID: r.CredentialID, Class: r.RateClass, Outcome: r.Outcome, Count: r.Count}
	}
	return out, nil
}
