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
	store   bruteforce.Store
	guard   *bruteforce.Guard
	kind    bruteforce.Kind
	metrics *countingMetrics
	logs    *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
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

var kinds = []bruteforce.Kind{bruteforce.KindClient, bruteforce.KindUser}

func newHarness(t *testing.T, store func(*testing.T, *conformance.FakeClock) bruteforce.Store, opts bruteforce.Options) *harness {
	h := &harness{clock: &conformance.FakeClock{}, metrics: &countingMetrics{}, logs: &syncBuffer{}, kind: opts.Kind}
	if h.kind == "" {
		h.kind = bruteforce.KindClient
	}
	opts.Now = h.clock.Now
	opts.Metrics = h.metrics
	opts.Logger = slog.New(slog.NewJSONHandler(h.logs, nil))
	h.store = store(t, h.clock)
	h.guard = bruteforce.New(h.store, opts)
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

// forEachKind runs test for both kinds on both stores.
func forEachKind(t *testing.T, opts bruteforce.Options, test func(t *testing.T, h *harness)) {
	for _, k := range kinds {
		t.Run(string(k), func(t *testing.T) {
			t.Parallel()
			o := opts
			o.Kind = k
			forEachStore(t, o, test)
		})
	}
}

func blockedWait(t *testing.T, err error) time.Duration {
	t.Helper()
	var blocked *bruteforce.BlockedError
	if !errors.As(err, &blocked) {
		t.Fatalf("got error %v, want a *BlockedError", err)
	}
	if blocked.RetryAfter <= 0 {
		t.Fatalf("blocked with RetryAfter %v, want > 0", blocked.RetryAfter)
	}
	return blocked.RetryAfter
}

// wrong makes an attempt by id from source with a wrong secret, the way
// callers do, and answers the wait it was refused for: 0 when it was
// compared and failed (401), positive when blocked (429).
func (h *harness) wrong(t *testing.T, id, source string) time.Duration {
	t.Helper()
	a, err := h.guard.Begin(t.Context(), id, source)
	if err != nil {
		if h.kind != bruteforce.KindUser {
			t.Fatalf("Begin(%q, %q) of a client: %v, want never refused before the comparison", id, source, err)
		}
		return blockedWait(t, err)
	}
	if err := a.Failed(t.Context()); err != nil {
		if h.kind != bruteforce.KindClient {
			t.Fatalf("Failed of a user attempt: %v, want nil", err)
		}
		return blockedWait(t, err)
	}
	return 0
}

// right makes an attempt with the right secret, and answers the wait it
// was refused for (0: it got in).
func (h *harness) right(t *testing.T, id, source string) time.Duration {
	t.Helper()
	a, err := h.guard.Begin(t.Context(), id, source)
	if err != nil {
		return blockedWait(t, err)
	}
	a.Succeeded(t.Context())
	return 0
}

// failN makes n wrong attempts by id from source, each compared.
func (h *harness) failN(t *testing.T, n int, id, source string) {
	t.Helper()
	for i := range n {
		if wait := h.wrong(t, id, source); wait > 0 {
			t.Fatalf("failure %d of %d: got blocked for %v, want compared", i+1, n, wait)
		}
	}
}

func TestBackoffDoublesAndIsCapped(t *testing.T) {
	t.Parallel()
	opts := bruteforce.Options{Threshold: 3, BaseDelay: time.Second, MaxDelay: 10 * time.Second}
	forEachKind(t, opts, func(t *testing.T, h *harness) {
		h.failN(t, 3, "42", "192.0.2.1")
		// Each failure past the threshold doubles the back-off, up to the cap.
		for i, want := range []time.Duration{1, 2, 4, 8, 10, 10} {
			want *= time.Second
			if wait := h.wrong(t, "42", "192.0.2.1"); wait != want {
				t.Fatalf("after failure %d: got wait %v, want %v", 3+i, wait, want)
			}
			h.clock.Advance(want / 2)
			if wait := h.wrong(t, "42", "192.0.2.1"); wait != want/2 {
				t.Fatalf("half-way through back-off %v: got wait %v, want %v", want, wait, want/2)
			}
			h.clock.Advance(want / 2)
			h.failN(t, 1, "42", "192.0.2.1")
		}
		if got := h.metrics.get(string(h.kind) + "/id"); got != 12 {
			t.Errorf("blocks counted: got %d, want 12", got)
		}
	})
}

// Refused attempts are not counted: the back-off does not grow with them.
func TestBlockedAttemptIsNotCounted(t *testing.T) {
	t.Parallel()
	opts := bruteforce.Options{Threshold: 2}
	forEachKind(t, opts, func(t *testing.T, h *harness) {
		h.failN(t, 2, "7", "")
		for range 10 {
			if wait := h.wrong(t, "7", ""); wait != time.Second {
				t.Fatalf("during the back-off: got wait %v, want 1s", wait)
			}
		}
		h.clock.Advance(time.Second)
		h.failN(t, 1, "7", "")
		if wait := h.wrong(t, "7", ""); wait != 2*time.Second {
			t.Fatalf("after one more failure: got wait %v, want 2s", wait)
		}
	})
}

// A client's right secret gets in during a block: an attacker failing once
// every back-off cannot keep it out. It does not reset the count, so the
// attacker stays held back.
func TestClientRightSecretGetsInDuringBlock(t *testing.T) {
	t.Parallel()
	opts := bruteforce.Options{Kind: bruteforce.KindClient, Threshold: 3, SourceThreshold: 100}
	forEachStore(t, opts, func(t *testing.T, h *harness) {
		const attacker, owner = "192.0.2.66", "198.51.100.7"
		h.failN(t, 3, "42", attacker)
		for round := range 5 {
			wait := h.wrong(t, "42", attacker)
			if wait == 0 {
				t.Fatalf("round %d: the attacker's wrong secret during the block: got compared, want blocked", round)
			}
			if wait := h.right(t, "42", owner); wait != 0 {
				t.Fatalf("round %d: the owner's right secret during the block: got refused for %v", round, wait)
			}
			if wait := h.right(t, "42", attacker); wait != 0 {
				t.Fatalf("round %d: a right secret from the attacker's address: got refused for %v", round, wait)
			}
			// The success reset nothing: the attacker's next wrong secret
			// after the back-off is counted, and is blocked again.
			h.clock.Advance(wait)
			if wait := h.wrong(t, "42", attacker); wait != 0 {
				t.Fatalf("round %d: after the back-off: got blocked for %v, want compared", round, wait)
			}
		}
		if got := h.metrics.get("client/id"); got != 5 {
			t.Errorf("blocks counted: got %d, want 5 (a right secret is not a block)", got)
		}
	})
}

// A user's right password is refused during a block, but only from the
// source that failed: the identity is counted per (username, source).
func TestUserBlockIsPerSource(t *testing.T) {
	t.Parallel()
	opts := bruteforce.Options{Kind: bruteforce.KindUser, Threshold: 3, SourceThreshold: 5}
	forEachStore(t, opts, func(t *testing.T, h *harness) {
		const attacker, owner = "192.0.2.66", "198.51.100.7"
		h.failN(t, 3, "alice", attacker)
		if wait := h.right(t, "alice", attacker); wait != time.Second {
			t.Errorf("the right password from the blocked source: got wait %v, want refused for 1s", wait)
		}
		if wait := h.right(t, "alice", owner); wait != 0 {
			t.Errorf("the right password from another source: got refused for %v", wait)
		}
		// The owner's success did not lift the attacker's block.
		if wait := h.wrong(t, "alice", attacker); wait != time.Second {
			t.Errorf("the attacker after the owner's success: got wait %v, want 1s", wait)
		}
		// Unknown sources share one key per username.
		h.failN(t, 3, "alice", "")
		if wait := h.right(t, "alice", ""); wait != time.Second {
			t.Errorf("unknown source after 3 failures: got wait %v, want 1s", wait)
		}
		// The source dimension brakes spraying across usernames: 3 failures
		// on alice and 2 more on others reach 5.
		h.failN(t, 1, "bob", attacker)
		h.failN(t, 1, "carol", attacker)
		if wait := h.right(t, "dave", attacker); wait != time.Second {
			t.Errorf("another username from the spraying source: got wait %v, want 1s", wait)
		}
		if wait := h.right(t, "dave", owner); wait != 0 {
			t.Errorf("another username from another source: got refused for %v", wait)
		}
		if got := h.metrics.get("user/id") + h.metrics.get("user/source"); got != 4 {
			t.Errorf("blocks counted: got %d, want 4", got)
		}
	})
}

// A user's right password resets the identity (a client's right secret
// resets nothing: see TestClientRightSecretGetsInDuringBlock).
func TestSuccessResetsIdentity(t *testing.T) {
	t.Parallel()
	opts := bruteforce.Options{Kind: bruteforce.KindUser, Threshold: 3, SourceThreshold: 5}
	forEachStore(t, opts, func(t *testing.T, h *harness) {
		h.failN(t, 3, "9", "192.0.2.1")
		h.clock.Advance(time.Second)
		if wait := h.right(t, "9", "192.0.2.1"); wait != 0 {
			t.Fatalf("after the back-off: got blocked for %v", wait)
		}
		// The identity starts over: three more failures before a back-off.
		h.failN(t, 1, "9", "192.0.2.1")
		// The source does not: it has 4 failures and blocks at 5.
		h.failN(t, 1, "10", "192.0.2.1")
		if wait := h.wrong(t, "11", "192.0.2.1"); wait != time.Second {
			t.Errorf("source after 5 failures across ids: got wait %v, want 1s", wait)
		}
		if wait := h.wrong(t, "9", "198.51.100.7"); wait != 0 {
			t.Errorf("identity 9 from another source after a reset and one failure: got blocked for %v", wait)
		}
		if got := h.metrics.get(string(h.kind) + "/source"); got != 1 {
			t.Errorf("source blocks counted: got %d, want 1", got)
		}
	})
}

// Successes and cancelled attempts take their reservation back: however
// many, they never block, and they leave the source's failures as they
// were (count and time).
func TestSettledReservationsAreTakenBack(t *testing.T) {
	t.Parallel()
	opts := bruteforce.Options{Threshold: 2, SourceThreshold: 3}
	forEachKind(t, opts, func(t *testing.T, h *harness) {
		h.failN(t, 1, "1", "192.0.2.1")
		failedAt := h.clock.Now()
		for i := range 10 {
			h.clock.Advance(time.Second)
			if wait := h.right(t, otherID(i), "192.0.2.1"); wait != 0 {
				t.Fatalf("success %d: got blocked for %v", i, wait)
			}
			a, err := h.guard.Begin(t.Context(), "1", "192.0.2.1")
			if err != nil {
				t.Fatalf("attempt %d to cancel: %v", i, err)
			}
			a.Cancel(t.Context())
		}
		src := "c:src:192.0.2.1"
		if h.kind == bruteforce.KindUser {
			src = "u:src:192.0.2.1"
		}
		recs, err := h.store.Get(t.Context(), src)
		if err != nil {
			t.Fatal(err)
		}
		if recs[0].Failures != 1 || !recs[0].Last.Equal(failedAt) {
			t.Errorf("source after successes and cancelled attempts: got %+v, want 1 failure at %v", recs[0], failedAt)
		}
		// The identity kept its one failure: one more blocks it.
		h.failN(t, 1, "1", "192.0.2.1")
		if wait := h.wrong(t, "1", "192.0.2.1"); wait != time.Second {
			t.Errorf("identity after 2 failures around the cancelled attempts: got wait %v, want 1s", wait)
		}
	})
}

func otherID(i int) string { return fmt.Sprint(100 + i) }

// An attempt refused on one key takes back what it counted on the others:
// a blocked source does not run up the identity's count.
func TestBlockedAttemptTakesBackOtherKeys(t *testing.T) {
	t.Parallel()
	opts := bruteforce.Options{Threshold: 3, SourceThreshold: 2}
	forEachKind(t, opts, func(t *testing.T, h *harness) {
		h.failN(t, 2, "1", "192.0.2.1") // the source is held back now
		for range 5 {
			if wait := h.wrong(t, "2", "192.0.2.1"); wait != time.Second {
				t.Fatalf("identity 2 from the held-back source: got wait %v, want 1s", wait)
			}
		}
		if wait := h.wrong(t, "2", "198.51.100.7"); wait != 0 {
			t.Errorf("identity 2 from another source: got blocked for %v, want compared (nothing counted on it)", wait)
		}
	})
}

// Many wrong attempts at once get exactly Threshold comparisons (401s);
// the rest are refused (429s).
func TestConcurrentWrongAttempts(t *testing.T) {
	t.Parallel()
	const n, threshold = 60, 5
	opts := bruteforce.Options{Threshold: threshold, SourceThreshold: 1000}
	forEachKind(t, opts, func(t *testing.T, h *harness) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		compared, refused := 0, 0
		for range n {
			wg.Go(func() {
				ctx := context.Background()
				a, err := h.guard.Begin(ctx, "42", "192.0.2.1")
				if err == nil {
					time.Sleep(time.Millisecond) // the comparison
					err = a.Failed(ctx)
				}
				mu.Lock()
				defer mu.Unlock()
				var blocked *bruteforce.BlockedError
				switch {
				case err == nil:
					compared++
				case errors.As(err, &blocked):
					refused++
				default:
					t.Errorf("attempt: %v", err)
				}
			})
		}
		wg.Wait()
		if compared != threshold || refused != n-threshold {
			t.Errorf("%d concurrent wrong attempts, threshold %d: got %d failed (401) and %d refused (429), want %d and %d",
				n, threshold, compared, refused, threshold, n-threshold)
		}
	})
}

