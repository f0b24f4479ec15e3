// Package redistest connects tests to a real Redis and cleans up after them.
// It owns the test Redis address (redis://127.0.0.1:6379/, or
// $TOLLGATE_TEST_REDIS_URL) and the rule that tests share that Redis: each
// test gets a key prefix of its own, and only the keys under it are deleted
// when the test ends. Nothing here flushes a database.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	tgredis "github.com/tollgate/tollgate/storage/redis"
)

// DefaultURL is the Redis tests use unless $TOLLGATE_TEST_REDIS_URL names
// another.
const DefaultURL = "redis://127.0.0.1:6379/"

// URL is the test Redis: $TOLLGATE_TEST_REDIS_URL, else DefaultURL.
func URL() string {
	if url := os.Getenv("TOLLGATE_TEST_REDIS_URL"); url != "" {
		return url
	}
	return DefaultURL
}

// New answers a client of the test Redis and a key prefix,
// "tgtest:<random>:", that is the test's alone. When the test ends every key
// under the prefix is deleted and the client closed.
//
// An unreachable Redis skips the test, except under CI=true, where it fails
// it: CI must run the Redis tests, never skip them.
func New(tb testing.TB) (client goredis.UniversalClient, prefix string) {
	tb.Helper()
	url := URL()
	// Generous timeouts: the production ones (500 ms) are for failing fast
	// in front of clients, and on a loaded CI machine a dial to the shared
	// Redis took longer, so that a store failed open and a brute-force test
	// counted one comparison too many. Tests of timeouts and outages build
	// their own clients.
	client, err := tgredis.NewClient(url, tgredis.ClientOptions{
		DialTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, PoolTimeout: 10 * time.Second,
	})
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		if os.Getenv("CI") == "true" {
			tb.Fatalf("redistest: Redis unreachable (set TOLLGATE_TEST_REDIS_URL): %v", err)
		}
		tb.Skipf("redistest: Redis unreachable, skipping (set TOLLGATE_TEST_REDIS_URL): %v", err)
	}

	prefix = Prefix()

	tb.Cleanup(func() {
		// t.Context is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := DeleteKeys(ctx, client, prefix); err != nil {
			tb.Errorf("redistest: delete keys under %s: %v", prefix, err)
		}
		if err := client.Close(); err != nil {
			tb.Errorf("redistest: close: %v", err)
		}
	})
	return client, prefix
}

// Prefix answers a new key prefix, "tgtest:<16 random hex digits>:". Hex only, so the
// prefix holds no glob characters for SCAN MATCH, and no braces that would
// change the hash tags of keys.
func Prefix() string { return "tgtest:" + randomHex(16) + ":" }

// randomHex answers n random hex digits (n even).
func randomHex(n int) string {
	random := make([]byte, n/2)
	_, _ = rand.Read(random) // never fails (crypto/rand)
	return hex.EncodeToString(random)
}

// forEachNode calls fn with client, or on a Cluster with a client of each
// master in turn, as SCAN sees the keys of one server only.
func forEachNode(ctx context.Context, client goredis.UniversalClient, fn func(ctx context.Context, c goredis.UniversalClient) error) error {
	cc, ok := client.(*goredis.ClusterClient)
	if !ok {
		return fn(ctx, client)
	}
	// ForEachMaster calls its function concurrently; fn is called in turn.
	var (
		mu    sync.Mutex
		nodes []*goredis.Client
	)
	err := cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
		mu.Lock()
		defer mu.Unlock()
		nodes = append(nodes, c)
		return nil
	})
	if err != nil {
		return err
	}
	for _, c := range nodes {
		if err := fn(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// Keys answers every key under prefix.
func Keys(ctx context.Context, client goredis.UniversalClient, prefix string) ([]string, error) {
	var keys []string
	err := forEachNode(ctx, client, func(ctx context.Context, c goredis.UniversalClient) error {
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		return iter.Err()
	})
	return keys, err
}

// DeleteKeys deletes every key under prefix, UNLINKing them in batches as
// SCAN finds them, so that a test that wrote a million keys cleans up
// without holding them all or blocking Redis. On a Cluster each key is
// UNLINKed by a command of its own, pipelined: a command may not span hash
// slots there.
func DeleteKeys(ctx context.Context, client goredis.UniversalClient, prefix string) error {
	return forEachNode(ctx, client, func(ctx context.Context, c goredis.UniversalClient) error {
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		batch := make([]string, 0, 1000)
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			var err error
			if c == client {
				err = c.Unlink(ctx, batch...).Err()
			} else {
				_, err = c.Pipelined(ctx, func(p goredis.Pipeliner) error {
					for _, k := range batch {
						p.Unlink(ctx, k)
					}
					return nil
				})
			}
			batch = batch[:0]
			return err
		}
		for iter.Next(ctx) {
			batch = append(batch, iter.Val())
			if len(batch) == cap(batch) {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
		return flush()
	})
}
