package usage_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/pkg/usage"
	"github.com/tollgate/tollgate/pkg/usage/memory"
	usageredis "github.com/tollgate/tollgate/pkg/usage/redis"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/storage/redis/redistest"
	sqlstore "github.com/tollgate/tollgate/storage/sql"
	"github.com/tollgate/tollgate/storage/sql/sqltest"
)

// counters are the per-minute counters the roll-up and the usage reader
// read from.
type counters interface {
	usage.BatchCounter
	usage.BatchReader
	usage.RangeReader
}

// backends runs fn on SQLite and PostgreSQL, each with the in-process and
// the Redis counters.
func backends(t *testing.T, fn func(t *testing.T, db *sqlstore.Store, counts counters)) {
	dbs := map[string]func(*testing.T) string{"sqlite": sqltest.SQLite, "postgres": sqltest.Postgres}
	for dbName, url := range dbs {
		for _, cName := range []string{"memory", "redis"} {
			t.Run(dbName+"/"+cName, func(t *testing.T) {
				ctx := t.Context()
				db, err := sqlstore.Open(ctx, sqlstore.Options{URL: url(t)})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = db.Close() })
				if _, err := db.Migrate(ctx); err != nil {
					t.Fatal(err)
				}
				var c counters = memory.New(nil)
				if cName == "redis" {
					client, prefix := redistest.New(t)
					c = usageredis.New(client, usageredis.Options{KeyPrefix: prefix})
				}
				fn(t, db, c)
			})
		}
	}
}