func TestFailuresDecay(t *testing.T) {
	t.Parallel()
	opts := bruteforce.Options{Threshold: 3, MaxDelay: time.Minute, Window: 10 * time.Minute}
	forEachKind(t, opts, func(t *testing.T, h *harness) {
		h.failN(t, 3, "5", "")
		h.clock.Advance(time.Second)
		h.failN(t, 1, "5", "") // back-off now 2s
		// After a quiet window the failures are forgotten, even if the store
		// still holds the key.
		h.clock.Advance(10 * time.Minute)
		h.failN(t, 2, "5", "")
		if wait := h.wrong(t, "5", ""); wait != 0 {
			t.Fatalf("third failure after decay: got blocked for %v, want the count to have started over", wait)
		}
		if wait := h.wrong(t, "5", ""); wait != time.Second {
			t.Fatalf("after three failures since the decay: got wait %v, want 1s", wait)
		}
	})
}

// The window is never shorter than the longest back-off: the cap holds.
func TestWindowCoversMaxDelay(t *testing.T) {
	t.Parallel()
	opts := bruteforce.Options{Threshold: 1, BaseDelay: time.Minute, MaxDelay: time.Hour, Window: time.Second}
	forEachKind(t, opts, func(t *testing.T, h *harness) {
		h.failN(t, 1, "5", "")
		h.clock.Advance(59 * time.Second)
		if wait := h.wrong(t, "5", ""); wait != time.Second {
			t.Errorf("got wait %v, want 1s", wait)
		}
	})
}

