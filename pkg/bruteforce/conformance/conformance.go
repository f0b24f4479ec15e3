// Package conformance is the test suite every bruteforce.Store backend must
// pass, so the in-process store and the Redis one count alike. A backend's
// test calls Run with a constructor; the suite owns the cases.
//
// Only expiry needs time to pass; the suite lets the backend's clock advance
// by a few hundred milliseconds, so a backend on real time (Redis) sleeps
// briefly. Every other case passes explicit times to Reserve.
package conformance

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/bruteforce"
)

// Clock is the time a Store under test expires keys by.
type Clock interface {
	// Now answers the current time.
	Now() time.Time
	// Advance lets at least d pass for the Store.
	Advance(d time.Duration)
}

// FakeClock is a Clock that moves only when told to. Its Now is the function
// to inject into a Store. The zero value starts at a fixed instant.
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

// Run runs the suite. newStore answers a Store whose keys start fresh, and
// the clock it expires keys by.
func Run(t *testing.T, newStore func(t *testing.T) (bruteforce.Store, Clock)) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, s bruteforce.Store, c Clock)
	}{
		{"UnknownKeyIsZero", testUnknownKeyIsZero},
		{"ReserveCounts", testReserveCounts},
		{"HoldsBack", testHoldsBack},
		{"KeysAreIndependent", testKeysAreIndependent},
		{"ReleaseTakesBack", testReleaseTakesBack},
		{"ReleaseOfOlderReservation", testReleaseOfOlderReservation},
		{"ReleaseToZeroForgets", testReleaseToZeroForgets},
		{"ResetForgets", testResetForgets},
		{"QuietWindowStartsOver", testQuietWindowStartsOver},
		{"KeysExpire", testKeysExpire},
		{"Concurrent", testConcurrent},
		{"ConcurrentStopAtThreshold", testConcurrentStopAtThreshold},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, c := newStore(t)
			tt.run(t, s, c)
		})
	}
}

const hour = time.Hour

// loose never holds back within the tests.
var loose = bruteforce.Policy{Threshold: 1_000_000, BaseDelay: time.Second, MaxDelay: time.Minute, Window: hour}

func get(t *testing.T, s bruteforce.Store, keys ...string) []bruteforce.Record {
	t.Helper()
	recs, err := s.Get(t.Context(), keys...)
	if err != nil {
		t.Fatalf("Get(%q): %v", keys, err)
	}
	if len(recs) != len(keys) {
		t.Fatalf("Get(%q): got %d records, want %d", keys, len(recs), len(keys))
	}
	return recs
}

// reserve reserves keys under p at now.
func reserve(t *testing.T, s bruteforce.Store, now time.Time, p bruteforce.Policy, keys ...string) []bruteforce.Result {
	t.Helper()
	reqs := make([]bruteforce.Request, len(keys))
	for i, k := range keys {
		reqs[i] = bruteforce.Request{Key: k, Policy: p}
	}
	res, err := s.Reserve(t.Context(), now, reqs...)
	if err != nil {
		t.Fatalf("Reserve(%q): %v", keys, err)
	}
	if len(res) != len(keys) {
		t.Fatalf("Reserve(%q): got %d results, want %d", keys, len(res), len(keys))
	}
	return res
}

func release(t *testing.T, s bruteforce.Store, rs []bruteforce.Reservation, reset ...string) {
	t.Helper()
	if err := s.Release(t.Context(), rs, reset); err != nil {
		t.Fatalf("Release: %v", err)
	}
}

func wantRecord(t *testing.T, what string, got bruteforce.Record, failures int, last time.Time) {
	t.Helper()
	if got.Failures != failures {
		t.Errorf("%s: got %d failures, want %d", what, got.Failures, failures)
	}
	if failures > 0 && got.Last.UnixMilli() != last.UnixMilli() {
		t.Errorf("%s: got last failure %v, want %v (to the millisecond)", what, got.Last, last)
	}
}

// wantCounted checks a result that counted, to failures at now.
func wantCounted(t *testing.T, what string, got bruteforce.Result, key string, failures int, now time.Time) {
	t.Helper()
	if got.Wait != 0 {
		t.Errorf("%s: got held back for %v, want counted", what, got.Wait)
	}
	if got.Reservation.Key != key {
		t.Errorf("%s: got reservation of %q, want %q", what, got.Reservation.Key, key)
	}
	wantRecord(t, what, got.Record, failures, now)
}

func testUnknownKeyIsZero(t *testing.T, s bruteforce.Store, _ Clock) {
	for i, r := range get(t, s, "nobody", "nowhere") {
		if r != (bruteforce.Record{}) {
			t.Errorf("record %d of unknown keys: got %+v, want zero", i, r)
		}
	}
	release(t, s, []bruteforce.Reservation{{Key: "nobody", Seq: 1}}, "nowhere")
	release(t, s, nil)
	if r := get(t, s, "nobody")[0]; r != (bruteforce.Record{}) {
		t.Errorf("unknown key after a release: got %+v, want zero", r)
	}
}