// tree makes a root account with a child, and a credential in each.
func tree(t *testing.T, db *sqlstore.Store) (root, child storage.Account, rootKey, childKey storage.Client) {
	t.Helper()
	ctx := t.Context()
	var err error
	if root, err = db.CreateAccount(ctx, storage.Account{Name: "root", Status: storage.StatusActive}); err != nil {
		t.Fatal(err)
	}
	if child, err = db.CreateAccount(ctx, storage.Account{Name: "child", ParentID: root.ID, Status: storage.StatusActive}); err != nil {
		t.Fatal(err)
	}
	mk := func(acc int64, name string) storage.Client {
		c, err := db.CreateClient(ctx, storage.Client{AccountID: acc, Kind: storage.KindKey, Name: name, SecretHash: "h", Status: storage.StatusActive})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	return root, child, mk(root.ID, "root-key"), mk(child.ID, "child-key")
}

// failingStore fails the next WriteUsageMinute calls: a crash between the
// read from the counters and the write to the database.
type failingStore struct {
	storage.Usage
	mu    sync.Mutex
	fails int
}

func (f *failingStore) WriteUsageMinute(ctx context.Context, m time.Time, rows []storage.UsageRow) error {
	f.mu.Lock()
	fail := f.fails > 0
	if fail {
		f.fails--
	}
	f.mu.Unlock()
	if fail {
		return errors.New("injected crash before the write")
	}
	return f.Usage.WriteUsageMinute(ctx, m, rows)
}

func sum(t *testing.T, db storage.Usage, g storage.Granularity, f storage.UsageFilter) map[string]int64 {
	t.Helper()
	f.Granularity = g
	rows, err := db.ListUsage(t.Context(), f)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, r := range rows {
		out[r.Outcome] += r.Count
	}
	return out
}

// Counts go from the counters to minutes, hours and days exactly once,
// whatever crashes and reruns happen in between, and an account's usage
// holds its subtree's.
func TestRollupExactlyOnce(t *testing.T) {
	backends(t, func(t *testing.T, db *sqlstore.Store, counts counters) {
		ctx := t.Context()
		root, child, rootKey, childKey := tree(t, db)
		base := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
		now := base
		clock := func() time.Time { return now }
		// 10 minutes of calls: each minute 3 allowed and 1 rate limited for
		// the root's key, 2 allowed for the child's.
		var batch []usage.RootCount
		for i := range 10 {
			m := base.Add(time.Duration(i) * time.Minute)
			batch = append(batch,
				usage.RootCount{Root: root.ID, Count: usage.Count{Minute: m, CredentialID: rootKey.ID, Class: "default", Outcome: usage.OutcomeAllowed, N: 3}},
				usage.RootCount{Root: root.ID, Count: usage.Count{Minute: m, CredentialID: rootKey.ID, Class: "default", Outcome: usage.OutcomeRateLimited, N: 1}},
				usage.RootCount{Root: root.ID, Count: usage.Count{Minute: m, CredentialID: childKey.ID, Class: "default", Outcome: usage.OutcomeAllowed, N: 2}},
			)
		}
		if err := counts.AddBatch(ctx, batch); err != nil {
			t.Fatal(err)
		}
		// The watermark starts just before base.
		if err := db.WriteUsageMinute(ctx, base.Add(-time.Minute), nil); err != nil {
			t.Fatal(err)
		}
		failing := &failingStore{Usage: db}
		r := usage.NewRollup(usage.RollupTestOptions(counts, failing, clock))

		// 5 minutes later than the last minute plus grace: all closed. The
		// first write crashes; nothing is written, the rerun resumes.
		now = base.Add(10*time.Minute + usage.DefaultGrace + time.Minute)
		failing.fails = 1
		if n, err := r.RunOnce(ctx); err == nil || n != 0 {
			t.Fatalf("RunOnce with a crash = %d, %v; want 0 and an error", n, err)
		}
		// Concurrent runners after the crash.
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				if _, err := r.RunOnce(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		// And a rerun of minutes already done, as an instance with an old
		// watermark would.
		if err := db.WriteUsageMinute(ctx, base.Add(-time.Minute), nil); err != nil {
			t.Fatal(err)
		}
		if _, err := r.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		mark, err := db.UsageWatermark(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := r.LastClosed(now); !mark.Equal(want) {
			t.Errorf("watermark = %s, want %s", mark, want)
		}
		window := storage.UsageFilter{From: base.Add(-24 * time.Hour), To: base.Add(24 * time.Hour)}
		for _, g := range []storage.Granularity{storage.GranularityMinute, storage.GranularityHour, storage.GranularityDay} {
			f := window
			f.CredentialID = rootKey.ID
			if got := sum(t, db, g, f); got[usage.OutcomeAllowed] != 30 || got[usage.OutcomeRateLimited] != 10 {
				t.Errorf("%s: root key = %v, want allowed 30, rate_limited 10", g, got)
			}
			f = window
			f.AccountID = root.ID
			if got := sum(t, db, g, f); got[usage.OutcomeAllowed] != 50 || got[usage.OutcomeRateLimited] != 10 {
				t.Errorf("%s: root's subtree = %v, want allowed 50, rate_limited 10", g, got)
			}
			f = window
			f.AccountID = child.ID
			if got := sum(t, db, g, f); got[usage.OutcomeAllowed] != 20 || got[usage.OutcomeRateLimited] != 0 {
				t.Errorf("%s: child = %v, want allowed 20", g, got)
			}
		}
		rows, err := db.ListUsage(ctx, storage.UsageFilter{CredentialID: rootKey.ID, Granularity: storage.GranularityMinute, From: base, To: base.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 20 {
			t.Errorf("minute rows of the root key = %d, want 20", len(rows))
		}
	})
}

// The roll-up deletes the rows older than their granularity's retention.
func TestRollupRetention(t *testing.T) {
	backends(t, func(t *testing.T, db *sqlstore.Store, counts counters) {
		ctx := t.Context()
		root, _, key, _ := tree(t, db)
		old := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		if err := db.WriteUsageMinute(ctx, old, []storage.UsageRow{{RootID: root.ID, AccountID: root.ID, CredentialID: key.ID, Class: "default", Outcome: usage.OutcomeAllowed, Count: 7}}); err != nil {
			t.Fatal(err)
		}
		now := old.Add(3 * 24 * time.Hour)
		// The watermark is recent: the run copies a few minutes only.
		if err := db.WriteUsageMinute(ctx, now.Add(-5*time.Minute), nil); err != nil {
			t.Fatal(err)
		}
		o := usage.RollupTestOptions(counts, db, func() time.Time { return now })
		o.HourRetention = 48 * time.Hour
		if _, err := usage.NewRollup(o).RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		f := storage.UsageFilter{CredentialID: key.ID, From: old.Add(-time.Hour), To: now}
		if got := sum(t, db, storage.GranularityMinute, f); len(got) != 0 {
			t.Errorf("minutes after 3 days = %v, want none (48h retention)", got)
		}
		if got := sum(t, db, storage.GranularityHour, f); len(got) != 0 {
			t.Errorf("hours after 3 days = %v, want none (48h retention)", got)
		}
		if got := sum(t, db, storage.GranularityDay, f); got[usage.OutcomeAllowed] != 7 {
			t.Errorf("days after 3 days = %v, want allowed 7", got)
		}
	})
}

// With Redis unreachable the roll-up fails, writes nothing and leaves the
// watermark; once Redis answers it resumes from there and misses nothing.
func TestRollupWaitsForRedis(t *testing.T) {
	ctx := t.Context()
	db, err := sqlstore.Open(ctx, sqlstore.Options{URL: sqltest.SQLite(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	root, _, key, _ := tree(t, db)
	client, prefix := redistest.New(t)
	up := usageredis.New(client, usageredis.Options{KeyPrefix: prefix})
	down := usageredis.New(goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond}),
		usageredis.Options{KeyPrefix: prefix})
	base := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	if err := up.AddBatch(ctx, []usage.RootCount{{Root: root.ID, Count: usage.Count{Minute: base.Add(2 * time.Minute), CredentialID: key.ID,
		Class: "default", Outcome: usage.OutcomeAllowed, N: 9}}}); err != nil {
		t.Fatal(err)
	}
	if err := db.WriteUsageMinute(ctx, base, nil); err != nil {
		t.Fatal(err)
	}
	now := base.Add(10 * time.Minute)
	clock := func() time.Time { return now }
	if n, err := usage.NewRollup(usage.RollupTestOptions(down, db, clock)).RunOnce(ctx); err == nil || n != 0 {
		t.Fatalf("RunOnce with Redis down = %d, %v; want 0 and an error", n, err)
	}
	if mark, _ := db.UsageWatermark(ctx); !mark.Equal(base) {
		t.Errorf("watermark after the failure = %s, want %s", mark, base)
	}
	if _, err := usage.NewRollup(usage.RollupTestOptions(up, db, clock)).RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	got := sum(t, db, storage.GranularityHour, storage.UsageFilter{CredentialID: key.ID, From: base, To: now})
	if got[usage.OutcomeAllowed] != 9 {
		t.Errorf("after Redis came back: %v, want allowed 9", got)
	}
}
