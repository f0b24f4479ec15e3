package usage

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// RangeReader reads one root account's counts of every minute in
// [from, to) in one round trip: the live part of a usage answer.
type RangeReader interface {
	ReadRange(ctx context.Context, root int64, from, to time.Time) ([]Count, error)
}

// MaxLiveMinutes bounds the minutes one usage answer reads from the
// counters: they keep no minute longer than CountTTL.
const MaxLiveMinutes = int(CountTTL / time.Minute)

// watermarkReads is how many times Read tries to read the rolled-up rows
// between two equal watermarks before it settles for the last ones.
const watermarkReads = 3

// Subtrees says whether an account is in a subtree
// (storage.Accounts.AccountInSubtree).
type Subtrees interface {
	AccountInSubtree(ctx context.Context, rootID, id int64) (bool, error)
}

// ReaderOptions configure a Reader.
type ReaderOptions struct {
	Store storage.Usage // the rolled-up rows and the watermark
	// Live are the per-minute counters (Redis or in process); nil: the
	// answers hold the rolled-up minutes only.
	Live RangeReader
	// Accounts places a credential's account in the subtree asked for
	// (required with Live).
	Accounts Subtrees
	Logger   *slog.Logger
	Now      func() time.Time
}

// Report is a usage answer.
type Report struct {
	Rows []storage.UsageRow
	// Partial: the minutes after the roll-up's watermark could not be read
	// from the counters (Redis unreachable), so Rows hold the rolled-up
	// minutes only.
	Partial bool
}

// Reader reads usage as it is now: the rows the roll-up wrote, up to its
// watermark, and the minutes after the watermark from the live counters,
// summed into the same buckets. A minute comes from one side only: at or
// before the watermark from the database, after it from the counters.
type Reader struct {
	o ReaderOptions
}

// NewReader returns the reader o describes.
func NewReader(o ReaderOptions) *Reader {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Reader{o: o}
}

// Read returns the rows f selects (f.Limit applies to the merged rows),
// oldest first. When the counters cannot be read, the rolled-up rows are
// returned, marked Partial; a database error is returned.
func (r *Reader) Read(ctx context.Context, f storage.UsageFilter) (Report, error) {
	mark, rows, err := r.rolledUp(ctx, f)
	if err != nil {
		return Report{}, err
	}
	if r.o.Live == nil {
		return Report{Rows: rows}, nil
	}
	from, to, ok := r.liveSpan(f, mark)
	if !ok {
		return Report{Rows: rows}, nil
	}
	root, found, err := r.root(ctx, f)
	if err != nil {
		return Report{}, err
	}
	if !found {
		return Report{Rows: rows}, nil
	}
	// Read after the database: the roll-up copies minutes and never
	// removes them from the counters, so a minute it rolls up meanwhile
	// (after the watermark read above) is still read here, once.
	counts, err := r.o.Live.ReadRange(ctx, root, from, to)
	if err != nil {
		r.o.Logger.WarnContext(ctx, "read live usage counts; answering with the rolled-up minutes", "err", err)
		return Report{Rows: rows, Partial: true}, nil
	}
	live, err := r.selected(ctx, f, root, counts)
	if err != nil {
		return Report{}, err
	}
	rows = merge(rows, live, f.Granularity.Duration())
	if f.Limit > 0 && len(rows) > f.Limit {
		rows = rows[:f.Limit]
	}
	return Report{Rows: rows}, nil
}

// rolledUp returns the rows f selects in the database and the watermark
// they agree with. The roll-up writes a minute's rows, recomputes its hour
// and day and moves the watermark in one transaction, and ListUsage is one
// statement (one snapshot): when the watermark reads the same before and
// after it, the rows hold exactly the minutes up to that watermark. A
// roll-up committing in between moves it; then read again. After
// watermarkReads tries the last watermark is taken: the rows hold at most
// the minutes up to it, so a minute may be missing from that one answer
// but none is counted twice.
func (r *Reader) rolledUp(ctx context.Context, f storage.UsageFilter) (time.Time, []storage.UsageRow, error) {
	var mark time.Time
	var rows []storage.UsageRow
	for range watermarkReads {
		before, err := r.o.Store.UsageWatermark(ctx)
		if err != nil {
			return time.Time{}, nil, err
		}
		if rows, err = r.o.Store.ListUsage(ctx, f); err != nil {
			return time.Time{}, nil, err
		}
		if mark, err = r.o.Store.UsageWatermark(ctx); err != nil {
			return time.Time{}, nil, err
		}
		if mark.Equal(before) {
			break
		}
	}
	return mark, rows, nil
}

