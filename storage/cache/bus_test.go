package cache_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/storage/cache"
	tgredis "github.com/tollgate/tollgate/storage/redis"
	"github.com/tollgate/tollgate/storage/redis/redistest"
	"github.com/tollgate/tollgate/storage/sql/sqltest"
)

// run runs s.Run until the test ends.
func run(t *testing.T, stores ...*cache.Store) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, s := range stores {
		wg.Go(func() { s.Run(ctx) })
	}
	// Registered after redistest.New's cleanup, so it runs before the
	// Redis client is closed.
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// waitSubscribers waits until channel has n subscribers: from then on, what
// is published reaches them.
func waitSubscribers(t *testing.T, client goredis.UniversalClient, channel string, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := client.PubSubNumSub(t.Context(), channel).Result()
		if err != nil {
			t.Fatalf("PUBSUB NUMSUB: %v", err)
		}
		if got[channel] >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d subscribers after 5s, want %d", channel, got[channel], n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// eventually polls cond for up to within and reports how long it took.
func eventually(within time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) > within {
			return time.Since(start), false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Two instances over one PostgreSQL database: what is written through A is
// read through B within a second, though B's entries would live an hour.
func TestTwoInstancesRedisBus(t *testing.T) {
	client, prefix := redistest.New(t)
	channel := prefix + "cache"
	bus := cache.NewRedisBus(client, channel)
	testTwoInstances(t, bus, bus, func() { waitSubscribers(t, client, channel, 2) })
}

// testTwoInstances runs instances A and B, on buses busA and busB of one
// channel, over one PostgreSQL database; subscribed returns once both
// subscriptions are in place.
func testTwoInstances(t *testing.T, busA, busB cache.Bus, subscribed func()) {
	url := sqltest.Postgres(t)
	a := cache.New(openSQL(t, url), cache.Options{TTL: time.Hour, Bus: busA})
	innerB := &counting{Backend: openSQL(t, url)}
	b := cache.New(innerB, cache.Options{TTL: time.Hour, Bus: busB})
	run(t, a, b)
	subscribed()

	ctx := t.Context()
	f := newFixture(t, a)
	settle(t, b, innerB, f)
	before := innerB.clients.Load()

	if _, err := a.UpdateClient(ctx, f.client.ID, func(c *storage.Client) error {
		c.Status = storage.StatusDisabled
		c.Revoke()
		return nil
	}); err != nil {
		t.Fatalf("UpdateClient through A: %v", err)
	}
	took, ok := eventually(time.Second, func() bool {
		c, err := b.GetClient(ctx, f.client.ID)
		return err == nil && c.Status == storage.StatusDisabled && c.Generation != f.client.Generation
	})
	if !ok {
		t.Fatalf("client disabled through A still active on B after %s", took)
	}
	t.Logf("client disabled through A seen on B after %s", took)
	wantCalls(t, "GetClient on B", &innerB.clients, before+1)

	if _, err := a.UpdateAccount(ctx, f.root.ID, func(acc *storage.Account) error {
		acc.Status = storage.StatusDisabled
		return nil
	}); err != nil {
		t.Fatalf("UpdateAccount through A: %v", err)
	}
	if took, ok := eventually(time.Second, func() bool {
		active, err := b.AccountActive(ctx, f.child.ID)
		return err == nil && !active
	}); !ok {
		t.Fatalf("account under a root disabled through A still active on B after %s", took)
	}

	if err := a.DeleteUser(ctx, f.user.ID); err != nil {
		t.Fatalf("DeleteUser through A: %v", err)
	}
	if took, ok := eventually(time.Second, func() bool {
		_, errU := b.GetUser(ctx, f.user.ID)
		_, errC := b.GetClient(ctx, f.client.ID)
		return errors.Is(errU, storage.ErrNotFound) && errors.Is(errC, storage.ErrNotFound)
	}); !ok {
		t.Fatalf("user deleted through A, or their client, still found on B after %s", took)
	}
}

// settle warms c with f until a second warming asks inner nothing: Run
// flushes the table once right after subscribing, perhaps just after the
// test saw the subscription.
func settle(t *testing.T, c *cache.Store, inner *counting, f fixture) {
	t.Helper()
	calls := func() int64 {
		return inner.clients.Load() + inner.users.Load() + inner.active.Load() + inner.subtree.Load()
	}
	if took, ok := eventually(time.Second, func() bool {
		warm(t, c, f)
		n := calls()
		warm(t, c, f)
		return calls() == n
	}); !ok {
		t.Fatalf("reads not cached after %s", took)
	}
}

// testRedisURL is the Redis redistest uses.
func testRedisURL() string {
	if u := os.Getenv("TOLLGATE_TEST_REDIS_URL"); u != "" {
		return u
	}
	return redistest.DefaultURL
}

// When the subscription drops, go-redis subscribes again and the instance
// flushes its table: what it missed meanwhile is read afresh.
func TestResyncAfterReconnect(t *testing.T) {
	admin, prefix := redistest.New(t) // skips or fails when Redis is down
	channel := prefix + "cache"
	ropts, err := goredis.ParseURL(testRedisURL())
	if err != nil {
		t.Fatalf("parse redis url: %v", err)
	}
	name := strings.ReplaceAll(strings.TrimSuffix(prefix, ":"), ":", "-")
	ropts.ClientName = name
	client := goredis.NewClient(ropts)

	s := newSetup(t, sqltest.SQLite(t), cache.Options{TTL: time.Hour, Bus: cache.NewRedisBus(client, channel)})
	// Run flushes the table once subscribed, a moment after Redis counts the
	// subscriber: an entry cached before Run starts shows when that flush
	// has happened, so the one awaited below cannot land in the middle of
	// the test instead.
	mustGetClient(t, s.cache, s.f.client.ID)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.cache.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; client.Close() })
	waitSubscribers(t, admin, channel, 1)
	if took, ok := eventually(5*time.Second, func() bool { return s.cache.Len() == 0 }); !ok {
		t.Fatalf("the cache was not flushed %s after subscribing", took)
	}

	mustGetClient(t, s.cache, s.f.client.ID)
	// Changed behind the cache's back, as by an announcement that was lost.
	if _, err := s.sql.UpdateClient(t.Context(), s.f.client.ID, func(c *storage.Client) error { c.Name = "changed"; return nil }); err != nil {
		t.Fatalf("UpdateClient: %v", err)
	}
	if got := mustGetClient(t, s.cache, s.f.client.ID); got.Name != s.f.client.Name {
		t.Fatalf("GetClient before the reconnection: name %q, want the cached %q", got.Name, s.f.client.Name)
	}

	killed := killSubscriber(t, admin, name)
	if killed == 0 {
		t.Fatalf("no subscribed connection named %s to kill", name)
	}
	if took, ok := eventually(5*time.Second, func() bool {
		return mustGetClient(t, s.cache, s.f.client.ID).Name == "changed"
	}); !ok {
		t.Fatalf("the cache was not flushed %s after its subscription dropped", took)
	}
}

