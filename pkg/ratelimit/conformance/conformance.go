// Package conformance is the test suite every ratelimit.Limiter backend must
// pass, so the in-process limiter and the Redis one make the same decisions.
// A backend's test calls Run with a constructor; the suite owns the cases.
//
// A backend on real time (Redis) cannot be given a fake clock: its decisions
// run on the server's clock. Limits are chosen so that every "the next
// request comes before the bucket refills" step has at least half a second
// of room, a stall a loaded CI machine does not reach between two round
// trips; the sleeps this costs run in parallel subtests, about 3 s of wall
// time per backend.
package conformance

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/ratelimit"
)

// Clock is the time a Limiter under test runs on.
type Clock interface {
	// Now answers the current time.
	Now() time.Time
	// Advance lets at least d pass for the Limiter.
	Advance(d time.Duration)
}

// FakeClock is a Clock that moves only when told to. Its Now is the function
// to inject into a Limiter. The zero value starts at a fixed instant.
type FakeClock struct {
	mu  sync.Mutex
	now time.Time
}

var start = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// Now answers the fake time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now.IsZero() {
		c.now = start
	}
	return c.now
}

// Advance moves the fake time forward by d.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now.IsZero() {
		c.now = start
	}
	c.now = c.now.Add(d)
}

// RealClock is the wall clock: Advance sleeps.
type RealClock struct{}

// Now answers time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// Advance sleeps for d.
func (RealClock) Advance(d time.Duration) { time.Sleep(d) }

// slack is how far a Limiter on real time may see elapsed time differ from
// what the test measured: Redis stores times with ~10µs precision and the
// server's clock is read inside the round trip. It does not have to absorb
// a loaded machine: every bound that depends on time passing is computed
// from the elapsed time the test measured, and the refill windows are wide.
const slack = 5 * time.Millisecond

// Run runs the suite. newLimiter answers a Limiter whose keys start fresh,
// and the clock it runs on.
func Run(t *testing.T, newLimiter func(t *testing.T) (ratelimit.Limiter, Clock)) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, l ratelimit.Limiter, c Clock)
	}{
		{"BurstThenDeny", testBurstThenDeny},
		{"RemainingCountsDown", testRemainingCountsDown},
		{"RetryAfter", testRetryAfter},
		{"RefillsAtRate", testRefillsAtRate},
		{"ResetAfter", testResetAfter},
		{"KeysAreIndependent", testKeysAreIndependent},
		{"DifferentLimitsOnDifferentKeys", testDifferentLimits},
		{"LimitChangesOnAKey", testLimitChanges},
		{"InvalidLimit", testInvalidLimit},
		{"Concurrent", testConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, c := newLimiter(t)
			tt.run(t, l, c)
		})
	}
}

func allow(t *testing.T, l ratelimit.Limiter, key string, limit ratelimit.Limit) ratelimit.Result {
	t.Helper()
	res, err := l.Allow(t.Context(), key, limit)
	if err != nil {
		t.Fatalf("Allow(%q, %+v): %v", key, limit, err)
	}
	if res.Limit != limit {
		t.Errorf("Allow(%q): got Limit %+v, want %+v", key, res.Limit, limit)
	}
	if res.Allowed && res.RetryAfter != 0 {
		t.Errorf("Allow(%q): allowed with RetryAfter %v, want 0", key, res.RetryAfter)
	}
	if !res.Allowed && res.Remaining != 0 {
		t.Errorf("Allow(%q): denied with Remaining %d, want 0", key, res.Remaining)
	}
	if res.Remaining < 0 || res.Remaining > limit.Burst {
		t.Errorf("Allow(%q): got Remaining %d, want within [0, %d]", key, res.Remaining, limit.Burst)
	}
	return res
}

func isFake(c Clock) bool {
	_, ok := c.(*FakeClock)
	return ok
}

// A slow rate keeps real time from refilling the bucket mid-test.
var slow = ratelimit.Limit{Rate: 1, Burst: 5}