// liveSpan returns the minutes [from, to) to read from the counters: those
// after the watermark in the buckets f selects, up to the current minute,
// at most MaxLiveMinutes of them (the counters keep no older minute).
func (r *Reader) liveSpan(f storage.UsageFilter, mark time.Time) (from, to time.Time, ok bool) {
	width := f.Granularity.Duration()
	if width <= 0 || !f.From.Before(f.To) {
		return time.Time{}, time.Time{}, false
	}
	next := r.o.Now().UTC().Truncate(time.Minute).Add(time.Minute)
	// Whole buckets: the database's rows of the first and the last bucket
	// hold every rolled-up minute of them, whatever the range cuts.
	from = f.From.UTC().Truncate(width)
	to = f.To.UTC().Add(-time.Nanosecond).Truncate(width).Add(width)
	if next.Before(to) {
		to = next
	}
	if after := mark.Add(time.Minute); !mark.IsZero() && after.After(from) {
		from = after
	}
	if oldest := to.Add(-time.Duration(MaxLiveMinutes) * time.Minute); oldest.After(from) {
		from = oldest
	}
	return from, to, from.Before(to)
}

// root returns the root account of f's tree; found is false when f's
// credential or account no longer exists.
func (r *Reader) root(ctx context.Context, f storage.UsageFilter) (root int64, found bool, err error) {
	account := f.AccountID
	if f.CredentialID != 0 {
		accounts, err := r.o.Store.CredentialAccounts(ctx, []int64{f.CredentialID})
		if err != nil {
			return 0, false, err
		}
		if account, found = accounts[f.CredentialID]; !found {
			return 0, false, nil
		}
	}
	roots, err := r.o.Store.RootAccounts(ctx, []int64{account})
	if err != nil {
		return 0, false, err
	}
	root, found = roots[account]
	return root, found, nil
}

// selected returns the counts of f's credential, or of the credentials of
// f's subtree, as rows: the filter ListUsage applies to the rolled-up rows.
// A credential counts for its account now, and for its root account once
// deleted, as the roll-up records it.
func (r *Reader) selected(ctx context.Context, f storage.UsageFilter, root int64, counts []Count) ([]storage.UsageRow, error) {
	var creds []int64
	seen := map[int64]bool{} // counts hold a credential once per minute, class and outcome
	for _, c := range counts {
		if (f.CredentialID == 0 || c.CredentialID == f.CredentialID) && !seen[c.CredentialID] {
			seen[c.CredentialID] = true
			creds = append(creds, c.CredentialID)
		}
	}
	if len(creds) == 0 {
		return nil, nil
	}
	accounts, err := r.o.Store.CredentialAccounts(ctx, creds)
	if err != nil {
		return nil, err
	}
	inSubtree := map[int64]bool{}
	for _, id := range creds {
		a, ok := accounts[id]
		if !ok {
			a = root
			accounts[id] = a
		}
		if _, known := inSubtree[a]; known || f.CredentialID != 0 {
			continue
		}
		if f.AccountID == root {
			inSubtree[a] = true // a tree's root holds every account of it
			continue
		}
		in, err := r.o.Accounts.AccountInSubtree(ctx, f.AccountID, a)
		if err != nil {
			return nil, err
		}
		inSubtree[a] = in
	}
	var out []storage.UsageRow
	for _, c := range counts {
		a, ok := accounts[c.CredentialID]
		if !ok || (f.CredentialID == 0 && !inSubtree[a]) {
			continue
		}
		out = append(out, storage.UsageRow{Time: c.Minute.UTC(), RootID: root, AccountID: a, CredentialID: c.CredentialID,
			Class: c.Class, Outcome: c.Outcome, Count: c.N})
	}
	return out, nil
}

// usageKey is a row's bucket, credential, class and outcome.
type usageKey struct {
	ts, credential int64
	class, outcome string
}

// merge adds the live minute rows into rows' buckets of width, and returns
// them oldest first (then by credential, class and outcome, ListUsage's
// order).
func merge(rows, live []storage.UsageRow, width time.Duration) []storage.UsageRow {
	if len(live) == 0 {
		return rows
	}
	at := make(map[usageKey]int, len(rows))
	for i, u := range rows {
		at[usageKey{u.Time.Unix(), u.CredentialID, u.Class, u.Outcome}] = i
	}
	for _, u := range live {
		u.Time = u.Time.Truncate(width)
		k := usageKey{u.Time.Unix(), u.CredentialID, u.Class, u.Outcome}
		if i, ok := at[k]; ok {
			rows[i].Count += u.Count
			continue
		}
		at[k] = len(rows)
		rows = append(rows, u)
	}
	slices.SortFunc(rows, func(a, b storage.UsageRow) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.CredentialID, b.CredentialID), cmp.Compare(a.Class, b.Class),
			cmp.Compare(a.Outcome, b.Outcome))
	})
	return rows
}
