package redis_test

import (
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/pkg/dpop/redis"
	"github.com/tollgate/tollgate/storage/redis/redistest"
)

// TestReplay: a key is fresh once, on every instance sharing the Redis, and
// expires at its time.
func TestReplay(t *testing.T) {
	client, prefix := redistest.New(t)
	testReplay(t, client, prefix)
}

// TestReplayCluster: the same on a Redis Cluster of three local masters:
// each proof is one key, on any slot.
func TestReplayCluster(t *testing.T) {
	client, prefix := redistest.NewCluster(t)
	testReplay(t, client, prefix)
}

func testReplay(t *testing.T, client goredis.UniversalClient, prefix string) {
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
	for _, k := range []string{"k2", "k3", "k4", "k5", "k6"} {
		if ok, err := a.Fresh(ctx, k, until); !ok || err != nil {
			t.Errorf("key %s = %v, %v, want fresh", k, ok, err)
		}
		if ok, err := b.Fresh(ctx, k, until); ok || err != nil {
			t.Errorf("key %s again = %v, %v, want not fresh", k, ok, err)
		}
	}
}