// killSubscriber closes the subscribed connections named name.
func killSubscriber(t *testing.T, admin goredis.UniversalClient, name string) int {
	t.Helper()
	list, err := admin.ClientList(t.Context()).Result()
	if err != nil {
		t.Fatalf("CLIENT LIST: %v", err)
	}
	killed := 0
	for line := range strings.Lines(list) {
		fields := map[string]string{}
		for f := range strings.FieldsSeq(line) {
			k, v, _ := strings.Cut(f, "=")
			fields[k] = v
		}
		if fields["name"] != name || fields["sub"] == "0" {
			continue
		}
		if err := admin.ClientKillByFilter(t.Context(), "ID", fields["id"]).Err(); err != nil {
			t.Fatalf("CLIENT KILL ID %s: %v", fields["id"], err)
		}
		killed++
	}
	return killed
}

// With Redis gone, writes still succeed and evict locally, Subscribe
// answers an error, and Run keeps retrying until it is stopped.
func TestBusDown(t *testing.T) {
	client, err := tgredis.NewClient("redis://127.0.0.1:1/", tgredis.ClientOptions{MaxRetries: -1})
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { client.Close() })
	bus := cache.NewRedisBus(client, "nowhere")

	if stop, err := bus.Subscribe(t.Context(), func(string) {}); err == nil {
		stop()
		t.Fatal("Subscribe with Redis down: no error")
	}

	s := newSetup(t, sqltest.SQLite(t), cache.Options{TTL: time.Hour, Bus: bus})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { s.cache.Run(ctx); close(done) }()

	mustGetClient(t, s.cache, s.f.client.ID)
	if _, err := s.cache.UpdateClient(t.Context(), s.f.client.ID, func(c *storage.Client) error { c.Name = "changed"; return nil }); err != nil {
		t.Fatalf("UpdateClient with the bus down: %v", err)
	}
	if got := mustGetClient(t, s.cache, s.f.client.ID); got.Name != "changed" {
		t.Errorf("GetClient after a write with the bus down: name %q, want %q", got.Name, "changed")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// Messages on the bus evict what they name; an unknown one flushes.
func TestBusMessages(t *testing.T) {
	client, prefix := redistest.New(t)
	channel := prefix + "cache"
	bus := cache.NewRedisBus(client, channel)
	s := newSetup(t, sqltest.SQLite(t), cache.Options{TTL: time.Hour, Bus: bus})
	run(t, s.cache)
	waitSubscribers(t, client, channel, 1)

	ctx := t.Context()
	tests := []struct {
		msg     string
		evicted func() bool // reads once and reports whether it was re-read
	}{
		{"u:" + strconv.FormatInt(s.f.user.ID, 10), func() bool {
			n := s.inner.users.Load()
			_, _ = s.cache.GetUser(ctx, s.f.user.ID)
			return s.inner.users.Load() > n
		}},
		{"c:" + strconv.FormatInt(s.f.client.ID, 10), func() bool {
			n := s.inner.clients.Load()
			_, _ = s.cache.GetClient(ctx, s.f.client.ID)
			return s.inner.clients.Load() > n
		}},
		{"a:*", func() bool {
			n := s.inner.subtree.Load()
			_, _ = s.cache.AccountInSubtree(ctx, s.f.root.ID, s.f.child.ID)
			return s.inner.subtree.Load() > n
		}},
		{"c:*", func() bool {
			n := s.inner.clients.Load()
			_, _ = s.cache.GetClient(ctx, s.f.client.ID)
			return s.inner.clients.Load() > n
		}},
		{"something new", func() bool {
			n := s.inner.active.Load()
			_, _ = s.cache.AccountActive(ctx, s.f.child.ID)
			return s.inner.active.Load() > n
		}},
	}
	for _, tt := range tests {
		settle(t, s.cache, s.inner, s.f)
		if err := bus.Publish(ctx, tt.msg); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		if _, ok := eventually(time.Second, tt.evicted); !ok {
			t.Errorf("message %q: entry not evicted", tt.msg)
		}
	}
}