func TestKeysAreIndependent(t *testing.T) {
	t.Parallel()
	opts := bruteforce.Options{Threshold: 2, SourceThreshold: 3}
	forEachKind(t, opts, func(t *testing.T, h *harness) {
		h.failN(t, 2, "alice", "192.0.2.1")
		wantAliceElsewhere := time.Duration(0) // users are counted per source
		if h.kind == bruteforce.KindClient {
			wantAliceElsewhere = time.Second // clients per id
		}
		if wait := h.wrong(t, "alice", "198.51.100.7"); wait != wantAliceElsewhere {
			t.Errorf("alice from another source: got wait %v, want %v", wait, wantAliceElsewhere)
		}
		h.failN(t, 1, "bob", "192.0.2.1") // the source's third failure
		if wait := h.wrong(t, "carol", "192.0.2.1"); wait == 0 {
			t.Error("carol from the blocked source: got compared, want blocked (per-source)")
		}
		if wait := h.wrong(t, "carol", "192.0.2.2"); wait != 0 {
			t.Errorf("carol from another source: got blocked for %v", wait)
		}
		// Users are keyed and logged by hash only.
		if h.kind == bruteforce.KindUser {
			if logs := h.logs.String(); strings.Contains(logs, "alice") || !strings.Contains(logs, bruteforce.HashID("alice")) {
				t.Errorf("logs name alice in clear or not by hash: %s", logs)
			}
		}
	})
}

