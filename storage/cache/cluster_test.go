package cache_test

import (
	"context"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/storage/cache"
	tgredis "github.com/tollgate/tollgate/storage/redis"
	"github.com/tollgate/tollgate/storage/redis/redistest"
)

// TestRedisClusterBus runs the bus on a Redis Cluster of three local
// masters. A Cluster broadcasts PUBLISH to every node, so a subscriber on
// one master hears what is published on any: each instance has its own
// client, as in production, and the invalidation test of two instances
// passes; and a message published on each master in turn reaches a
// subscriber.
func TestRedisClusterBus(t *testing.T) {
	addrs := redistest.StartCluster(t)
	newClient := func() *goredis.ClusterClient {
		c, err := tgredis.NewUniversalClient(tgredis.Topology{Addrs: addrs}, tgredis.ClientOptions{})
		if err != nil {
			t.Fatalf("NewUniversalClient: %v", err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c.(*goredis.ClusterClient)
	}
	admin := newClient()
	channel := redistest.Prefix() + "cache"

	t.Run("TwoInstances", func(t *testing.T) {
		busA, busB := cache.NewRedisBus(newClient(), channel), cache.NewRedisBus(newClient(), channel)
		testTwoInstances(t, busA, busB, func() { waitClusterSubscribers(t, admin, channel, 2) })
	})

	t.Run("EveryMaster", func(t *testing.T) {
		channel := channel + ":every"
		got := make(chan string, 16)
		stop, err := cache.NewRedisBus(newClient(), channel).Subscribe(t.Context(), func(msg string) { got <- msg })
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		t.Cleanup(stop)
		waitClusterSubscribers(t, admin, channel, 1)
		var (
			mu      sync.Mutex
			masters []string
		)
		if err := admin.ForEachMaster(t.Context(), func(ctx context.Context, c *goredis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			masters = append(masters, c.Options().Addr)
			return nil
		}); err != nil {
			t.Fatalf("masters: %v", err)
		}
		if len(masters) != 3 {
			t.Fatalf("masters: got %q, want 3", masters)
		}
		for _, addr := range masters {
			node := goredis.NewClient(&goredis.Options{Addr: addr})
			err := cache.NewRedisBus(node, channel).Publish(t.Context(), "from "+addr)
			_ = node.Close()
			if err != nil {
				t.Fatalf("Publish on %s: %v", addr, err)
			}
			select {
			case msg := <-got:
				if msg != "from "+addr {
					t.Errorf("published on %s: got %q, want %q", addr, msg, "from "+addr)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("published on %s: nothing received after 5s", addr)
			}
		}
	})
}

// waitClusterSubscribers waits until channel has n subscribers over the
// whole cluster: PUBSUB NUMSUB counts those of one node.
func waitClusterSubscribers(t *testing.T, admin *goredis.ClusterClient, channel string, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var (
			mu    sync.Mutex
			total int64
		)
		err := admin.ForEachShard(t.Context(), func(ctx context.Context, c *goredis.Client) error {
			got, err := c.PubSubNumSub(ctx, channel).Result()
			mu.Lock()
			defer mu.Unlock()
			total += got[channel]
			return err
		})
		if err != nil {
			t.Fatalf("PUBSUB NUMSUB: %v", err)
		}
		if total >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d subscribers after 5s, want %d", channel, total, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
