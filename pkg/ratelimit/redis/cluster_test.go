package redis_test

import (
	"testing"

	"github.com/tollgate/tollgate/pkg/ratelimit"
	"github.com/tollgate/tollgate/pkg/ratelimit/conformance"
	"github.com/tollgate/tollgate/pkg/ratelimit/redis"
	"github.com/tollgate/tollgate/storage/redis/redistest"
)

// The limiter on a Redis Cluster of three local masters: redis_rate's
// script touches one key, so any key works on any slot.
func TestClusterConformance(t *testing.T) {
	client, _ := redistest.NewCluster(t)
	conformance.Run(t, func(t *testing.T) (ratelimit.Limiter, conformance.Clock) {
		return redis.New(client, redis.Options{KeyPrefix: redistest.Prefix()}), conformance.RealClock{}
	})
}
