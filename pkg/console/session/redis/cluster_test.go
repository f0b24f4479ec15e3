package redis_test

import (
	"testing"

	"github.com/tollgate/tollgate/pkg/console/session"
	"github.com/tollgate/tollgate/pkg/console/session/conformance"
	"github.com/tollgate/tollgate/pkg/console/session/redis"
	"github.com/tollgate/tollgate/storage/redis/redistest"
)

// Sessions on a Redis Cluster of three local masters: every command
// touches one key.
func TestClusterConformance(t *testing.T) {
	client, _ := redistest.NewCluster(t)
	conformance.Run(t, func(t *testing.T) (session.Store, conformance.Clock) {
		return redis.New(client, redis.Options{KeyPrefix: redistest.Prefix()}), conformance.RealClock{}
	})
}