// brokenStore fails every call.
type brokenStore struct{}

var errBroken = errors.New("store down")

func (brokenStore) Get(context.Context, ...string) ([]bruteforce.Record, error) {
	return nil, errBroken
}
func (brokenStore) Reserve(context.Context, time.Time, ...bruteforce.Request) ([]bruteforce.Result, error) {
	return nil, errBroken
}
func (brokenStore) Release(context.Context, []bruteforce.Reservation, []string) error {
	return errBroken
}

func TestStoreFailureFailsOpen(t *testing.T) {
	t.Parallel()
	for _, k := range kinds {
		h := newHarness(t, func(*testing.T, *conformance.FakeClock) bruteforce.Store { return brokenStore{} },
			bruteforce.Options{Kind: k, Threshold: 1})
		for range 3 {
			if wait := h.wrong(t, "1", "192.0.2.1"); wait != 0 {
				t.Fatalf("%s, store down: got blocked for %v, want let through", k, wait)
			}
			if wait := h.right(t, "1", "192.0.2.1"); wait != 0 {
				t.Fatalf("%s, store down: got blocked for %v, want let through", k, wait)
			}
		}
		if !strings.Contains(h.logs.String(), "failing open") {
			t.Errorf("%s: store failure not logged: %s", k, h.logs.String())
		}
	}
}

