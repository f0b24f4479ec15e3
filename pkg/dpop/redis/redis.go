// Package redis is the dpop.Replay every Tollgate instance shares: one SET
// NX with an expiry per proof, so a proof used at one instance is refused
// at every other.
package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/pkg/dpop"
)

// DefaultKeyPrefix prefixes every key unless told otherwise.
const DefaultKeyPrefix = "tg:dpop:"

// Replay is a dpop.Replay in Redis, safe for concurrent use.
type Replay struct {
	client goredis.UniversalClient
	prefix string
}

var _ dpop.Replay = (*Replay)(nil)

// New returns a Replay on client with keys under prefix (DefaultKeyPrefix
// when empty). It does not take ownership of client.
func New(client goredis.UniversalClient, prefix string) *Replay {
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	return &Replay{client: client, prefix: prefix}
}

// Fresh implements dpop.Replay: the key expires by itself after ttl, on
// Redis's clock (at least a millisecond: Redis refuses none).
func (r *Replay) Fresh(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	ttl = max(ttl, time.Millisecond)
	ok, err := r.client.SetArgs(ctx, r.prefix+key, "1", goredis.SetArgs{Mode: "NX", TTL: ttl}).Result()
	if errors.Is(err, goredis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("remember dpop proof: %w", err)
	}
	return ok == "OK", nil
}