func testBurstThenDeny(t *testing.T, l ratelimit.Limiter, c Clock) {
	began := c.Now()
	for i := range slow.Burst {
		if res := allow(t, l, "k", slow); !res.Allowed {
			t.Fatalf("request %d of burst %d: got denied, want allowed", i+1, slow.Burst)
		}
	}
	for i := range 3 {
		res := allow(t, l, "k", slow)
		// Allowed only if a refill (1 s) could have come since the burst
		// began, by the time measured.
		if elapsed := c.Now().Sub(began); res.Allowed && elapsed < time.Second/time.Duration(slow.Rate) {
			t.Fatalf("request %d past burst, %v after the first: got allowed, want denied", i+1, elapsed)
		}
		if res.Allowed {
			continue
		}
		if res.RetryAfter <= 0 {
			t.Errorf("request %d past burst: got RetryAfter %v, want > 0", i+1, res.RetryAfter)
		}
	}
}

func testRemainingCountsDown(t *testing.T, l ratelimit.Limiter, _ Clock) {
	for want := slow.Burst - 1; want >= 0; want-- {
		res := allow(t, l, "k", slow)
		if !res.Allowed || res.Remaining != want {
			t.Fatalf("got allowed %v, remaining %d; want allowed, remaining %d", res.Allowed, res.Remaining, want)
		}
	}
	if res := allow(t, l, "k", slow); res.Allowed || res.Remaining != 0 {
		t.Fatalf("past burst: got allowed %v, remaining %d; want denied, remaining 0", res.Allowed, res.Remaining)
	}
}

// fast refills one request every 500ms: short enough that a real clock waits
// little, long enough that the denial expected right after the burst does
// not depend on the three round trips taking under 50ms, as it did at
// 20/s on a loaded machine.
var fast = ratelimit.Limit{Rate: 2, Burst: 2}

func testRetryAfter(t *testing.T, l ratelimit.Limiter, c Clock) {
	interval := time.Second / time.Duration(fast.Rate)
	began := c.Now()
	for range fast.Burst {
		allow(t, l, "k", fast)
	}
	res := allow(t, l, "k", fast)
	elapsed := c.Now().Sub(began)
	if res.Allowed {
		t.Fatal("past burst: got allowed, want denied")
	}
	// One request's worth of time, less what passed since the burst began.
	lo, hi := interval-elapsed-slack, interval+slack
	if isFake(c) {
		lo, hi = interval, interval+time.Microsecond
	}
	if res.RetryAfter < lo || res.RetryAfter > hi {
		t.Errorf("got RetryAfter %v, want within [%v, %v] (1/rate = %v)", res.RetryAfter, lo, hi, interval)
	}

	if isFake(c) {
		// Just before RetryAfter it is still too early.
		c.Advance(res.RetryAfter - time.Millisecond)
		early := allow(t, l, "k", fast)
		if early.Allowed {
			t.Fatalf("1ms before RetryAfter: got allowed, want denied")
		}
		if early.RetryAfter <= 0 || early.RetryAfter > time.Millisecond+time.Microsecond {
			t.Errorf("1ms before RetryAfter: got RetryAfter %v, want about 1ms", early.RetryAfter)
		}
		res = early
	}
	c.Advance(res.RetryAfter + retryMargin(c))
	if res := allow(t, l, "k", fast); !res.Allowed {
		t.Fatalf("after RetryAfter: got denied (RetryAfter %v), want allowed", res.RetryAfter)
	}
	if res := allow(t, l, "k", fast); res.Allowed {
		t.Fatal("second request after RetryAfter: got allowed, want denied")
	}
}

// retryMargin is what a test adds to RetryAfter before expecting a request to
// pass: nothing on a fake clock, whose Limiter must be exact.
func retryMargin(c Clock) time.Duration {
	if isFake(c) {
		return 0
	}
	return slack
}

