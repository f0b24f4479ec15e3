// Package redis is the meter.Decider shared by every Tollgate instance: one
// Lua script, one round trip (EVALSHA, EVAL when the script is not loaded)
// per /auth/check decision. Per-second limits are GCRA timed by the Redis
// server's clock (as pkg/ratelimit/redis), quotas are integer counters per
// period, and the call's outcome is counted in the minute's hash of
// pkg/usage's layout, all in the same script.
//
// Every key a decision touches carries the hash tag of the root account
// ({a<root>}, usage.HashTag), so that on Redis Cluster they all live in one
// slot and the script may touch them together. Under the key prefix
// (Options.KeyPrefix, "tg:" in production):
//
//	r:{a<root>}:c:<credential id>:<class>     GCRA time of a credential's rate
//	r:{a<root>}:a:<account id>:<class>        GCRA time of a budget's rate
//	q:{a<root>}:c:<credential id>:<start>     cost spent of a credential's quota
//	q:{a<root>}:a:<account id>:<start>        cost spent of a budget's quota
//	u:{a<root>}:<unix minute>                 the minute's counts (usage.CountKey)
//
// <start> is the period's start in Unix seconds. Rate keys expire once their
// limit has replenished, quota keys meter.QuotaKeyGrace after their refill,
// count keys usage.CountTTL after their minute's first count.
package redis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/pkg/meter"
	"github.com/tollgate/tollgate/pkg/ratelimit"
	"github.com/tollgate/tollgate/pkg/usage"
	"github.com/tollgate/tollgate/storage"
)

// DefaultKeyPrefix is the key prefix unless Options says otherwise: the
// layout of pkg/usage (tg:u:…) and of the common key space.
const DefaultKeyPrefix = "tg:"

var (
	_ meter.Decider = (*Decider)(nil)
	_ usage.Counter = (*Decider)(nil)
)

// Options configures a Decider.
type Options struct {
	// KeyPrefix is put before every key (DefaultKeyPrefix when empty). It
	// must not hold '{' or '}', which would change the hash slot.
	KeyPrefix string
}

// Decider is a meter.Decider in Redis, safe for concurrent use.
type Decider struct {
	client goredis.UniversalClient
	prefix string
}

// New returns a Decider on client. It does not take ownership: closing the
// client is the caller's business.
func New(client goredis.UniversalClient, opts Options) *Decider {
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = DefaultKeyPrefix
	}
	return &Decider{client: client, prefix: opts.KeyPrefix}
}

// decide is the one script. KEYS: the count key, then one key per rate,
// then one per quota. ARGV: the count field without its outcome, the count
// TTL in seconds, the cost, the number of rates, the number of quotas, then
// rate and burst of each rate, then limit and expiry (Unix seconds) of each
// quota.
//
// It answers {allowed, then per rate: ok, a, b, then per quota: ok, used}:
// for an allowed rate a is the time until it is replenished after this
// call, for a refused one a is the wait before one more call fits; b is the
// time until it is fully replenished now (seconds, as strings); used is the
// cost spent in the period, this call included when it is allowed.
//
// Every limit is checked first; only when all pass are they spent. The
// outcome is counted either way.
//
// DecideLua is its body, also for a script that runs it after reads of its
// own (storage/redis.Gated, the Bearer check in one round trip): it reads
// KEYS[kb + i] and ARGV[ab + i] where the decision script reads KEYS[i]
// and ARGV[i], kb and ab being locals the enclosing script sets (0 here),
// and returns the same table.
const DecideLua = `
local cost = tonumber(ARGV[ab + 3])
local nr = tonumber(ARGV[ab + 4])
local nq = tonumber(ARGV[ab + 5])
local out = {1}
local ok = true
local quota_ok = true
local now = 0
if nr > 0 then
  -- seconds since 2017 with microseconds, as redis_rate: exact enough in a
  -- double until 2048
  local t = redis.call("TIME")
  now = (t[1] - 1483228800) + (t[2] / 1000000)
end
local tats = {}
for i = 1, nr do
  local rate = tonumber(ARGV[ab + 4 + 2 * i])
  local burst = tonumber(ARGV[ab + 5 + 2 * i])
  local interval = 1 / rate
  local tat = tonumber(redis.call("GET", KEYS[kb + 1 + i]) or now)
  tat = math.max(tat, now)
  local new_tat = tat + interval
  local diff = now - (new_tat - interval * burst)
  if diff < 0 then
    ok = false
    out[#out + 1] = 0
    out[#out + 1] = tostring(-diff)
    out[#out + 1] = tostring(tat - now)
  else
    tats[i] = new_tat
    out[#out + 1] = 1
    out[#out + 1] = tostring(new_tat - now)
    out[#out + 1] = tostring(new_tat - now)
  end
end
local base = 5 + 2 * nr
local used = {}
for j = 1, nq do
  local limit = tonumber(ARGV[ab + base + 2 * j - 1])
  used[j] = tonumber(redis.call("GET", KEYS[kb + 1 + nr + j]) or "0")
  if used[j] + cost > limit then
    ok = false
    quota_ok = false
    out[#out + 1] = 0
  else
    out[#out + 1] = 1
  end
  out[#out + 1] = used[j]
end
local outcome = "allowed"
if ok then
  for i = 1, nr do
    redis.call("SET", KEYS[kb + 1 + i], tostring(tats[i]), "PX", math.max(1, math.ceil((tats[i] - now) * 1000)))
  end
  for j = 1, nq do
    local v = redis.call("INCRBY", KEYS[kb + 1 + nr + j], cost)
    if v == cost then
      redis.call("EXPIREAT", KEYS[kb + 1 + nr + j], ARGV[ab + base + 2 * j])
    end
    out[3 * nr + 2 * j + 1] = v
  end
elseif quota_ok then
  outcome = "rate_limited"
  out[1] = 0
else
  outcome = "quota_exceeded"
  out[1] = 0
end
if redis.call("HINCRBY", KEYS[kb + 1], ARGV[ab + 1] .. outcome, 1) == 1 and redis.call("TTL", KEYS[kb + 1]) < 0 then
  redis.call("EXPIRE", KEYS[kb + 1], ARGV[ab + 2])
end
return out
`