func testReserveCounts(t *testing.T, s bruteforce.Store, c Clock) {
	now := c.Now()
	for i := 1; i <= 4; i++ {
		at := now.Add(time.Duration(i) * time.Second)
		res := reserve(t, s, at, loose, "id:1", "src:1")
		wantCounted(t, fmt.Sprintf("Reserve %d, id", i), res[0], "id:1", i, at)
		wantCounted(t, fmt.Sprintf("Reserve %d, source", i), res[1], "src:1", i, at)
	}
	recs := get(t, s, "id:1", "src:1")
	wantRecord(t, "Get id", recs[0], 4, now.Add(4*time.Second))
	wantRecord(t, "Get source", recs[1], 4, now.Add(4*time.Second))
}

// Past the threshold a key holds back for Policy.Wait and counts nothing;
// once the back-off has passed one more attempt counts.
func testHoldsBack(t *testing.T, s bruteforce.Store, c Clock) {
	p := bruteforce.Policy{Threshold: 3, BaseDelay: time.Second, MaxDelay: 4 * time.Second, Window: hour}
	now := c.Now()
	for i := 1; i <= 3; i++ {
		wantCounted(t, fmt.Sprintf("reservation %d", i), reserve(t, s, now, p, "k")[0], "k", i, now)
	}
	for i, want := range []time.Duration{1, 2, 4, 4, 4} {
		want *= time.Second
		half := now.Add(want / 2)
		res := reserve(t, s, half, p, "k")[0]
		if res.Wait != want/2 {
			t.Fatalf("after failure %d, half-way: got wait %v, want %v", 3+i, res.Wait, want/2)
		}
		wantRecord(t, "held back", res.Record, 3+i, now)
		wantRecord(t, "Get while held back", get(t, s, "k")[0], 3+i, now)
		now = now.Add(want)
		wantCounted(t, fmt.Sprintf("after back-off %v", want), reserve(t, s, now, p, "k")[0], "k", 4+i, now)
	}
}

func testKeysAreIndependent(t *testing.T, s bruteforce.Store, c Clock) {
	p := bruteforce.Policy{Threshold: 2, BaseDelay: time.Second, MaxDelay: time.Minute, Window: hour}
	now := c.Now()
	for range 3 {
		reserve(t, s, now, p, "a")
	}
	if res := reserve(t, s, now, p, "a")[0]; res.Wait != time.Second {
		t.Errorf("a held back: got wait %v, want 1s", res.Wait)
	}
	wantCounted(t, "b", reserve(t, s, now, p, "b")[0], "b", 1, now)
	recs := get(t, s, "a", "b", "c")
	wantRecord(t, "a", recs[0], 2, now)
	wantRecord(t, "b", recs[1], 1, now)
	wantRecord(t, "c", recs[2], 0, now)

	// Reserved together with a held-back key, a key is counted or not
	// (a Store may be all or nothing), and says which.
	res := reserve(t, s, now, p, "a", "b")
	if res[0].Wait != time.Second || res[0].Reservation.Key != "" {
		t.Errorf("a held back: got wait %v and reservation %+v, want 1s and none", res[0].Wait, res[0].Reservation)
	}
	want := 1
	if res[1].Reservation.Key == "b" {
		want = 2
	}
	wantRecord(t, "b reserved with a held-back key", get(t, s, "b")[0], want, now)
}

// Taking back the latest reservation restores the count and the time of
// the failure before.
func testReleaseTakesBack(t *testing.T, s bruteforce.Store, c Clock) {
	now := c.Now()
	t1, t2 := now.Add(time.Second), now.Add(2*time.Second)
	reserve(t, s, now, loose, "k")
	reserve(t, s, t1, loose, "k")
	res := reserve(t, s, t2, loose, "k")[0]
	wantCounted(t, "third", res, "k", 3, t2)
	release(t, s, []bruteforce.Reservation{res.Reservation})
	wantRecord(t, "after taking back the latest", get(t, s, "k")[0], 2, t1)
}

// Taking back an older reservation leaves the latest failure's time.
func testReleaseOfOlderReservation(t *testing.T, s bruteforce.Store, c Clock) {
	now := c.Now()
	t1 := now.Add(time.Second)
	first := reserve(t, s, now, loose, "k")[0]
	reserve(t, s, t1, loose, "k")
	release(t, s, []bruteforce.Reservation{first.Reservation})
	wantRecord(t, "after taking back the older", get(t, s, "k")[0], 1, t1)
	// A release of the same key twice never goes below zero.
	release(t, s, []bruteforce.Reservation{first.Reservation, first.Reservation})
	wantRecord(t, "after more releases than reservations", get(t, s, "k")[0], 0, t1)
	wantCounted(t, "counting again", reserve(t, s, t1, loose, "k")[0], "k", 1, t1)
}

