package redis_test

import (
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/dpop/redis"
	"github.com/tollgate/tollgate/storage/redis/redistest"
)

// TestReplay: a key is fresh once, on every instance sharing the Redis, and
// expires at its time.
func TestReplay(t *testing.T) {
	client, prefix := redistest.New(t)
	a, b := redis.New(client, prefix), redis.New(client, prefix)
	ctx := t.Context()
	until := time.Minute
	if ok, err := a.Fresh(ctx, "k1", until); !ok || err != nil {
		t.Fatalf("first Fresh = %v, %v", ok, err)
	}
	if ok, err := b.Fresh(ctx, "k1", until); ok || err != nil {
		t.Errorf("Fresh on another instance = %v, %v, want false", ok, err)
	}
	ttl, err := client.PTTL(ctx, prefix+"k1").Result()
	if err != nil || ttl <= 0 || ttl > time.Minute {
		t.Errorf("PTTL = %v, %v, want up to a minute", ttl, err)
	}
	if ok, err := a.Fresh(ctx, "k2", until); !ok || err != nil {
		t.Errorf("another key = %v, %v", ok, err)
	}
}