var decide = goredis.NewScript("local kb, ab = 0, 0\n" + DecideLua)

// countKey is the Redis key of root's counts of minute: usage.CountKey's
// layout under the prefix.
func (d *Decider) countKey(root int64, minute time.Time) string {
	return d.prefix + "u:" + usage.HashTag(root) + ":" + strconv.FormatInt(minute.Unix()/60, 10)
}

// rateKey is the key of a credential's rate (accountID 0) or a budget's.
func (d *Decider) rateKey(root, credentialID, accountID int64, class string) string {
	return d.prefix + "r:" + usage.HashTag(root) + holder(credentialID, accountID) + ":" + class
}

// QuotaKey is the key of the counter of a credential's quota (h names a
// credential) or of a budget's (h names an account) for the period holding
// now, under prefix: the layout the decision script writes.
func QuotaKey(prefix string, root int64, h meter.Holder, q storage.Quota, now time.Time) string {
	start, _ := q.Start(now)
	return prefix + "q:" + usage.HashTag(root) + holder(h.CredentialID, h.AccountID) + ":" + strconv.FormatInt(start.Unix(), 10)
}

func holder(credentialID, accountID int64) string {
	if accountID != 0 {
		return ":a:" + strconv.FormatInt(accountID, 10)
	}
	return ":c:" + strconv.FormatInt(credentialID, 10)
}

// Decide implements meter.Decider in one round trip.
func (d *Decider) Decide(ctx context.Context, req meter.Request) (meter.Decision, error) {
	p, err := d.Plan(req)
	if err != nil {
		return meter.Decision{}, err
	}
	vals, err := decide.Run(ctx, d.client, p.Keys, p.Args...).Slice()
	if err != nil {
		return meter.Decision{}, fmt.Errorf("redis meter: %w", err)
	}
	return p.Decision(vals)
}

// Plan is a decision made ready for a script that runs DecideLua: its keys
// and arguments, and how to read its answer. Every key carries the hash
// tag of the request's root account.
type Plan struct {
	Keys   []string
	Args   []any
	req    meter.Request
	limits []meter.Limit
	rates  []meter.Limit
	quotas []meter.Limit
}