func testReleaseToZeroForgets(t *testing.T, s bruteforce.Store, c Clock) {
	now := c.Now()
	res := reserve(t, s, now, loose, "k", "other")
	release(t, s, []bruteforce.Reservation{res[0].Reservation})
	recs := get(t, s, "k", "other")
	wantRecord(t, "k after taking back its one reservation", recs[0], 0, now)
	wantRecord(t, "other", recs[1], 1, now)
}

func testResetForgets(t *testing.T, s bruteforce.Store, c Clock) {
	now := c.Now()
	reserve(t, s, now, loose, "a", "b")
	res := reserve(t, s, now, loose, "a", "b")
	release(t, s, []bruteforce.Reservation{res[1].Reservation}, "a")
	recs := get(t, s, "a", "b")
	wantRecord(t, "a after reset", recs[0], 0, now)
	wantRecord(t, "b released once", recs[1], 1, now)
	wantCounted(t, "a counting again", reserve(t, s, now, loose, "a")[0], "a", 1, now)
	// A reservation made before a reset never restores the old time.
	old := reserve(t, s, now, loose, "c")[0]
	release(t, s, nil, "c")
	later := now.Add(time.Second)
	reserve(t, s, later, loose, "c")
	reserve(t, s, later, loose, "c")
	release(t, s, []bruteforce.Reservation{old.Reservation})
	wantRecord(t, "c after taking back a reservation from before its reset", get(t, s, "c")[0], 1, later)
}

// A reservation a window or more after the last failure starts over,
// whether or not the key has expired yet (the Guard's clock may run ahead
// of the store's).
func testQuietWindowStartsOver(t *testing.T, s bruteforce.Store, c Clock) {
	now := c.Now()
	for range 3 {
		reserve(t, s, now, loose, "k")
	}
	within := now.Add(hour - time.Millisecond)
	wantCounted(t, "within the window", reserve(t, s, within, loose, "k")[0], "k", 4, within)
	later := within.Add(hour)
	res := reserve(t, s, later, loose, "k")[0]
	wantCounted(t, "after a quiet window", res, "k", 1, later)
	if !res.Reservation.Prev.IsZero() {
		t.Errorf("reservation starting over: got Prev %v, want zero", res.Reservation.Prev)
	}
	// A held-back key is forgotten after a quiet window too.
	strict := bruteforce.Policy{Threshold: 1, BaseDelay: hour, MaxDelay: hour, Window: hour}
	reserve(t, s, later, strict, "h")
	if res := reserve(t, s, later.Add(hour-time.Millisecond), strict, "h")[0]; res.Wait != time.Millisecond {
		t.Errorf("held back within the window: got wait %v, want 1ms", res.Wait)
	}
	end := later.Add(hour)
	wantCounted(t, "held back, after the window", reserve(t, s, end, strict, "h")[0], "h", 1, end)
}

func testKeysExpire(t *testing.T, s bruteforce.Store, c Clock) {
	short := loose
	short.Window = 200 * time.Millisecond
	now := c.Now()
	reserve(t, s, now, short, "short")
	reserve(t, s, now, loose, "long")
	c.Advance(short.Window + 100*time.Millisecond)
	recs := get(t, s, "short", "long")
	wantRecord(t, "short window, after it", recs[0], 0, now)
	wantRecord(t, "long window", recs[1], 1, now)
}

func testConcurrent(t *testing.T, s bruteforce.Store, c Clock) {
	const n = 50
	now := c.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			if _, err := s.Reserve(t.Context(), now, bruteforce.Request{Key: "hot", Policy: loose}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Reserve: %v", err)
	}
	wantRecord(t, "after concurrent reservations", get(t, s, "hot")[0], n, now)
}

// Concurrent reservations on a key past its threshold: exactly threshold
// count, the others are held back.
func testConcurrentStopAtThreshold(t *testing.T, s bruteforce.Store, c Clock) {
	const n, threshold = 60, 5
	p := bruteforce.Policy{Threshold: threshold, BaseDelay: time.Minute, MaxDelay: time.Hour, Window: hour}
	now := c.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	counted, held := 0, 0
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			res, err := s.Reserve(t.Context(), now, bruteforce.Request{Key: "hot", Policy: p})
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if res[0].Wait > 0 {
				held++
			} else {
				counted++
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Reserve: %v", err)
	}
	if counted != threshold || held != n-threshold {
		t.Errorf("%d concurrent reservations, threshold %d: got %d counted and %d held back, want %d and %d",
			n, threshold, counted, held, threshold, n-threshold)
	}
	wantRecord(t, "after concurrent reservations", get(t, s, "hot")[0], threshold, now)
}
