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
	p := bruteforce.Policy{Threshold: 5, BaseDelay: time.Second, MaxDelay: time.Second, Window: time.Minute}
	if _, err := s.Reserve(t.Context(), time.Now(), bruteforce.Request{Key: "c:id:42", Policy: p},
		bruteforce.Request{Key: "c:src:192.0.2.1", Policy: p}); err != nil {
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
	if _, err := s.Reserve(ctx, time.Now(), bruteforce.Request{Key: "k", Policy: bruteforce.Policy{Threshold: 1, Window: time.Minute}}); err == nil {
		t.Error("Reserve with a cancelled context: got no error")
	}
	if err := s.Release(ctx, []bruteforce.Reservation{{Key: "k"}}, []string{"k"}); err == nil {
		t.Error("Release with a cancelled context: got no error")
	}
}
