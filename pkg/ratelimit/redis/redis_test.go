package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/pkg/ratelimit"
	"github.com/tollgate/tollgate/pkg/ratelimit/conformance"
	"github.com/tollgate/tollgate/pkg/ratelimit/redis"
	"github.com/tollgate/tollgate/storage/redis/redistest"
)

func TestConformance(t *testing.T) {
	conformance.Run(t, func(t *testing.T) (ratelimit.Limiter, conformance.Clock) {
		client, prefix := redistest.New(t)
		return redis.New(client, redis.Options{KeyPrefix: prefix}), conformance.RealClock{}
	})
}

// Keys live under KeyPrefix (not redis_rate's own "rate:") and expire by
// themselves once the limit has replenished.
func TestKeysUnderPrefixExpire(t *testing.T) {
	client, prefix := redistest.New(t)
	l := redis.New(client, redis.Options{KeyPrefix: prefix})
	res, err := l.Allow(t.Context(), "client-1:default", ratelimit.Limit{Rate: 1, Burst: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Allowed {
		t.Fatal("first request: got denied, want allowed")
	}
	keys, err := redistest.Keys(t.Context(), client, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if want := prefix + "client-1:default"; len(keys) != 1 || keys[0] != want {
		t.Fatalf("got keys %q, want [%q]", keys, want)
	}
	ttl, err := client.TTL(t.Context(), keys[0]).Result()
	if err != nil {
		t.Fatal(err)
	}
	// One request at 1/s takes a second to replenish.
	if ttl <= 0 || ttl > 2*time.Second {
		t.Errorf("got TTL %v, want within (0, 2s]", ttl)
	}
}

func TestDefaultKeyPrefix(t *testing.T) {
	client, prefix := redistest.New(t)
	l := redis.New(client, redis.Options{})
	// The test prefix inside the key keeps it unique and lets clean-up find it
	// under the default prefix below.
	key := prefix + "k"
	if _, err := l.Allow(t.Context(), key, ratelimit.Limit{Rate: 1, Burst: 1}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Del(context.Background(), redis.DefaultKeyPrefix+key) })
	n, err := client.Exists(t.Context(), redis.DefaultKeyPrefix+key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("got %d keys named %q, want 1", n, redis.DefaultKeyPrefix+key)
	}
}

// Two Limiters on one Redis (two Tollgate instances) share the counters.
func TestSharedAcrossInstances(t *testing.T) {
	client, prefix := redistest.New(t)
	a := redis.New(client, redis.Options{KeyPrefix: prefix})
	b := redis.New(client, redis.Options{KeyPrefix: prefix})
	limit := ratelimit.Limit{Rate: 1, Burst: 4}
	allowed := 0
	for i := range 10 {
		l := a
		if i%2 == 1 {
			l = b
		}
		res, err := l.Allow(t.Context(), "k", limit)
		if err != nil {
			t.Fatal(err)
		}
		if res.Allowed {
			allowed++
		}
	}
	if allowed != limit.Burst {
		t.Errorf("got %d allowed across two instances, want %d", allowed, limit.Burst)
	}
}

// With Redis gone, Allow answers an error and never an allowed Result.
func TestRedisDown(t *testing.T) {
	client := goredis.NewClient(&goredis.Options{
		Addr:        "127.0.0.1:1", // nothing listens there
		DialTimeout: 200 * time.Millisecond,
		MaxRetries:  -1,
	})
	t.Cleanup(func() { _ = client.Close() })
	l := redis.New(client, redis.Options{})
	res, err := l.Allow(t.Context(), "k", ratelimit.Limit{Rate: 1, Burst: 1})
	if err == nil {
		t.Fatal("got no error, want one")
	}
	if res.Allowed {
		t.Error("got allowed with an error, want denied")
	}
	if !strings.HasPrefix(err.Error(), "redis rate limit: ") {
		t.Errorf("got error %q, want it wrapped with %q", err, "redis rate limit: ")
	}
}

func TestCancelledContext(t *testing.T) {
	client, prefix := redistest.New(t)
	l := redis.New(client, redis.Options{KeyPrefix: prefix})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := l.Allow(ctx, "k", ratelimit.Limit{Rate: 1, Burst: 1})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

func BenchmarkAllow(b *testing.B) {
	client, prefix := redistest.New(b)
	l := redis.New(client, redis.Options{KeyPrefix: prefix})
	limit := ratelimit.Limit{Rate: 1_000_000_000, Burst: 1_000_000}
	ctx := b.Context()
	// A limit never reached: every request is allowed.
	b.Run("one key allowed", func(b *testing.B) {
		for b.Loop() {
			if _, err := l.Allow(ctx, "client:default", limit); err != nil {
				b.Fatal(err)
			}
		}
	})
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprint("client-", i, ":default")
	}
	// The default class's 3/s: most requests are denied, as in a flood.
	limit = ratelimit.Limit{Rate: 3, Burst: 3}
	b.Run("parallel 1024 keys 3 per second", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := l.Allow(ctx, keys[i%len(keys)], limit); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
}
