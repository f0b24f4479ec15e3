package bruteforce_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/bruteforce"
	"github.com/tollgate/tollgate/pkg/bruteforce/conformance"
	"github.com/tollgate/tollgate/pkg/bruteforce/memory"
	bfredis "github.com/tollgate/tollgate/pkg/bruteforce/redis"
	"github.com/tollgate/tollgate/storage/redis/redistest"
)

// countingMetrics records BruteForceBlocked calls.
type countingMetrics struct {
	mu sync.Mutex
	n  map[string]int
}

func (m *countingMetrics) BruteForceBlocked(kind, dimension string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n == nil {
		m.n = map[string]int{}
	}
	m.n[kind+"/"+dimension]++
}

func (m *countingMetrics) get(key string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n[key]
}

type harness struct {
	clock   *conformance.FakeClock
	guard   *bruteforce.Guard
	metrics *countingMetrics
	logs    *bytes.Buffer
}

// stores are the backends the Guard is tested on. The Guard's clock is fake
// on both: Redis only expires keys a window (minutes) later.
var stores = []struct {
	name string
	new  func(t *testing.T, c *conformance.FakeClock) bruteforce.Store
}{
	{"memory", func(_ *testing.T, c *conformance.FakeClock) bruteforce.Store {
		return memory.New(memory.Options{Now: c.Now})
	}},
	{"redis", func(t *testing.T, _ *conformance.FakeClock) bruteforce.Store {
		client, prefix := redistest.New(t)
		return bfredis.New(client, bfredis.Options{KeyPrefix: prefix})
	}},
}

func newHarness(t *testing.T, store func(*testing.T, *conformance.FakeClock) bruteforce.Store, opts bruteforce.Options) *harness {
	h := &harness{clock: &conformance.FakeClock{}, metrics: &countingMetrics{}, logs: &bytes.Buffer{}}
	opts.Now = h.clock.Now
	opts.Metrics = h.metrics
	opts.Logger = slog.New(slog.NewJSONHandler(h.logs, nil))
	h.guard = bruteforce.New(store(t, h.clock), opts)
	return h
}

func forEachStore(t *testing.T, opts bruteforce.Options, test func(t *testing.T, h *harness)) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			test(t, newHarness(t, s.new, opts))
		})
	}
}

// begin answers the wait of an attempt: 0 when it is let through.
func (h *harness) begin(t *testing.T, id, source string) (bruteforce.Attempt, time.Duration) {
	t.Helper()
	a, err := h.guard.Begin(t.Context(), id, source)
	var blocked *bruteforce.BlockedError
	if errors.As(err, &blocked) {
		if blocked.RetryAfter <= 0 {
			t.Fatalf("Begin(%q, %q): blocked with RetryAfter %v, want > 0", id, source, blocked.RetryAfter)
		}
		return a, blocked.RetryAfter
	}
	if err != nil {
		t.Fatalf("Begin(%q, %q): %v", id, source, err)
	}
	return a, 0
}

// failN makes n attempts by id from source fail, each let through.
func (h *harness) failN(t *testing.T, n int, id, source string) {
	t.Helper()
	for i := range n {
		a, wait := h.begin(t, id, source)
		if wait > 0 {
			t.Fatalf("failure %d of %d: got blocked for %v, want let through", i+1, n, wait)
		}
		a.Failed(t.Context())
	}
}

func TestBackoffDoublesAndIsCapped(t *testing.T) {
	t.Parallel()
	opts := bruteforce.Options{Kind: bruteforce.KindClient, Threshold: 3, BaseDelay: time.Second, MaxDelay: 10 * time.Second}
	forEachStore(t, opts, func(t *testing.T, h *harness) {
		h.failN(t, 2, "42", "192.0.2.1")
		if _, wait := h.begin(t, "42", "192.0.2.1"); wait != 0 {
			t.Fatalf("below the threshold: got blocked for %v", wait)
		}
		// Each failure past the threshold doubles the back-off, up to the cap.
		for i, want := range []time.Duration{1, 2, 4, 8, 10, 10} {
			want *= time.Second
			h.failN(t, 1, "42", "192.0.2.1")
			_, wait := h.begin(t, "42", "192.0.2.1")
			if wait != want {
				t.Fatalf("after failure %d: got wait %v, want %v", 3+i, wait, want)
			}
			h.clock.Advance(want / 2)
			if _, wait := h.begin(t, "42", "192.0.2.1"); wait != want/2 {
				t.Fatalf("half-way through back-off %v: got wait %v, want %v", want, wait, want/2)
			}
			h.clock.Advance(want / 2)
		}
		if got := h.metrics.get("client/id"); got != 12 {
			t.Errorf("blocks counted: got %d, want 12", got)
		}
	})
}

