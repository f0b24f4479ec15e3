// Package redis is the bruteforce.Store shared by every Tollgate instance:
// one Redis hash per key ("n": failures, "t": last failure in Unix
// milliseconds) that expires by itself a window after its last failure.
//
// Each key is read or written by its own command (a script for Fail), sent
// together in one pipeline: one round trip, and no command spans keys, so
// the store also works on Redis Cluster. It owns the keys under
// Options.KeyPrefix. When Redis cannot answer, the methods return the error:
// failing open is the Guard's choice, not this package's.
package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/pkg/bruteforce"
)

// DefaultKeyPrefix prefixes every key unless Options says otherwise.
const DefaultKeyPrefix = "tg:bf:"

var _ bruteforce.Store = (*Store)(nil)

// Options configures a Store.
type Options struct {
	// KeyPrefix is put before every key (DefaultKeyPrefix when empty).
	KeyPrefix string
}

// Store is a bruteforce.Store in Redis, safe for concurrent use.
type Store struct {
	client goredis.UniversalClient
	prefix string
}

// New answers a Store on client. It does not take ownership: closing the
// client is the caller's business.
func New(client goredis.UniversalClient, opts Options) *Store {
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = DefaultKeyPrefix
	}
	return &Store{client: client, prefix: opts.KeyPrefix}
}

// failScript counts one failure of KEYS[1] at ARGV[1] (Unix ms), starting
// over when the last one is ARGV[2] ms or more before, and keeps the key for
// ARGV[2] ms. It answers the new count.
var failScript = goredis.NewScript(`
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local v = redis.call('HMGET', KEYS[1], 'n', 't')
local n, t = tonumber(v[1]) or 0, tonumber(v[2]) or 0
if n > 0 and now - t >= window then n = 0 end
n = n + 1
redis.call('HSET', KEYS[1], 'n', n, 't', now)
redis.call('PEXPIRE', KEYS[1], window)
return n
`)

// Get implements bruteforce.Store.
func (s *Store) Get(ctx context.Context, keys ...string) ([]bruteforce.Record, error) {
	cmds := make([]*goredis.SliceCmd, len(keys))
	_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.HMGet(ctx, s.prefix+k, "n", "t")
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redis brute-force get: %w", err)
	}
	out := make([]bruteforce.Record, len(keys))
	for i, c := range cmds {
		v := c.Val()
		n, _ := strconv.Atoi(str(v[0]))
		t, _ := strconv.ParseInt(str(v[1]), 10, 64)
		if n > 0 {
			out[i] = bruteforce.Record{Failures: n, Last: time.UnixMilli(t)}
		}
	}
	return out, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// Fail implements bruteforce.Store.
func (s *Store) Fail(ctx context.Context, now time.Time, window time.Duration, keys ...string) ([]bruteforce.Record, error) {
	ms := now.UnixMilli()
	windowMS := max(window.Milliseconds(), 1)
	cmds := make([]*goredis.Cmd, len(keys))
	// EvalSha with a fallback does not fit a pipeline; the script is short.
	_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = failScript.Eval(ctx, p, []string{s.prefix + k}, ms, windowMS)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redis brute-force fail: %w", err)
	}
	out := make([]bruteforce.Record, len(keys))
	for i, c := range cmds {
		n, err := c.Int()
		if err != nil {
			return nil, fmt.Errorf("redis brute-force fail: %w", err)
		}
		out[i] = bruteforce.Record{Failures: n, Last: time.UnixMilli(ms)}
	}
	return out, nil
}

// Reset implements bruteforce.Store.
func (s *Store) Reset(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, k := range keys {
			p.Del(ctx, s.prefix+k)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis brute-force reset: %w", err)
	}
	return nil
}
