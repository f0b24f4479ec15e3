package cache_test

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/storage/cache"
)

// synthetic is a backend of n clients made up on the fly, each with its
// own strings as a database read gives them, and every account active.
type synthetic struct {
	cache.Backend // nil: only the methods below are called
	n             int64
	now           time.Time
}

func (s synthetic) GetClient(_ context.Context, id int64) (storage.Client, error) {
	if id < 1 || id > s.n {
		return storage.Client{}, storage.ErrNotFound
	}
	n := strconv.FormatInt(id, 10)
	return storage.Client{
		ID:         id,
		AccountID:  1000 + id%5000,
		Kind:       storage.KindClient,
		Name:       "reporting-service-" + n,
		SecretHash: "tgh1$1$" + strings.Repeat("x", 43-len(n)) + n, // the length of a real one
		SecretHint: "…" + n[len(n)-1:],
		GrantTypes: []string{strings.Clone("client_credentials")},
		Scopes:     []string{strings.Clone("events"), strings.Clone("contacts"), strings.Clone("reports")},
		Status:     storage.StatusActive,
		Generation: 1,
		LastUsedAt: s.now,
		Version:    3,
		CreatedAt:  s.now,
		UpdatedAt:  s.now,
	}, nil
}

func (synthetic) AccountActive(context.Context, int64) (bool, error) { return true, nil }

// TestBytesPerCachedClient measures the heap an instance's cache takes per
// client it holds: the growth of the live heap (runtime.MemStats, after a
// GC) while the cache reads n typical clients, n = 100,000 (the default
// table size) with TOLLGATE_TEST_MEMORY set. The accounts' answers, one per
// 20 clients here, are counted in.
func TestBytesPerCachedClient(t *testing.T) {
	if os.Getenv("TOLLGATE_TEST_MEMORY") == "" {
		t.Skip("set TOLLGATE_TEST_MEMORY=1 to measure the cache's memory per client")
	}
	const n = cache.DefaultMaxEntries - 5000 // room for the 5,000 account answers
	ctx := t.Context()
	backend := synthetic{n: n, now: time.Now()}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	s := cache.New(backend, cache.Options{TTL: time.Hour})
	for id := int64(1); id <= n; id++ {
		c, err := s.GetClient(ctx, id)
		if err != nil {
			t.Fatalf("GetClient(%d): %v", id, err)
		}
		if _, err := s.AccountActive(ctx, c.AccountID); err != nil {
			t.Fatalf("AccountActive: %v", err)
		}
	}
	after := heap()
	if got := s.Len(); got != n+5000 {
		t.Fatalf("entries: got %d, want %d", got, n+5000)
	}
	perClient := float64(after-before) / n
	t.Logf("%d clients (and 5000 accounts) cached: heap grew %d bytes, %.0f bytes per client; a full table of %d entries ≈ %.0f MB",
		n, after-before, perClient, cache.DefaultMaxEntries, perClient*cache.DefaultMaxEntries/1e6)
	runtime.KeepAlive(s)
	if perClient < 100 || perClient > 10_000 {
		t.Errorf("bytes per cached client: got %.0f, want a figure between 100 and 10000", perClient)
	}
}
