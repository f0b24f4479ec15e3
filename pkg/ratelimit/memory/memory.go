// Package memory is the in-process ratelimit.Limiter of the embedded default:
// one golang.org/x/time/rate token bucket per key (a token bucket with burst b
// and rate r makes the same decisions as GCRA), held in bounded memory.
//
// Counters are per process: several Tollgate instances need ratelimit/redis to
// share them. The package starts no goroutines; idle keys are dropped as a side
// effect of Allow.
package memory

import (
	"container/list"
	"context"
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/tollgate/tollgate/pkg/ratelimit"
)

// DefaultMaxKeys bounds the keys a Limiter holds unless Options says otherwise.
const DefaultMaxKeys = 100_000

var _ ratelimit.Limiter = (*Limiter)(nil)

// Options configures a Limiter. The zero value is usable.
type Options struct {
	// Now is the clock; time.Now when nil. Tests inject a fake one.
	Now func() time.Time
	// MaxKeys bounds the keys held at once (DefaultMaxKeys when <= 0). Past
	// it the least recently used key is forgotten, which hands that key a
	// fresh burst: size it well above the number of keys active within a few
	// seconds.
	MaxKeys int
}

// Limiter is an in-process ratelimit.Limiter, safe for concurrent use.
type Limiter struct {
	now    func() time.Time
	seed   maphash.Seed
	shards []shard
	sweep  atomic.Uint64 // round-robin over shards for trimming
}

// shard is one lock's worth of keys, kept in least-recently-used order.
type shard struct {
	mu      sync.Mutex
	max     int
	entries map[string]*list.Element // of *entry
	lru     list.List                // front: most recently used
}

type entry struct {
	key    string
	limit  ratelimit.Limit
	bucket *rate.Limiter
}

// New answers a Limiter.
func New(opts Options) *Limiter {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxKeys <= 0 {
		opts.MaxKeys = DefaultMaxKeys
	}
	// Shards spread lock contention; a small bound stays in one shard, so
	// it is exact.
	n := 1
	for n < 16 && opts.MaxKeys/(n*2) >= 256 {
		n *= 2
	}
	l := &Limiter{now: opts.Now, seed: maphash.MakeSeed(), shards: make([]shard, n)}
	for i := range l.shards {
		l.shards[i].max = (opts.MaxKeys + n - 1) / n
		l.shards[i].entries = make(map[string]*list.Element)
	}
	return l
}

// Allow decides whether one more request under key fits limit now.
func (l *Limiter) Allow(_ context.Context, key string, limit ratelimit.Limit) (ratelimit.Result, error) {
	if err := limit.Validate(); err != nil {
		return ratelimit.Result{}, err
	}
	now := l.now()
	s := &l.shards[maphash.String(l.seed, key)%uint64(len(l.shards))]

	s.mu.Lock()
	res := s.allow(now, key, limit)
	s.mu.Unlock()
	l.trimAnother(now, s)
	return res, nil
}

// allow decides for key at now. s.mu is held.
func (s *shard) allow(now time.Time, key string, limit ratelimit.Limit) ratelimit.Result {
	b := s.bucket(now, key, limit)
	allowed := b.AllowN(now, 1)
	tokens := b.TokensAt(now)
	s.trim(now)

	perToken := float64(time.Second) / float64(limit.Rate)
	res := ratelimit.Result{
		Allowed:    allowed,
		Limit:      limit,
		Remaining:  max(int(math.Floor(tokens)), 0),
		ResetAfter: time.Duration(math.Ceil((float64(limit.Burst) - tokens) * perToken)),
	}
	if !allowed {
		res.RetryAfter = time.Duration(math.Ceil((1 - tokens) * perToken))
		// Rounding must never make the advice early: the bucket itself
		// has the last word on whether a token is there by then.
		for b.TokensAt(now.Add(res.RetryAfter)) < 1 {
			res.RetryAfter += time.Microsecond
		}
	}
	return res
}

// trimAnother trims the next shard in turn, unless it is busy or is done: a
// shard whose keys went quiet is still emptied by traffic on the others.
func (l *Limiter) trimAnother(now time.Time, done *shard) {
	if len(l.shards) == 1 {
		return
	}
	s := &l.shards[l.sweep.Add(1)%uint64(len(l.shards))]
	if s == done || !s.mu.TryLock() {
		return
	}
	s.trim(now)
	s.mu.Unlock()
}

// bucket answers key's bucket, made the most recently used, creating it (full)
// or moving it to limit as needed. s.mu is held.
func (s *shard) bucket(now time.Time, key string, limit ratelimit.Limit) *rate.Limiter {
	if el, ok := s.entries[key]; ok {
		s.lru.MoveToFront(el)
		e := el.Value.(*entry)
		if e.limit != limit {
			e.bucket.SetLimitAt(now, rate.Limit(limit.Rate))
			e.bucket.SetBurstAt(now, limit.Burst)
			e.limit = limit
		}
		return e.bucket
	}
	for len(s.entries) >= s.max {
		s.remove(s.lru.Back())
	}
	e := &entry{key: key, limit: limit, bucket: rate.NewLimiter(rate.Limit(limit.Rate), limit.Burst)}
	s.entries[key] = s.lru.PushFront(e)
	return e.bucket
}

// trim drops up to two least recently used keys whose buckets have refilled:
// a full bucket is the state of a key never seen, so forgetting it changes no
// decision. Doing a little on every call keeps memory proportional to the
// keys active in the last few seconds without a sweeper goroutine. s.mu is
// held.
func (s *shard) trim(now time.Time) {
	for range 2 {
		el := s.lru.Back()
		if el == nil {
			return
		}
		e := el.Value.(*entry)
		if e.bucket.TokensAt(now) < float64(e.limit.Burst) {
			return
		}
		s.remove(el)
	}
}

func (s *shard) remove(el *list.Element) {
	delete(s.entries, el.Value.(*entry).key)
	s.lru.Remove(el)
}

// Len answers how many keys the Limiter holds.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.entries)
		s.mu.Unlock()
	}
	return n
}
