package usage_test

import (
	"context"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/pkg/usage"
	usageredis "github.com/tollgate/tollgate/pkg/usage/redis"
	"github.com/tollgate/tollgate/storage"
	sqlstore "github.com/tollgate/tollgate/storage/sql"
)

// liveFixture is a tree of two accounts with a key each, calls counted in
// the minutes around base (the clock's now), and a roll-up that copied the
// minutes up to base-3m.
type liveFixture struct {
	db                *sqlstore.Store
	counts            counters
	root, child       storage.Account
	rootKey, childKey storage.Client
	base              time.Time
	clock             func() time.Time
	rollup            *usage.Rollup
}

func newLiveFixture(t *testing.T, db *sqlstore.Store, counts counters) *liveFixture {
	t.Helper()
	f := &liveFixture{db: db, counts: counts}
	f.root, f.child, f.rootKey, f.childKey = tree(t, db)
	// Half past an hour, within the counters' TTL of the real clock (the
	// in-process counters expire by it): every minute below is in one hour
	// and one day.
	f.base = time.Now().UTC().Truncate(time.Hour).Add(-2*time.Hour + 30*time.Minute)
	f.clock = func() time.Time { return f.base }
	// The root's key: 1 call at -10m, 2 at -3m, 4 at -1m, 8 now; the
	// child's key 16 calls at -2m.
	f.add(t, f.rootKey.ID, -10, 1)
	f.add(t, f.rootKey.ID, -3, 2)
	f.add(t, f.rootKey.ID, -1, 4)
	f.add(t, f.rootKey.ID, 0, 8)
	f.add(t, f.childKey.ID, -2, 16)
	f.rollup = usage.NewRollup(usage.RollupTestOptions(counts, db, f.clock))
	if _, err := f.rollup.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if mark, err := db.UsageWatermark(t.Context()); err != nil || !mark.Equal(f.base.Add(-3*time.Minute)) {
		t.Fatalf("watermark %s, %v; want base-3m", mark, err)
	}
	return f
}

// add counts n allowed calls of credential id at base+offset minutes.
func (f *liveFixture) add(t *testing.T, id int64, offset, n int64) {
	t.Helper()
	c := usage.Count{Minute: f.base.Add(time.Duration(offset) * time.Minute), CredentialID: id, Class: "default", Outcome: usage.OutcomeAllowed, N: n}
	if err := f.counts.AddBatch(t.Context(), []usage.RootCount{{Root: f.root.ID, Count: c}}); err != nil {
		t.Fatal(err)
	}
}

func (f *liveFixture) reader(store storage.Usage, live usage.RangeReader) *usage.Reader {
	return usage.NewReader(usage.ReaderOptions{Store: store, Live: live, Accounts: f.db, Now: f.clock})
}

// read returns the counts r answers for sel in g's buckets, per bucket
// (minutes from base) and credential, and whether the answer is partial.
func (f *liveFixture) read(t *testing.T, r *usage.Reader, sel storage.UsageFilter, g storage.Granularity) (map[[2]int64]int64, bool) {
	t.Helper()
	sel.Granularity = g
	sel.From, sel.To = f.base.Add(-time.Hour), f.base.Add(time.Hour)
	rep, err := r.Read(t.Context(), sel)
	if err != nil {
		t.Fatal(err)
	}
	out := map[[2]int64]int64{}
	for i, row := range rep.Rows {
		k := [2]int64{int64(row.Time.Sub(f.base) / time.Minute), row.CredentialID}
		if _, dup := out[k]; dup {
			t.Errorf("%s: two rows of bucket %v", g, k)
		}
		if i > 0 && row.Time.Before(rep.Rows[i-1].Time) {
			t.Errorf("%s: rows not oldest first", g)
		}
		out[k] = row.Count
	}
	return out, rep.Partial
}