func testRefillsAtRate(t *testing.T, l ratelimit.Limiter, c Clock) {
	// 500ms per request: see fast.
	limit := ratelimit.Limit{Rate: 2, Burst: 1}
	if res := allow(t, l, "k", limit); !res.Allowed {
		t.Fatal("first request: got denied, want allowed")
	}
	// Two intervals refill a burst of one only once: bursts never exceed Burst.
	c.Advance(2*time.Second/time.Duration(limit.Rate) + retryMargin(c))
	if res := allow(t, l, "k", limit); !res.Allowed {
		t.Fatal("after two intervals: got denied, want allowed")
	}
	if res := allow(t, l, "k", limit); res.Allowed {
		t.Fatal("second request after two intervals: got allowed, want denied (burst is 1)")
	}
}

func testResetAfter(t *testing.T, l ratelimit.Limiter, c Clock) {
	// 500ms per request: the five calls below must come within one
	// interval (see fast).
	limit := ratelimit.Limit{Rate: 2, Burst: 4}
	interval := time.Second / time.Duration(limit.Rate)
	tol := time.Duration(0)
	if !isFake(c) {
		tol = slack
	}
	began := c.Now()
	for used := 1; used <= limit.Burst; used++ {
		res := allow(t, l, "k", limit)
		// used requests take used intervals to replenish.
		want := time.Duration(used) * interval
		lo := want - c.Now().Sub(began) - tol
		if res.ResetAfter < lo || res.ResetAfter > want+tol {
			t.Errorf("after %d requests: got ResetAfter %v, want within [%v, %v]", used, res.ResetAfter, lo, want+tol)
		}
	}
	res := allow(t, l, "k", limit)
	if res.Allowed {
		t.Fatal("past burst: got allowed, want denied")
	}
	if want := time.Duration(limit.Burst) * interval; res.ResetAfter > want+tol || res.ResetAfter < want-c.Now().Sub(began)-tol {
		t.Errorf("denied: got ResetAfter %v, want about %v", res.ResetAfter, want)
	}
	if res.ResetAfter < res.RetryAfter {
		t.Errorf("denied: got ResetAfter %v before RetryAfter %v", res.ResetAfter, res.RetryAfter)
	}
	// Once ResetAfter has passed, the whole burst is there again.
	c.Advance(res.ResetAfter + retryMargin(c))
	res = allow(t, l, "k", limit)
	if !res.Allowed || res.Remaining != limit.Burst-1 {
		t.Errorf("after ResetAfter: got allowed %v, remaining %d; want allowed, remaining %d",
			res.Allowed, res.Remaining, limit.Burst-1)
	}
}

func testKeysAreIndependent(t *testing.T, l ratelimit.Limiter, _ Clock) {
	limit := ratelimit.Limit{Rate: 1, Burst: 2}
	for range limit.Burst {
		allow(t, l, "client-a:default", limit)
	}
	if res := allow(t, l, "client-a:default", limit); res.Allowed {
		t.Fatal("client-a past burst: got allowed, want denied")
	}
	for _, key := range []string{"client-b:default", "client-a:reports", "client-a:default:x", "client-"} {
		if res := allow(t, l, key, limit); !res.Allowed || res.Remaining != limit.Burst-1 {
			t.Errorf("%s after client-a was exhausted: got allowed %v, remaining %d; want allowed, remaining %d",
				key, res.Allowed, res.Remaining, limit.Burst-1)
		}
	}
}

func testDifferentLimits(t *testing.T, l ratelimit.Limiter, c Clock) {
	tests := []struct {
		key   string
		limit ratelimit.Limit
	}{
		{"c:reports", ratelimit.Limit{Rate: 1, Burst: 1}},
		{"c:default", ratelimit.Limit{Rate: 3, Burst: 3}},
		{"c:override", ratelimit.Limit{Rate: 1, Burst: 7}},
	}
	// Interleaved, so one key's limit cannot leak into another's.
	allowed := make([]int, len(tests))
	began := c.Now()
	for range 10 {
		for i, tt := range tests {
			if allow(t, l, tt.key, tt.limit).Allowed {
				allowed[i]++
			}
		}
	}
	// On a real clock, what refilled while the 30 calls ran is allowed too:
	// counted from the elapsed time measured, not assumed to be none.
	elapsed := c.Now().Sub(began)
	for i, tt := range tests {
		hi := min(tt.limit.Burst+int(elapsed.Seconds()*float64(tt.limit.Rate)), 10)
		if allowed[i] < tt.limit.Burst || allowed[i] > hi {
			t.Errorf("%s with %+v: got %d allowed of 10 in %v, want within [%d, %d]", tt.key, tt.limit, allowed[i], elapsed, tt.limit.Burst, hi)
		}
	}
}

