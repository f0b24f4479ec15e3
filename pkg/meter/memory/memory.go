// Package memory is the in-process meter.Decider of the embedded default:
// the same decisions as meter/redis (GCRA for per-second limits, integer
// counters per quota period, all checked before any is spent), under one
// lock, with the outcomes counted into a usage.Counter (pkg/usage/memory's
// in-process counts on the embedded default).
//
// State is per process: several Tollgate instances need meter/redis to
// share it. No goroutine: expired state is dropped as a side effect of
// Decide.
package memory

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/tollgate/tollgate/pkg/meter"
	"github.com/tollgate/tollgate/pkg/ratelimit"
	"github.com/tollgate/tollgate/pkg/usage"
	"github.com/tollgate/tollgate/storage"
)

var _ meter.Decider = (*Decider)(nil)

// sweepEvery is how many decisions pass between two sweeps of expired
// state.
const sweepEvery = 4096

// Options configure a Decider.
type Options struct {
	// Counter receives the count of every decision's outcome; nil counts
	// nothing.
	Counter usage.Counter
	// Now is the clock of the per-second limits (the request's Now chooses
	// the minute and the quota periods); time.Now when nil.
	Now func() time.Time
}

type quota struct {
	used    int64
	expires time.Time
}

// Decider is an in-process meter.Decider, safe for concurrent use.
type Decider struct {
	counter usage.Counter
	now     func() time.Time

	mu     sync.Mutex
	tats   map[string]time.Time // GCRA theoretical arrival times
	quotas map[string]quota
	calls  int
}

// New returns a Decider.
func New(opts Options) *Decider {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Decider{counter: opts.Counter, now: opts.Now, tats: make(map[string]time.Time), quotas: make(map[string]quota)}
}

func holder(credentialID, accountID int64) string {
	if accountID != 0 {
		return "a:" + strconv.FormatInt(accountID, 10)
	}
	return "c:" + strconv.FormatInt(credentialID, 10)
}

func rateKey(root, credentialID int64, l meter.Limit) string {
	return strconv.FormatInt(root, 10) + ":" + holder(credentialID, l.AccountID) + ":" + l.Class
}

func quotaKey(root int64, h meter.Holder, q storage.Quota, now time.Time) string {
	start, _ := q.Start(now)
	return strconv.FormatInt(root, 10) + ":" + holder(h.CredentialID, h.AccountID) + ":" + strconv.FormatInt(start.Unix(), 10)
}

// Decide implements meter.Decider.
func (d *Decider) Decide(ctx context.Context, req meter.Request) (meter.Decision, error) {
	if err := req.Validate(); err != nil {
		return meter.Decision{}, err
	}
	limits := meter.Limits(req)
	checks := make([]meter.Check, len(limits))
	keys := make([]string, len(limits))
	tats := make([]time.Time, len(limits))

	d.mu.Lock()
	now := d.now()
	ok := true
	for i, l := range limits {
		if l.Kind == meter.KindRate {
			keys[i] = rateKey(req.Root, req.CredentialID, l)
			checks[i], tats[i] = gcra(l, d.tats[keys[i]], now)
		} else {
			keys[i] = quotaKey(req.Root, meter.Holder{CredentialID: req.CredentialID, AccountID: l.AccountID}, l.Quota, req.Now)
			q := d.quotas[keys[i]]
			if !q.expires.IsZero() && !req.Now.Before(q.expires) {
				q.used = 0
			}
			checks[i] = meter.QuotaCheck(l, q.used+req.Cost <= l.Quota.Limit, q.used, req.Now)
		}
		ok = ok && checks[i].Allowed
	}
	if ok {
		for i, l := range limits {
			if l.Kind == meter.KindRate {
				d.tats[keys[i]] = tats[i]
				continue
			}
			q := d.quotas[keys[i]]
			if q.expires.IsZero() || !req.Now.Before(q.expires) {
				q = quota{expires: meter.QuotaExpiry(l.Quota, req.Now)}
			}
			q.used += req.Cost
			d.quotas[keys[i]] = q
			checks[i] = meter.QuotaCheck(l, true, q.used, req.Now)
		}
	}
	d.sweepLocked(now, req.Now)
	d.mu.Unlock()

	dec := meter.Finish(req, checks)
	if d.counter != nil {
		minute := req.Now.UTC().Truncate(time.Minute)
		if err := d.counter.Add(ctx, req.Root, usage.Count{Minute: minute, CredentialID: req.CredentialID, Class: req.Class, Outcome: dec.Outcome, N: 1}); err != nil {
			return meter.Decision{}, fmt.Errorf("memory meter: count: %w", err)
		}
	}
	return dec, nil
}

// gcra checks a per-second limit whose theoretical arrival time is tat
// (zero: never seen) at now, as the Redis script does: the check, and the
// arrival time to store if the call is let through.
func gcra(l meter.Limit, tat, now time.Time) (meter.Check, time.Time) {
	interval := time.Second / time.Duration(l.Rate.Rate)
	if tat.Before(now) {
		tat = now
	}
	newTat := tat.Add(interval)
	diff := now.Sub(newTat.Add(-interval * time.Duration(l.Rate.Burst)))
	if diff < 0 {
		return meter.Check{Limit: l, RetryAfter: -diff, ResetAfter: tat.Sub(now)}, tat
	}
	reset := newTat.Sub(now)
	return meter.Check{Limit: l, Allowed: true, Remaining: int64(remaining(l.Rate, reset)), ResetAfter: reset}, newTat
}

func remaining(limit ratelimit.Limit, resetAfter time.Duration) int {
	used := resetAfter.Seconds() * float64(limit.Rate)
	left := int(math.Floor(float64(limit.Burst) - used + 1e-3))
	return min(max(left, 0), limit.Burst-1)
}

// sweepLocked drops, every sweepEvery decisions, the rates fully
// replenished (the state of a key never seen) and the quotas expired.
// d.mu is held.
func (d *Decider) sweepLocked(now, wall time.Time) {
	if d.calls++; d.calls < sweepEvery {
		return
	}
	d.calls = 0
	for k, tat := range d.tats {
		if !tat.After(now) {
			delete(d.tats, k)
		}
	}
	for k, q := range d.quotas {
		if !wall.Before(q.expires) {
			delete(d.quotas, k)
		}
	}
}

// Spent implements meter.Decider.
func (d *Decider) Spent(_ context.Context, root int64, h meter.Holder, q storage.Quota, now time.Time) (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.quotas[quotaKey(root, h, q, now)]
	if !ok || !now.Before(e.expires) {
		return 0, nil
	}
	return e.used, nil
}

// Len answers how many rate and quota states the Decider holds.
func (d *Decider) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.tats) + len(d.quotas)
}