// The back-off refuses every attempt, a right secret included: Begin runs
// before any comparison and does not know the secret.
func TestBlockedAttemptIsNotCounted(t *testing.T) {
	t.Parallel()
	opts := bruteforce.Options{Threshold: 2}
	forEachStore(t, opts, func(t *testing.T, h *harness) {
		h.failN(t, 2, "7", "")
		for range 10 {
			if _, wait := h.begin(t, "7", ""); wait != time.Second {
				t.Fatalf("during the back-off: got wait %v, want 1s", wait)
			}
		}
		h.clock.Advance(time.Second)
		// The refused attempts did not lengthen the back-off.
		a, wait := h.begin(t, "7", "")
		if wait != 0 {
			t.Fatalf("after the back-off: got blocked for %v", wait)
		}
		a.Failed(t.Context())
		if _, wait := h.begin(t, "7", ""); wait != 2*time.Second {
			t.Fatalf("after one more failure: got wait %v, want 2s", wait)
		}
	})
}

func TestSuccessResetsIdentity(t *testing.T) {
	t.Parallel()
	opts := bruteforce.Options{Threshold: 3, SourceThreshold: 5}
	forEachStore(t, opts, func(t *testing.T, h *harness) {
		h.failN(t, 3, "9", "192.0.2.1")
		h.clock.Advance(time.Second)
		a, wait := h.begin(t, "9", "192.0.2.1")
		if wait != 0 {
			t.Fatalf("after the back-off: got blocked for %v", wait)
		}
		a.Succeeded(t.Context())
		// The identity starts over: three more failures before a back-off.
		h.failN(t, 1, "9", "192.0.2.1")
		// The source does not: it has 4 failures and blocks at 5.
		h.failN(t, 1, "10", "192.0.2.1")
		if _, wait := h.begin(t, "11", "192.0.2.1"); wait != time.Second {
			t.Errorf("source after 5 failures across ids: got wait %v, want 1s", wait)
		}
		if _, wait := h.begin(t, "9", "198.51.100.7"); wait != 0 {
			t.Errorf("identity 9 from another source after a reset and one failure: got blocked for %v", wait)
		}
		if got := h.metrics.get("client/source"); got != 1 {
			t.Errorf("source blocks counted: got %d, want 1", got)
		}
	})
}

func TestFailuresDecay(t *testing.T) {
	t.Parallel()
	opts := bruteforce.Options{Threshold: 3, MaxDelay: time.Minute, Window: 10 * time.Minute}
	forEachStore(t, opts, func(t *testing.T, h *harness) {
		h.failN(t, 3, "5", "")
		h.clock.Advance(time.Second)
		h.failN(t, 1, "5", "") // back-off now 2s
		// After a quiet window the failures are forgotten, even if the store
		// still holds the key.
		h.clock.Advance(10 * time.Minute)
		if _, wait := h.begin(t, "5", ""); wait != 0 {
			t.Fatalf("after a quiet window: got blocked for %v", wait)
		}
		h.failN(t, 2, "5", "")
		if _, wait := h.begin(t, "5", ""); wait != 0 {
			t.Fatalf("two failures after decay: got blocked for %v, want the count to have started over", wait)
		}
	})
}

// The window is never shorter than the longest back-off: the cap holds.
func TestWindowCoversMaxDelay(t *testing.T) {
	t.Parallel()
	opts := bruteforce.Options{Threshold: 1, BaseDelay: time.Minute, MaxDelay: time.Hour, Window: time.Second}
	forEachStore(t, opts, func(t *testing.T, h *harness) {
		h.failN(t, 1, "5", "")
		h.clock.Advance(59 * time.Second)
		if _, wait := h.begin(t, "5", ""); wait != time.Second {
			t.Errorf("got wait %v, want 1s", wait)
		}
	})
}

