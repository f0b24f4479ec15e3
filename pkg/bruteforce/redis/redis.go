// Package redis is the bruteforce.Store shared by every Tollgate instance:
// one Redis hash per key ("n": failures, "t": last failure in Unix
// milliseconds, "s": the number of the latest reservation) that expires by
// itself a window after its last failure.
//
// Each key is read or written by its own command (a script for Reserve and
// Release, so that checking the back-off and counting are one atomic step),
// sent together in one pipeline: one round trip, and no command spans keys,
// so the store also works on Redis Cluster. It owns the keys under
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

// reserveScript reserves an attempt on KEYS[1] at ARGV[1] (Unix ms) under
// the policy ARGV[2..5] (threshold, base delay, max delay, window, in ms):
// it is bruteforce.Policy.Wait and the count in one step. It answers
// {failures, last failure, wait, reservation number, previous failure}: a
// positive wait counted nothing. Reservation numbers start from the time
// in ms (kept under 14 digits, which Lua formats exactly), so an old
// reservation hardly ever matches a recreated key.
var reserveScript = goredis.NewScript(`
local now, threshold, base, maxd, window =
  tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local v = redis.call('HMGET', KEYS[1], 'n', 't', 's')
local n, t, s = tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 0
if n > 0 and now - t >= window then n, t = 0, 0 end
if n >= threshold then
  local d = base
  for i = 1, n - threshold do
    if d >= maxd then break end
    d = d * 2
  end
  if d > maxd then d = maxd end
  local w = t + d - now
  if w > 0 then return {n, t, w, 0, 0} end
end
s = math.max(s + 1, now)
redis.call('HSET', KEYS[1], 'n', n + 1, 't', now, 's', s)
redis.call('PEXPIRE', KEYS[1], window)
return {n + 1, now, 0, s, t}
`)

// releaseScript takes back reservation ARGV[1] of KEYS[1]: one failure
// fewer, the key forgotten at zero, and the last failure back to ARGV[2]
// (Unix ms; 0: none) when no later reservation counted.
var releaseScript = goredis.NewScript(`
local v = redis.call('HMGET', KEYS[1], 'n', 's')
local n, s = tonumber(v[1]) or 0, tonumber(v[2]) or 0
if n <= 1 then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('HSET', KEYS[1], 'n', n - 1)
local prev = tonumber(ARGV[2])
if s == tonumber(ARGV[1]) and prev > 0 then redis.call('HSET', KEYS[1], 't', ARGV[2]) end
return n - 1
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

func ms(d time.Duration) int64 { return max(d.Milliseconds(), 1) }

// Reserve implements bruteforce.Store.
func (s *Store) Reserve(ctx context.Context, now time.Time, reqs ...bruteforce.Request) ([]bruteforce.Result, error) {
	nowMS := now.UnixMilli()
	cmds := make([]*goredis.Cmd, len(reqs))
	// EvalSha with a fallback does not fit a pipeline; the script is short.
	_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, r := range reqs {
			pol := r.Policy
			cmds[i] = reserveScript.Eval(ctx, p, []string{s.prefix + r.Key},
				nowMS, max(pol.Threshold, 1), ms(pol.BaseDelay), ms(max(pol.MaxDelay, pol.BaseDelay)), ms(pol.Window))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redis brute-force reserve: %w", err)
	}
	out := make([]bruteforce.Result, len(reqs))
	for i, c := range cmds {
		v, err := c.Int64Slice()
		if err != nil || len(v) != 5 {
			return nil, fmt.Errorf("redis brute-force reserve: unexpected answer %v: %w", c.Val(), err)
		}
		res := bruteforce.Result{Wait: time.Duration(v[2]) * time.Millisecond}
		if v[0] > 0 {
			res.Record = bruteforce.Record{Failures: int(v[0]), Last: time.UnixMilli(v[1])}
		}
		if res.Wait <= 0 {
			res.Reservation = bruteforce.Reservation{Key: reqs[i].Key, Seq: v[3]}
			if v[4] > 0 {
				res.Reservation.Prev = time.UnixMilli(v[4])
			}
		}
		out[i] = res
	}
	return out, nil
}

// Release implements bruteforce.Store.
func (s *Store) Release(ctx context.Context, release []bruteforce.Reservation, reset []string) error {
	if len(release) == 0 && len(reset) == 0 {
		return nil
	}
	_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, r := range release {
			var prev int64
			if !r.Prev.IsZero() {
				prev = r.Prev.UnixMilli()
			}
			releaseScript.Eval(ctx, p, []string{s.prefix + r.Key}, r.Seq, prev)
		}
		for _, k := range reset {
			p.Del(ctx, s.prefix+k)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis brute-force release: %w", err)
	}
	return nil
}
