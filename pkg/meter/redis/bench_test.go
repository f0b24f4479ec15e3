package redis_test

import (
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/meter"
	"github.com/tollgate/tollgate/pkg/meter/redis"
	"github.com/tollgate/tollgate/pkg/ratelimit"
	rlredis "github.com/tollgate/tollgate/pkg/ratelimit/redis"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/storage/redis/redistest"
)

// BenchmarkDecide compares, on one Redis, the check's decision with only a
// per-second limit, with a quota and two budget levels, and the limiter it
// replaced (one GCRA step), in parallel.
func BenchmarkDecide(b *testing.B) {
	client, prefix := redistest.New(b)
	d := redis.New(client, redis.Options{KeyPrefix: prefix})
	huge := ratelimit.Limit{Rate: 10_000_000, Burst: 10_000_000}
	q := storage.Quota{Limit: storage.MaxQuotaLimit, Period: storage.QuotaMonth}
	plain := meter.Request{Root: 1, CredentialID: 2, AccountID: 3, Class: "default", Cost: 1, Rate: huge}
	metered := plain
	metered.Cost = 2
	metered.Quota = &q
	metered.Budgets = []meter.Budget{{AccountID: 3, Rate: &huge, Quota: &q}, {AccountID: 1, Quota: &q}}
	for name, req := range map[string]meter.Request{"rate": plain, "rate+quota+2budgets": metered} {
		b.Run(name, func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req.Now = time.Now()
					if dec, err := d.Decide(b.Context(), req); err != nil || !dec.Allowed {
						b.Fatal(dec, err)
					}
				}
			})
		})
	}
	b.Run("limiter", func(b *testing.B) {
		l := rlredis.New(client, rlredis.Options{KeyPrefix: prefix + "rl:"})
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if res, err := l.Allow(b.Context(), "c:2:default", huge); err != nil || !res.Allowed {
					b.Fatal(res, err)
				}
			}
		})
	})
}