func equalCounts(a, b map[[2]int64]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Calls counted now show at once in minute, hour and day answers: the
// minutes up to the roll-up's watermark from the database, those after it
// from the counters, none twice; a count added to the watermark's minute
// after it was rolled up stays out (that minute is the database's).
func TestReaderAddsTheMinutesAfterTheWatermark(t *testing.T) {
	backends(t, func(t *testing.T, db *sqlstore.Store, counts counters) {
		f := newLiveFixture(t, db, counts)
		f.add(t, f.rootKey.ID, -3, 32) // late, after the roll-up of -3m
		r := f.reader(db, counts)
		hour := int64(f.base.Truncate(time.Hour).Sub(f.base) / time.Minute)
		day := int64(f.base.Truncate(24*time.Hour).Sub(f.base) / time.Minute)
		key, child := f.rootKey.ID, f.childKey.ID
		for _, c := range []struct {
			g    storage.Granularity
			want map[[2]int64]int64
		}{
			{storage.GranularityMinute, map[[2]int64]int64{{-10, key}: 1, {-3, key}: 2, {-1, key}: 4, {0, key}: 8}},
			{storage.GranularityHour, map[[2]int64]int64{{hour, key}: 15}},
			{storage.GranularityDay, map[[2]int64]int64{{day, key}: 15}},
		} {
			got, partial := f.read(t, r, storage.UsageFilter{CredentialID: key}, c.g)
			if !equalCounts(got, c.want) || partial {
				t.Errorf("%s usage of the root's key = %v (partial %v), want %v", c.g, got, partial, c.want)
			}
		}
		// The subtree: the root's holds both keys, the child's only its
		// own; a credential's answer holds only it.
		for _, c := range []struct {
			name string
			sel  storage.UsageFilter
			want map[[2]int64]int64
		}{
			{"root account", storage.UsageFilter{AccountID: f.root.ID}, map[[2]int64]int64{{hour, key}: 15, {hour, child}: 16}},
			{"child account", storage.UsageFilter{AccountID: f.child.ID}, map[[2]int64]int64{{hour, child}: 16}},
			{"child's key", storage.UsageFilter{CredentialID: child}, map[[2]int64]int64{{hour, child}: 16}},
		} {
			if got, _ := f.read(t, r, c.sel, storage.GranularityHour); !equalCounts(got, c.want) {
				t.Errorf("%s: %v, want %v", c.name, got, c.want)
			}
		}
		// A deleted credential's minutes count for its root account, as
		// the roll-up records them.
		if err := db.DeleteClient(t.Context(), child); err != nil {
			t.Fatal(err)
		}
		if got, _ := f.read(t, r, storage.UsageFilter{AccountID: f.child.ID}, storage.GranularityHour); len(got) != 0 {
			t.Errorf("child account after its key's deletion: %v, want nothing", got)
		}
		if got, _ := f.read(t, r, storage.UsageFilter{AccountID: f.root.ID}, storage.GranularityHour); got[[2]int64{hour, child}] != 16 {
			t.Errorf("root account after the child's key's deletion: %v, want its 16 calls", got)
		}
	})
}

// rollingStore runs a roll-up once, right before or right after the first
// ListUsage: a roll-up on another instance committing minutes while an
// answer is read.
type rollingStore struct {
	storage.Usage
	t      *testing.T
	rollup func() *usage.Rollup
	after  bool
	once   sync.Once
}

func (s *rollingStore) ListUsage(ctx context.Context, f storage.UsageFilter) ([]storage.UsageRow, error) {
	roll := func() {
		s.once.Do(func() {
			if n, err := s.rollup().RunOnce(ctx); err != nil || n == 0 {
				s.t.Errorf("concurrent roll-up: %d minutes, %v", n, err)
			}
		})
	}
	if !s.after {
		roll()
	}
	rows, err := s.Usage.ListUsage(ctx, f)
	if s.after {
		roll()
	}
	return rows, err
}

// rollingCounts runs a roll-up once before the first live read.
type rollingCounts struct {
	usage.RangeReader
	t      *testing.T
	rollup func() *usage.Rollup
	once   sync.Once
}

func (c *rollingCounts) ReadRange(ctx context.Context, root int64, from, to time.Time) ([]usage.Count, error) {
	c.once.Do(func() {
		if n, err := c.rollup().RunOnce(ctx); err != nil || n == 0 {
			c.t.Errorf("concurrent roll-up: %d minutes, %v", n, err)
		}
	})
	return c.RangeReader.ReadRange(ctx, root, from, to)
}

// A roll-up committing while an answer is read (before the database read,
// between it and the watermark's, or during the live read) counts no
// minute twice and loses none.
func TestReaderDuringARollup(t *testing.T) {
	for _, when := range []string{"before the rows", "after the rows", "during the live read"} {
		t.Run(when, func(t *testing.T) {
			backends(t, func(t *testing.T, db *sqlstore.Store, counts counters) {
				f := newLiveFixture(t, db, counts)
				// The concurrent roll-up runs two minutes later: it copies
				// -2m and -1m.
				later := func() *usage.Rollup {
					return usage.NewRollup(usage.RollupTestOptions(counts, db, func() time.Time { return f.base.Add(2 * time.Minute) }))
				}
				var r *usage.Reader
				switch when {
				case "during the live read":
					r = f.reader(db, &rollingCounts{RangeReader: counts, t: t, rollup: later})
				default:
					r = f.reader(&rollingStore{Usage: db, t: t, rollup: later, after: when == "after the rows"}, counts)
				}
				key := f.rootKey.ID
				want := map[[2]int64]int64{{-10, key}: 1, {-3, key}: 2, {-1, key}: 4, {0, key}: 8}
				if got, _ := f.read(t, r, storage.UsageFilter{CredentialID: key}, storage.GranularityMinute); !equalCounts(got, want) {
					t.Errorf("minutes = %v, want %v", got, want)
				}
				if mark, _ := db.UsageWatermark(t.Context()); !mark.Equal(f.base.Add(-time.Minute)) {
					t.Errorf("watermark %s after the concurrent roll-up, want base-1m", mark)
				}
				// Once more, whole: hours and days too.
				hour := int64(f.base.Truncate(time.Hour).Sub(f.base) / time.Minute)
				if got, _ := f.read(t, f.reader(db, counts), storage.UsageFilter{AccountID: f.root.ID}, storage.GranularityHour); got[[2]int64{hour, key}] != 15 {
					t.Errorf("hour after the roll-up = %v, want 15 calls of the root's key", got)
				}
			})
		})
	}
}

// spanRecorder records the minutes each live read asks for.
type spanRecorder struct {
	usage.RangeReader
	mu    sync.Mutex
	spans [][2]time.Time
}

func (s *spanRecorder) ReadRange(ctx context.Context, root int64, from, to time.Time) ([]usage.Count, error) {
	s.mu.Lock()
	s.spans = append(s.spans, [2]time.Time{from, to})
	s.mu.Unlock()
	return s.RangeReader.ReadRange(ctx, root, from, to)
}

// The live read covers only the minutes after the watermark up to the
// current one, and never more than the counters keep, whatever range is
// asked for; with Redis unreachable the answer is the database's, partial.
func TestReaderBoundsTheLiveRead(t *testing.T) {
	backends(t, func(t *testing.T, db *sqlstore.Store, counts counters) {
		f := newLiveFixture(t, db, counts)
		rec := &spanRecorder{RangeReader: counts}
		r := f.reader(db, rec)
		sel := storage.UsageFilter{CredentialID: f.rootKey.ID, Granularity: storage.GranularityDay,
			From: f.base.Add(-700 * 24 * time.Hour), To: f.base.Add(700 * 24 * time.Hour)}
		if _, err := r.Read(t.Context(), sel); err != nil {
			t.Fatal(err)
		}
		if len(rec.spans) != 1 || !rec.spans[0][0].Equal(f.base.Add(-2*time.Minute)) || !rec.spans[0][1].Equal(f.base.Add(time.Minute)) {
			t.Errorf("live reads %v, want one of [base-2m, base+1m)", rec.spans)
		}

		// Without a watermark (nothing rolled up yet): at most the TTL.
		empty := f.reader(&noWatermark{Usage: db}, rec)
		rec.spans = nil
		if _, err := empty.Read(t.Context(), sel); err != nil {
			t.Fatal(err)
		}
		if len(rec.spans) != 1 || rec.spans[0][1].Sub(rec.spans[0][0]) != usage.CountTTL {
			t.Errorf("live reads without a watermark %v, want one of %s", rec.spans, usage.CountTTL)
		}

		// Redis down: the rolled-up minutes, flagged.
		down := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
		t.Cleanup(func() { _ = down.Close() })
		key := f.rootKey.ID
		got, partial := f.read(t, f.reader(db, usageredis.New(down, usageredis.Options{})), storage.UsageFilter{CredentialID: key}, storage.GranularityMinute)
		if want := (map[[2]int64]int64{{-10, key}: 1, {-3, key}: 2}); !equalCounts(got, want) || !partial {
			t.Errorf("with Redis down: %v (partial %v), want %v, partial", got, partial, want)
		}
	})
}

// noWatermark is a database whose roll-up never ran.
type noWatermark struct{ storage.Usage }

func (noWatermark) UsageWatermark(context.Context) (time.Time, error) { return time.Time{}, nil }
