package redis_test

import (
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/usage"
	usageredis "github.com/tollgate/tollgate/pkg/usage/redis"
	"github.com/tollgate/tollgate/storage/redis/redistest"
)

// Counts land in the shared layout (the key and field the check's script
// writes, with a TTL), and read back, including what the script wrote.
func TestCountsLayout(t *testing.T) {
	ctx := t.Context()
	client, prefix := redistest.New(t)
	c := usageredis.New(client, usageredis.Options{KeyPrefix: prefix})
	m := time.Date(2026, 5, 6, 7, 8, 0, 0, time.UTC)
	if err := c.AddBatch(ctx, []usage.RootCount{
		{Root: 42, Count: usage.Count{Minute: m, CredentialID: 7, Class: "default", Outcome: usage.OutcomeAllowed, N: 2}},
		{Root: 42, Count: usage.Count{Minute: m.Add(30 * time.Second), CredentialID: 7, Class: "default", Outcome: usage.OutcomeAllowed, N: 3}},
	}); err != nil {
		t.Fatal(err)
	}
	key := prefix + "u:{a42}:29634188" // 2026-05-06T07:08Z in unix minutes
	// Under the default prefix, exactly the shared layout.
	if got, want := usage.CountKey(42, m), "tg:u:{a42}:29634188"; got != want {
		t.Fatalf("CountKey = %q, want %q", got, want)
	}
	if got := client.HGet(ctx, key, "7:default:allowed").Val(); got != "5" {
		t.Errorf("field = %q, want 5", got)
	}
	if ttl := client.TTL(ctx, key).Val(); ttl <= 47*time.Hour || ttl > usage.CountTTL {
		t.Errorf("TTL = %s, want about %s", ttl, usage.CountTTL)
	}
	// What the check's decision script writes directly (a class with a
	// colon-free name, another outcome) reads back too; garbage does not.
	client.HIncrBy(ctx, key, "7:search:rate_limited", 4)
	client.HSet(ctx, key, "garbage", "1", "8:x:allowed", "NaN")
	got, err := c.ReadMinute(ctx, 42, m)
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]int64{}
	for _, g := range got {
		if !g.Minute.Equal(m) || g.CredentialID != 7 {
			t.Errorf("count %+v: want minute %s, credential 7", g, m)
		}
		sums[g.Class+"/"+g.Outcome] += g.N
	}
	if len(sums) != 2 || sums["default/allowed"] != 5 || sums["search/rate_limited"] != 4 {
		t.Errorf("read = %v, want default/allowed 5 and search/rate_limited 4", sums)
	}
}
