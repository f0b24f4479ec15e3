package redis

import (
	"context"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/storage"
)

// Gated is a script that runs behind a token's record: only when the
// record of a rooted token is live (stored, not expired, its request not
// revoked), in the same script that reads it. The check endpoint's
// decision runs so (pkg/meter/redis), making a Bearer check one round trip.
type Gated struct{ script *goredis.Script }

// NewGated returns body run behind the gate. Body is Lua: it reads its own
// keys as KEYS[kb + 1], KEYS[kb + 2], … and its arguments as ARGV[ab + 1],
// … (kb and ab are locals the gate sets, as the gate's own come first),
// and returns a table.
func NewGated(body string) *Gated {
	return &Gated{script: goredis.NewScript(luaRevoked + `
local record = redis.call('GET', KEYS[1])
if not record or revoked(record, KEYS[1], ARGV[1]) then
	return false
end
local kb, ab = 1, 1
local out = (function()
` + body + `
end)()
return {record, out}
`)}
}

// GetTokenThen reads the record of the rooted token signature and, only
// when it is live, runs g with keys and args, in one script: one round
// trip. A token that is not live answers storage.ErrNotFound and runs
// nothing, so it spends nothing. On success it returns the token and
// what g's body returned. keys must all carry the root's hash tag
// ({a<root>}), as the record's key does: on Redis Cluster one script
// touches one slot. A signature that is not rooted is an error: its record
// lives in a shard, which no other key shares.
func (s *Store) GetTokenThen(ctx context.Context, signature string, g *Gated, keys []string, args ...any) (storage.Token, []any, error) {
	root, sig, ok := storage.SplitRooted(signature)
	if !ok {
		return storage.Token{}, nil, errors.New("redis: get token then: not a rooted signature")
	}
	sh := s.rootShard(root)
	all := make([]string, 0, 1+len(keys))
	all = append(all, sh.tokenKey(sig))
	all = append(all, keys...)
	argv := make([]any, 0, 1+len(args))
	argv = append(argv, sh.markerPrefix)
	argv = append(argv, args...)
	vals, err := g.script.Run(ctx, s.client, all, argv...).Slice()
	if err != nil {
		return storage.Token{}, nil, storeError("get token then", err)
	}
	if len(vals) != 2 {
		return storage.Token{}, nil, fmt.Errorf("redis: get token then: %d values from the script", len(vals))
	}
	record, _ := vals[0].(string)
	out, _ := vals[1].([]any)
	// A record Redis still held but our clock finds expired (the clocks
	// disagree by a moment) is answered as not found, g having run.
	t, err := s.token(signature, record)
	if err != nil {
		return storage.Token{}, nil, err
	}
	return t, out, nil
}
