package usage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// Roll-up defaults, applied by NewRollup to zero RollupOptions fields.
const (
	DefaultGrace           = 2 * time.Minute
	DefaultBackfill        = time.Hour
	DefaultMinuteRetention = 48 * time.Hour
	DefaultHourRetention   = 90 * 24 * time.Hour
	DefaultDayRetention    = 2 * 365 * 24 * time.Hour
)

// rootPage is how many root accounts one pipelined read covers.
const rootPage = 500

// RollupOptions configure the roll-up.
type RollupOptions struct {
	Counts BatchReader   // the per-minute counters (Redis or in process)
	Store  storage.Usage // the database
	// Grace is how long after its end a minute closes: every count of it
	// has been written by then (the batchers flush every second).
	Grace time.Duration
	// Backfill is how far back the first run on an empty database starts.
	Backfill time.Duration
	// Retention per granularity: rows older are deleted.
	MinuteRetention, HourRetention, DayRetention time.Duration
	Logger                                       *slog.Logger
	Now                                          func() time.Time
}

// Rollup copies closed minutes from the counters into the database and
// sums them into hours and days. Every write SETS counts read from a
// closed minute, so a rerun (after a crash between the read and the write,
// or by another instance at the same time) writes the same numbers: no
// minute is lost or counted twice. The watermark, the last minute
// completed, moves in the transaction of that minute's rows.
type Rollup struct {
	o RollupOptions
}

// NewRollup returns the roll-up o describes.
func NewRollup(o RollupOptions) *Rollup {
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	if o.Backfill <= 0 {
		o.Backfill = DefaultBackfill
	}
	if o.MinuteRetention <= 0 {
		o.MinuteRetention = DefaultMinuteRetention
	}
	if o.HourRetention <= 0 {
		o.HourRetention = DefaultHourRetention
	}
	if o.DayRetention <= 0 {
		o.DayRetention = DefaultDayRetention
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Rollup{o: o}
}

// LastClosed returns the last minute closed at now.
func (r *Rollup) LastClosed(now time.Time) time.Time {
	return now.UTC().Add(-r.o.Grace).Truncate(time.Minute).Add(-time.Minute)
}

// RunOnce copies every closed minute after the watermark, then deletes what
// retention no longer keeps. It returns how many minutes it copied; on an
// error the minutes before it stay copied and the next run resumes there.
func (r *Rollup) RunOnce(ctx context.Context) (int, error) {
	now := r.o.Now().UTC()
	last := r.LastClosed(now)
	mark, err := r.o.Store.UsageWatermark(ctx)
	if err != nil {
		return 0, err
	}
	next := mark.Add(time.Minute)
	if mark.IsZero() {
		next = last.Add(-r.o.Backfill + time.Minute)
	}
	// Counts older than their TTL are gone from the counters.
	if oldest := now.Add(-CountTTL).Truncate(time.Minute).Add(time.Minute); next.Before(oldest) {
		next = oldest
	}
	var roots []int64
	if !next.After(last) {
		if roots, err = r.roots(ctx); err != nil {
			return 0, err
		}
	}
	n := 0
	for m := next; !m.After(last); m = m.Add(time.Minute) {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		if err := r.copyMinute(ctx, roots, m); err != nil {
			return n, fmt.Errorf("roll up minute %s: %w", m.Format(time.RFC3339), err)
		}
		n++
	}
	return n, r.expire(ctx, now)
}

// roots lists every root account, page by page.
func (r *Rollup) roots(ctx context.Context) ([]int64, error) {
	var out []int64
	var after int64
	for {
		page, err := r.o.Store.ListRootAccounts(ctx, after, rootPage)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if len(page) < rootPage {
			return out, nil
		}
		after = page[len(page)-1]
	}
}

// copyMinute reads minute m of every root and writes it in one
// transaction.
func (r *Rollup) copyMinute(ctx context.Context, roots []int64, m time.Time) error {
	var rows []storage.UsageRow
	var creds []int64
	seen := map[int64]bool{}
	for start := 0; start < len(roots); start += rootPage {
		got, err := r.o.Counts.ReadMinutes(ctx, roots[start:min(start+rootPage, len(roots))], m)
		if err != nil {
			return err
		}
		for root, counts := range got {
			for _, c := range counts {
				rows = append(rows, storage.UsageRow{Time: m, RootID: root, CredentialID: c.CredentialID, Class: c.Class, Outcome: c.Outcome, Count: c.N})
				if !seen[c.CredentialID] {
					seen[c.CredentialID] = true
					creds = append(creds, c.CredentialID)
				}
			}
		}
	}
	if len(creds) > 0 {
		accounts, err := r.o.Store.CredentialAccounts(ctx, creds)
		if err != nil {
			return err
		}
		for i := range rows {
			// A credential deleted before its minute was rolled up counts
			// for its root account's tree.
			rows[i].AccountID = rows[i].RootID
			if a, ok := accounts[rows[i].CredentialID]; ok {
				rows[i].AccountID = a
			}
		}
	}
	return r.o.Store.WriteUsageMinute(ctx, m, rows)
}

// expire deletes the rows retention no longer keeps.
func (r *Rollup) expire(ctx context.Context, now time.Time) error {
	var errs []error
	for _, g := range []struct {
		g storage.Granularity
		d time.Duration
	}{{storage.GranularityMinute, r.o.MinuteRetention}, {storage.GranularityHour, r.o.HourRetention}, {storage.GranularityDay, r.o.DayRetention}} {
		if _, err := r.o.Store.DeleteUsageBefore(ctx, g.g, now.Add(-g.d)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Run rolls up at once and then every interval until ctx is done. A failed
// run (Redis or the database down) is logged and retried at the next tick,
// from the watermark.
func (r *Rollup) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := r.RunOnce(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			r.o.Logger.WarnContext(ctx, "roll up usage; will retry", "err", err, "minutes", n)
		case n > 0:
			r.o.Logger.DebugContext(ctx, "rolled up usage", "minutes", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
