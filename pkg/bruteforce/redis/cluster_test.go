package redis_test

import (
	"testing"

	"github.com/tollgate/tollgate/pkg/bruteforce"
	"github.com/tollgate/tollgate/pkg/bruteforce/conformance"
	"github.com/tollgate/tollgate/pkg/bruteforce/redis"
	"github.com/tollgate/tollgate/storage/redis/redistest"
)

// The counters on a Redis Cluster of three local masters: every command
// and script touches one key, and the pipeline spans masters.
func TestClusterConformance(t *testing.T) {
	client, _ := redistest.NewCluster(t)
	conformance.Run(t, func(t *testing.T) (bruteforce.Store, conformance.Clock) {
		return redis.New(client, redis.Options{KeyPrefix: redistest.Prefix()}), conformance.RealClock{}
	})
}
