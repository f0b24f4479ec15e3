package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/bruteforce"
	"github.com/tollgate/tollgate/pkg/bruteforce/conformance"
	"github.com/tollgate/tollgate/pkg/bruteforce/redis"
	"github.com/tollgate/tollgate/storage/redis/redistest"
)

func TestConformance(t *testing.T) {
	conformance.Run(t, func(t *testing.T) (bruteforce.Store, conformance.Clock) {
		client, prefix := redistest.New(t)
		return redis.New(client, redis.Options{KeyPrefix: prefix}), conformance.RealClock{}
	})
}

// Keys live under KeyPrefix and carry the window as their TTL.
func TestKeysUnderPrefixExpire(t *testing.T) {
	client, prefix := redistest.New(t)
	s := redis.New(client, redis.Options{KeyPrefix: prefix})
	if _, err := s.Fail(t.Context(), time.Now(), time.Minute, "c:id:42", "c:src:192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	keys, err := redistest.Keys(t.Context(), client, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("got keys %q, want 2 under %s", keys, prefix)
	}
	for _, k := range keys {
		ttl, err := client.PTTL(t.Context(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl <= 0 || ttl > time.Minute {
			t.Errorf("key %s: got TTL %v, want within (0, 1m]", k, ttl)
		}
	}
}

// A failed call answers an error, never a made-up record.
func TestCancelled(t *testing.T) {
	client, prefix := redistest.New(t)
	s := redis.New(client, redis.Options{KeyPrefix: prefix})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Get(ctx, "k"); err == nil {
		t.Error("Get with a cancelled context: got no error")
	}
	if _, err := s.Fail(ctx, time.Now(), time.Minute, "k"); err == nil {
		t.Error("Fail with a cancelled context: got no error")
	}
	if err := s.Reset(ctx, "k"); err == nil {
		t.Error("Reset with a cancelled context: got no error")
	}
}
