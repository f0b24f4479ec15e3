// Package redis is the ratelimit.Limiter shared by every Tollgate instance:
// GCRA in Redis through github.com/go-redis/redis_rate, one Lua script and one
// round trip per decision, timed by the Redis server's clock so instances need
// not agree on the time.
//
// It owns the keys under Options.KeyPrefix. Each holds one number (the GCRA
// "theoretical arrival time") and expires by itself once its limit has
// replenished. When Redis cannot answer, Allow returns the error and no
// decision: failing open is for a wrapper to choose, not this package.
package redis

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/go-redis/redis_rate/v10"
	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/pkg/ratelimit"
)

// DefaultKeyPrefix prefixes every key unless Options says otherwise.
const DefaultKeyPrefix = "tg:rl:"

var _ ratelimit.Limiter = (*Limiter)(nil)

// Options configures a Limiter.
type Options struct {
	// KeyPrefix is put before every key (DefaultKeyPrefix when empty).
	KeyPrefix string
}

// Limiter is a ratelimit.Limiter in Redis, safe for concurrent use.
type Limiter struct {
	gcra   *redis_rate.Limiter
	prefix string
}

// New answers a Limiter on client. It does not take ownership: closing the
// client is the caller's business.
func New(client goredis.UniversalClient, opts Options) *Limiter {
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = DefaultKeyPrefix
	}
	return &Limiter{
		gcra:   redis_rate.NewLimiter(keys{client}),
		prefix: opts.KeyPrefix,
	}
}

// Allow decides whether one more request under key fits limit.
func (l *Limiter) Allow(ctx context.Context, key string, limit ratelimit.Limit) (ratelimit.Result, error) {
	if err := limit.Validate(); err != nil {
		return ratelimit.Result{}, err
	}
	r, err := l.gcra.Allow(ctx, l.prefix+key, redis_rate.Limit{
		Rate:   limit.Rate,
		Burst:  limit.Burst,
		Period: time.Second,
	})
	if err != nil {
		return ratelimit.Result{}, fmt.Errorf("redis rate limit: %w", err)
	}
	res := ratelimit.Result{
		Allowed:    r.Allowed > 0,
		Limit:      limit,
		ResetAfter: max(r.ResetAfter, 0),
	}
	if !res.Allowed {
		// redis_rate answers -1 when allowed; only a denial has a retry.
		res.RetryAfter = max(r.RetryAfter, 0)
		return res, nil
	}
	res.Remaining = remaining(limit, res.ResetAfter)
	return res, nil
}

// remaining answers the requests left after an allowed one. The script's own
// count truncates a float computed on the server's clock (seconds since 2017,
// ~1e-7 s precision), so a bucket with 3 requests left may be reported as 2.99
// and so 2. ResetAfter says the same thing in time; counted from it with a
// thousandth of a request of tolerance for that noise, Remaining is exact.
func remaining(limit ratelimit.Limit, resetAfter time.Duration) int {
	used := resetAfter.Seconds() * float64(limit.Rate)
	left := int(math.Floor(float64(limit.Burst) - used + 1e-3))
	return min(max(left, 0), limit.Burst-1)
}

// libraryPrefix is what redis_rate puts before every key. keys takes it off
// again so that the keys in Redis are KeyPrefix+key, all under KeyPrefix,
// where operators and test clean-up expect them.
const libraryPrefix = "rate:"

// keys is the client redis_rate talks to, with the library's key prefix
// taken off. It implements the methods redis_rate needs.
type keys struct {
	c goredis.UniversalClient
}

func unprefix(ks []string) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = strings.TrimPrefix(k, libraryPrefix)
	}
	return out
}

func (k keys) Eval(ctx context.Context, script string, ks []string, args ...any) *goredis.Cmd {
	return k.c.Eval(ctx, script, unprefix(ks), args...)
}

func (k keys) EvalSha(ctx context.Context, sha1 string, ks []string, args ...any) *goredis.Cmd {
	return k.c.EvalSha(ctx, sha1, unprefix(ks), args...)
}

func (k keys) EvalRO(ctx context.Context, script string, ks []string, args ...any) *goredis.Cmd {
	return k.c.EvalRO(ctx, script, unprefix(ks), args...)
}

func (k keys) EvalShaRO(ctx context.Context, sha1 string, ks []string, args ...any) *goredis.Cmd {
	return k.c.EvalShaRO(ctx, sha1, unprefix(ks), args...)
}

func (k keys) ScriptExists(ctx context.Context, hashes ...string) *goredis.BoolSliceCmd {
	return k.c.ScriptExists(ctx, hashes...)
}

func (k keys) ScriptLoad(ctx context.Context, script string) *goredis.StringCmd {
	return k.c.ScriptLoad(ctx, script)
}

func (k keys) Del(ctx context.Context, ks ...string) *goredis.IntCmd {
	return k.c.Del(ctx, unprefix(ks)...)
}