// A key whose limit changes (an override set through the management API) is
// held to the new one from then on. Right after a raise, backends may differ:
// GCRA (Redis) counts the requests already made against the new burst, a
// token bucket (memory) keeps the tokens it had; neither may exceed the new
// burst.
func testLimitChanges(t *testing.T, l ratelimit.Limiter, c Clock) {
	// 500ms per request (see fast).
	small := ratelimit.Limit{Rate: 2, Burst: 2}
	large := ratelimit.Limit{Rate: 2, Burst: 5}
	for range small.Burst {
		allow(t, l, "k", small)
	}
	if res := allow(t, l, "k", small); res.Allowed {
		t.Fatal("past small burst: got allowed, want denied")
	}
	got := 0
	var res ratelimit.Result
	for range large.Burst {
		if res = allow(t, l, "k", large); res.Allowed {
			got++
		}
	}
	if want := large.Burst - small.Burst; got > want {
		t.Errorf("after raising the burst to %d: got %d more allowed, want at most %d", large.Burst, got, want)
	}

	// Replenished under the new limit, the new burst is there in full.
	c.Advance(res.ResetAfter + retryMargin(c))
	for i := range large.Burst {
		if res := allow(t, l, "k", large); !res.Allowed {
			t.Fatalf("request %d of raised burst %d: got denied, want allowed", i+1, large.Burst)
		}
	}
	// And lowered again, the key is over it.
	if res := allow(t, l, "k", small); res.Allowed {
		t.Error("after lowering the burst below what was used: got allowed, want denied")
	}
}

func testInvalidLimit(t *testing.T, l ratelimit.Limiter, _ Clock) {
	for _, limit := range []ratelimit.Limit{{}, {Rate: 0, Burst: 1}, {Rate: 1, Burst: 0}, {Rate: -1, Burst: -1}} {
		res, err := l.Allow(t.Context(), "k", limit)
		if err == nil {
			t.Errorf("%+v: got no error, want one", limit)
		}
		if res.Allowed {
			t.Errorf("%+v: got allowed with error %v", limit, err)
		}
	}
}

func testConcurrent(t *testing.T, l ratelimit.Limiter, c Clock) {
	const goroutines, perGoroutine = 50, 8
	limit := ratelimit.Limit{Rate: 20, Burst: 10}
	var allowed, denied atomic.Int64
	errs := make(chan error, goroutines)
	began := c.Now()
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range perGoroutine {
				res, err := l.Allow(t.Context(), "shared", limit)
				if err != nil {
					errs <- err
					return
				}
				if res.Allowed {
					allowed.Add(1)
				} else {
					denied.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := c.Now().Sub(began)
	close(errs)
	for err := range errs {
		t.Fatalf("Allow: %v", err)
	}
	limitMax := int64(limit.Burst) + int64(elapsed.Seconds()*float64(limit.Rate)) + 1
	if got := allowed.Load(); got < int64(limit.Burst) || got > limitMax {
		t.Errorf("%d requests in %v: got %d allowed, want within [%d, %d]",
			goroutines*perGoroutine, elapsed, got, limit.Burst, limitMax)
	}
	if got := allowed.Load() + denied.Load(); got != goroutines*perGoroutine {
		t.Errorf("got %d decisions, want %d", got, goroutines*perGoroutine)
	}
	if isFake(c) && allowed.Load() != int64(limit.Burst) {
		t.Errorf("fake clock, no time passed: got %d allowed, want exactly %d", allowed.Load(), limit.Burst)
	}
}
