package redis_test

import (
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/console/session"
	"github.com/tollgate/tollgate/pkg/console/session/conformance"
	"github.com/tollgate/tollgate/pkg/console/session/redis"
	"github.com/tollgate/tollgate/storage/redis/redistest"
)

func TestConformance(t *testing.T) {
	conformance.Run(t, func(t *testing.T) (session.Store, conformance.Clock) {
		client, prefix := redistest.New(t)
		return redis.New(client, redis.Options{KeyPrefix: prefix}), conformance.RealClock{}
	})
}

// Sessions live under the prefix, keyed by the cookie's hash, and carry
// their lifetime as the key's TTL.
func TestKeyAndTTL(t *testing.T) {
	client, prefix := redistest.New(t)
	s := redis.New(client, redis.Options{KeyPrefix: prefix})
	cookie := "the-cookie-value"
	if err := s.Create(t.Context(), session.Key(cookie), session.Session{UserID: 1}, 30*time.Minute); err != nil {
		t.Fatal(err)
	}
	keys, err := redistest.Keys(t.Context(), client, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != prefix+session.Key(cookie) {
		t.Fatalf("keys = %q, want [%s]", keys, prefix+session.Key(cookie))
	}
	ttl, err := client.PTTL(t.Context(), keys[0]).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 29*time.Minute || ttl > 30*time.Minute {
		t.Errorf("TTL = %v, want about 30m", ttl)
	}
}
