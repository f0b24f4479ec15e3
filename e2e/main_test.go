package e2e

import (
	"context"
	"os"
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	// The outage tests make go-redis complain about every refused dial.
	goredis.SetLogger(quietRedis{})
	os.Exit(m.Run())
}