func TestKeysAreIndependent(t *testing.T) {
	t.Parallel()
	opts := bruteforce.Options{Kind: bruteforce.KindUser, Threshold: 2, SourceThreshold: 3}
	forEachStore(t, opts, func(t *testing.T, h *harness) {
		h.failN(t, 2, "alice", "192.0.2.1")
		if _, wait := h.begin(t, "alice", "198.51.100.7"); wait == 0 {
			t.Error("alice from another source: got let through, want blocked (per-user)")
		}
		if _, wait := h.begin(t, "bob", "192.0.2.1"); wait != 0 {
			t.Errorf("bob: got blocked for %v, want let through", wait)
		}
		h.failN(t, 1, "bob", "192.0.2.1") // the source's third failure
		if _, wait := h.begin(t, "carol", "192.0.2.1"); wait == 0 {
			t.Error("carol from the blocked source: got let through, want blocked (per-source)")
		}
		if _, wait := h.begin(t, "carol", "192.0.2.2"); wait != 0 {
			t.Errorf("carol from another source: got blocked for %v", wait)
		}
		if _, wait := h.begin(t, "bob", "198.51.100.7"); wait != 0 {
			t.Errorf("bob from another source: got blocked for %v", wait)
		}
		if got := h.metrics.get("user/id") + h.metrics.get("user/source"); got != 2 {
			t.Errorf("blocks counted: got %d, want 2", got)
		}
		// Users are keyed and logged by hash only.
		if logs := h.logs.String(); strings.Contains(logs, "alice") || !strings.Contains(logs, bruteforce.HashID("alice")) {
			t.Errorf("logs name alice in clear or not by hash: %s", logs)
		}
	})
}

// brokenStore fails every call.
type brokenStore struct{}

var errBroken = errors.New("store down")

func (brokenStore) Get(context.Context, ...string) ([]bruteforce.Record, error) {
	return nil, errBroken
}
func (brokenStore) Fail(context.Context, time.Time, time.Duration, ...string) ([]bruteforce.Record, error) {
	return nil, errBroken
}
func (brokenStore) Reset(context.Context, ...string) error { return errBroken }

func TestStoreFailureFailsOpen(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(*testing.T, *conformance.FakeClock) bruteforce.Store { return brokenStore{} }, bruteforce.Options{Threshold: 1})
	for range 3 {
		a, wait := h.begin(t, "1", "192.0.2.1")
		if wait != 0 {
			t.Fatalf("store down: got blocked for %v, want let through", wait)
		}
		a.Failed(t.Context())
		a.Succeeded(t.Context())
	}
	if !strings.Contains(h.logs.String(), "failing open") {
		t.Errorf("store failure not logged: %s", h.logs.String())
	}
}

// A caller hanging up right after a wrong secret is still counted.
func TestFailureOutlivesRequest(t *testing.T) {
	t.Parallel()
	forEachStore(t, bruteforce.Options{Threshold: 1}, func(t *testing.T, h *harness) {
		a, _ := h.begin(t, "3", "")
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		a.Failed(ctx)
		if _, wait := h.begin(t, "3", ""); wait == 0 {
			t.Error("after a failure with a cancelled context: got let through, want blocked")
		}
	})
}

func TestZeroAttempt(t *testing.T) {
	t.Parallel()
	var a bruteforce.Attempt
	a.Failed(t.Context())
	a.Succeeded(t.Context())
}

func TestSource(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"192.0.2.1:1234", "192.0.2.1"},
		{"[::ffff:192.0.2.1]:1234", "192.0.2.1"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"[fe80::1%eth0]:80", "fe80::/64"},
		{"192.0.2.1", "192.0.2.1"},
		{"@", "@"},
		{"", ""},
		{strings.Repeat("x", 100), strings.Repeat("x", 64)},
	} {
		if got := bruteforce.Source(tt.in); got != tt.want {
			t.Errorf("Source(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestBlockedErrorMessage(t *testing.T) {
	t.Parallel()
	err := error(&bruteforce.BlockedError{RetryAfter: 2 * time.Second})
	if got, want := err.Error(), fmt.Sprint("too many failed authentication attempts: retry after 2s"); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
