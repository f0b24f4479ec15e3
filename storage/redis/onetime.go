package redis

import (
	"context"
	"errors"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/storage"
)

var _ storage.OneTimeIDs = (*OneTimeIDs)(nil)

// OneTimeIDs is a storage.OneTimeIDs in Redis: one key per id,
// <prefix><id>, set only if absent and expiring with the id, so every
// instance sees every use.
type OneTimeIDs struct {
	client goredis.UniversalClient
	prefix string
	now    func() time.Time
}

// NewOneTimeIDs returns OneTimeIDs whose keys start with prefix; now (nil:
// time.Now) turns an expiry into the key's time to live.
func NewOneTimeIDs(client goredis.UniversalClient, prefix string, now func() time.Time) *OneTimeIDs {
	if now == nil {
		now = time.Now
	}
	return &OneTimeIDs{client: client, prefix: prefix, now: now}
}

// UseOnce records id until expiresAt; ErrAlreadyExists when it is
// recorded and unexpired.
func (o *OneTimeIDs) UseOnce(ctx context.Context, id string, expiresAt time.Time) error {
	// An id at the very end of its life is still recorded, for the least
	// time Redis keeps a key: it must not be usable twice in that instant.
	ttl := max(expiresAt.Sub(o.now()), time.Millisecond)
	err := o.client.SetArgs(ctx, o.prefix+id, "", goredis.SetArgs{Mode: "NX", TTL: ttl}).Err()
	if errors.Is(err, goredis.Nil) {
		return storage.ErrAlreadyExists
	}
	if err != nil {
		return storeError("use once", err)
	}
	return nil
}