// Plan returns the keys and arguments of req's decision, or an error
// wrapping meter.ErrInvalidRequest.
func (d *Decider) Plan(req meter.Request) (*Plan, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	limits := meter.Limits(req)
	keys := make([]string, 1, 1+len(limits))
	keys[0] = d.countKey(req.Root, req.Now)
	var rates, quotas []meter.Limit
	for _, l := range limits {
		if l.Kind == meter.KindRate {
			rates = append(rates, l)
		} else {
			quotas = append(quotas, l)
		}
	}
	args := make([]any, 0, 5+2*len(limits))
	args = append(args, usage.CountField(req.CredentialID, req.Class, ""), int64(usage.CountTTL/time.Second), req.Cost, len(rates), len(quotas))
	for _, l := range rates {
		keys = append(keys, d.rateKey(req.Root, req.CredentialID, l.AccountID, l.Class))
		args = append(args, l.Rate.Rate, l.Rate.Burst)
	}
	for _, l := range quotas {
		keys = append(keys, QuotaKey(d.prefix, req.Root, meter.Holder{CredentialID: req.CredentialID, AccountID: l.AccountID}, l.Quota, req.Now))
		args = append(args, l.Quota.Limit, meter.QuotaExpiry(l.Quota, req.Now).Unix())
	}
	return &Plan{Keys: keys, Args: args, req: req, limits: limits, rates: rates, quotas: quotas}, nil
}

// Decision reads the table DecideLua returned.
func (p *Plan) Decision(vals []any) (meter.Decision, error) {
	rates, quotas := p.rates, p.quotas
	if len(vals) != 1+3*len(rates)+2*len(quotas) {
		return meter.Decision{}, fmt.Errorf("redis meter: %d values from the script", len(vals))
	}
	checks := make([]meter.Check, 0, len(p.limits))
	for i, l := range rates {
		v := vals[1+3*i : 4+3*i]
		a, b := seconds(v[1]), seconds(v[2])
		c := meter.Check{Limit: l, Allowed: v[0] == int64(1), ResetAfter: b}
		if c.Allowed {
			c.Remaining = int64(remaining(l.Rate, a))
		} else {
			c.RetryAfter = a
		}
		checks = append(checks, c)
	}
	for j, l := range quotas {
		v := vals[1+3*len(rates)+2*j:]
		used, _ := v[1].(int64)
		c := meter.QuotaCheck(l, v[0] == int64(1), used, p.req.Now)
		checks = append(checks, c)
	}
	return meter.Finish(p.req, reorder(p.limits, checks)), nil
}

// reorder puts checks (rates first, then quotas) in the order of limits.
func reorder(limits []meter.Limit, checks []meter.Check) []meter.Check {
	out := make([]meter.Check, 0, len(limits))
	ri, qi := 0, 0
	nr := 0
	for _, l := range limits {
		if l.Kind == meter.KindRate {
			nr++
		}
	}
	for _, l := range limits {
		if l.Kind == meter.KindRate {
			out = append(out, checks[ri])
			ri++
		} else {
			out = append(out, checks[nr+qi])
			qi++
		}
	}
	return out
}

// seconds reads a number of seconds the script answered as a string.
func seconds(v any) time.Duration {
	s, _ := v.(string)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 || math.IsNaN(f) {
		return 0
	}
	return time.Duration(f * float64(time.Second))
}

// remaining answers the calls left after an allowed one from the time
// until the limit is replenished, with a thousandth of a call of tolerance
// for the float noise of the server's clock (as pkg/ratelimit/redis).
func remaining(limit ratelimit.Limit, resetAfter time.Duration) int {
	used := resetAfter.Seconds() * float64(limit.Rate)
	left := int(math.Floor(float64(limit.Burst) - used + 1e-3))
	return min(max(left, 0), limit.Burst-1)
}

// Spent implements meter.Decider: one GET.
func (d *Decider) Spent(ctx context.Context, root int64, h meter.Holder, q storage.Quota, now time.Time) (int64, error) {
	n, err := d.client.Get(ctx, QuotaKey(d.prefix, root, h, q, now)).Int64()
	if errors.Is(err, goredis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("redis meter: %w", err)
	}
	return n, nil
}

// Add implements usage.Counter for the calls refused before a decision
// (a wrong secret, a scope or account refusal): one HINCRBY, and the TTL
// when the minute's key has none yet, in one round trip.
func (d *Decider) Add(ctx context.Context, root int64, c usage.Count) error {
	if c.N <= 0 {
		return nil
	}
	key := d.countKey(root, c.Minute)
	_, err := count.Run(ctx, d.client, []string{key}, usage.CountField(c.CredentialID, c.Class, c.Outcome), c.N, int64(usage.CountTTL/time.Second)).Result()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return fmt.Errorf("redis usage count: %w", err)
	}
	return nil
}

var count = goredis.NewScript(`
if redis.call("HINCRBY", KEYS[1], ARGV[1], ARGV[2]) == tonumber(ARGV[2]) and redis.call("TTL", KEYS[1]) < 0 then
  redis.call("EXPIRE", KEYS[1], ARGV[3])
end
return 1
`)
