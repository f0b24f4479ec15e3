// Package conformance is the test suite every bruteforce.Store backend must
// pass, so the in-process store and the Redis one count alike. A backend's
// test calls Run with a constructor; the suite owns the cases.
//
// Only expiry needs time to pass; the suite lets the backend's clock advance
// by a few hundred milliseconds, so a backend on real time (Redis) sleeps
// briefly. Every other case passes explicit times to Fail.
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
		{"FailCounts", testFailCounts},
		{"KeysAreIndependent", testKeysAreIndependent},
		{"ResetForgets", testResetForgets},
		{"QuietWindowStartsOver", testQuietWindowStartsOver},
		{"KeysExpire", testKeysExpire},
		{"Concurrent", testConcurrent},
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

func fail(t *testing.T, s bruteforce.Store, now time.Time, window time.Duration, keys ...string) []bruteforce.Record {
	t.Helper()
	recs, err := s.Fail(t.Context(), now, window, keys...)
	if err != nil {
		t.Fatalf("Fail(%q): %v", keys, err)
	}
	if len(recs) != len(keys) {
		t.Fatalf("Fail(%q): got %d records, want %d", keys, len(recs), len(keys))
	}
	return recs
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

func testUnknownKeyIsZero(t *testing.T, s bruteforce.Store, _ Clock) {
	for i, r := range get(t, s, "nobody", "nowhere") {
		if r != (bruteforce.Record{}) {
			t.Errorf("record %d of unknown keys: got %+v, want zero", i, r)
		}
	}
	if err := s.Reset(t.Context(), "nobody"); err != nil {
		t.Errorf("Reset of an unknown key: %v", err)
	}
}

func testFailCounts(t *testing.T, s bruteforce.Store, c Clock) {
	now := c.Now()
	for i := 1; i <= 4; i++ {
		at := now.Add(time.Duration(i) * time.Second)
		recs := fail(t, s, at, hour, "id:1", "src:1")
		wantRecord(t, fmt.Sprintf("Fail %d, id", i), recs[0], i, at)
		wantRecord(t, fmt.Sprintf("Fail %d, source", i), recs[1], i, at)
	}
	recs := get(t, s, "id:1", "src:1")
	wantRecord(t, "Get id", recs[0], 4, now.Add(4*time.Second))
	wantRecord(t, "Get source", recs[1], 4, now.Add(4*time.Second))
}

func testKeysAreIndependent(t *testing.T, s bruteforce.Store, c Clock) {
	now := c.Now()
	for range 3 {
		fail(t, s, now, hour, "a")
	}
	fail(t, s, now, hour, "b")
	recs := get(t, s, "a", "b", "c")
	wantRecord(t, "a", recs[0], 3, now)
	wantRecord(t, "b", recs[1], 1, now)
	wantRecord(t, "c", recs[2], 0, now)
}

func testResetForgets(t *testing.T, s bruteforce.Store, c Clock) {
	now := c.Now()
	fail(t, s, now, hour, "a", "b")
	fail(t, s, now, hour, "a", "b")
	if err := s.Reset(t.Context(), "a"); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	recs := get(t, s, "a", "b")
	wantRecord(t, "a after reset", recs[0], 0, now)
	wantRecord(t, "b (not reset)", recs[1], 2, now)
	wantRecord(t, "a failing again", fail(t, s, now, hour, "a")[0], 1, now)
}

// A failure a window or more after the last one starts over, whether or not
// the key has expired yet (the Guard's clock may run ahead of the store's).
func testQuietWindowStartsOver(t *testing.T, s bruteforce.Store, c Clock) {
	now := c.Now()
	for range 3 {
		fail(t, s, now, hour, "k")
	}
	wantRecord(t, "within the window", fail(t, s, now.Add(hour-time.Millisecond), hour, "k")[0], 4, now.Add(hour-time.Millisecond))
	later := now.Add(2*hour + time.Millisecond)
	wantRecord(t, "after a quiet window", fail(t, s, later, hour, "k")[0], 1, later)
}

func testKeysExpire(t *testing.T, s bruteforce.Store, c Clock) {
	const window = 200 * time.Millisecond
	now := c.Now()
	fail(t, s, now, window, "short")
	fail(t, s, now, hour, "long")
	c.Advance(window + 100*time.Millisecond)
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
			if _, err := s.Fail(t.Context(), now, hour, "hot"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Fail: %v", err)
	}
	wantRecord(t, "after concurrent failures", get(t, s, "hot")[0], n, now)
}