// A caller hanging up is still counted: the reservation is made, and
// settled, whatever becomes of the request's context.
func TestFailureOutlivesRequest(t *testing.T) {
	t.Parallel()
	forEachKind(t, bruteforce.Options{Threshold: 1}, func(t *testing.T, h *harness) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		a, err := h.guard.Begin(ctx, "3", "")
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Failed(ctx); err != nil {
			t.Fatal(err)
		}
		if wait := h.wrong(t, "3", ""); wait == 0 {
			t.Error("after a failure with a cancelled context: got compared, want blocked")
		}
	})
}

func TestZeroAttempt(t *testing.T) {
	t.Parallel()
	var a bruteforce.Attempt
	if err := a.Failed(t.Context()); err != nil {
		t.Errorf("Failed of the zero Attempt: %v", err)
	}
	a.Succeeded(t.Context())
	a.Cancel(t.Context())
}

func TestPolicyWait(t *testing.T) {
	t.Parallel()
	p := bruteforce.Policy{Threshold: 2, BaseDelay: time.Second, MaxDelay: 5 * time.Second, Window: time.Minute}
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		failures int
		at       time.Duration
		want     time.Duration
	}{
		{1, 0, 0},
		{2, 0, time.Second},
		{2, time.Second, 0},
		{3, 500 * time.Millisecond, 1500 * time.Millisecond},
		{4, 0, 4 * time.Second},
		{5, 0, 5 * time.Second},
		{500, 0, 5 * time.Second},
		{500, time.Minute, 0},
	} {
		if got := p.Wait(bruteforce.Record{Failures: tt.failures, Last: t0}, t0.Add(tt.at)); got != tt.want {
			t.Errorf("Wait(%d failures, %v later) = %v, want %v", tt.failures, tt.at, got, tt.want)
		}
	}
}

func TestBlockedErrorMessage(t *testing.T) {
	t.Parallel()
	err := error(&bruteforce.BlockedError{RetryAfter: 2 * time.Second})
	if got, want := err.Error(), "too many failed authentication attempts: retry after 2s"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// Check settles by verify's outcome: a wrong secret counts, a backend
// failure is taken back, a success gets in; without a guard it only runs
// verify.
func TestCheck(t *testing.T) {
	t.Parallel()
	errWrong, errDown := errors.New("wrong"), errors.New("down")
	opts := bruteforce.Options{Kind: bruteforce.KindUser, Threshold: 2}
	forEachStore(t, opts, func(t *testing.T, h *harness) {
		check := func(err error) error {
			_, got := bruteforce.Check(t.Context(), h.guard, "erin", "192.0.2.9", errWrong, func() (int, error) { return 1, err })
			return got
		}
		for range 5 {
			if err := check(errDown); !errors.Is(err, errDown) {
				t.Fatalf("backend failure: got %v, want it passed through", err)
			}
		}
		if err := check(errWrong); !errors.Is(err, errWrong) {
			t.Fatalf("first wrong secret: got %v (backend failures must not have counted)", err)
		}
		if err := check(nil); err != nil {
			t.Fatalf("right secret: %v", err)
		}
		check(errWrong)
		check(errWrong)
		blockedWait(t, check(nil))
	})
	if v, err := bruteforce.Check(t.Context(), nil, "x", "", errWrong, func() (int, error) { return 7, nil }); v != 7 || err != nil {
		t.Fatalf("without a guard: got %d, %v", v, err)
	}
}
