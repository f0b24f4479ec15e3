package redis_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/storage/conformance"
	tgredis "github.com/tollgate/tollgate/storage/redis"
	"github.com/tollgate/tollgate/storage/redis/redistest"
)

// TestCluster runs the store on a Redis Cluster of three local masters:
// the conformance suite (every script touches the keys of one hash slot, or
// Redis refuses it with CROSSSLOT), and the spreading of tokens over the
// masters.
func TestCluster(t *testing.T) {
	addrs := redistest.StartCluster(t)
	client, err := tgredis.NewUniversalClient(tgredis.Topology{Addrs: addrs[:1]}, tgredis.ClientOptions{})
	if err != nil {
		t.Fatalf("NewUniversalClient: %v", err)
	}
	t.Cleanup(func() { _ = client.Close() })
	if _, ok := client.(*goredis.ClusterClient); !ok {
		t.Fatalf("NewUniversalClient of a topology without a master name: got %T, want *redis.ClusterClient", client)
	}

	t.Run("KeySlot", func(t *testing.T) {
		keys := []string{"", "a", "123456789", "tg:{0}t:x", "{user1000}.following", "foo{}{bar}", "foo{{bar}}zap",
			"foo{bar}{zap}", "{", "}{", "tg:{", "\x00\xff{\x80}", strings.Repeat("k", 300)}
		for _, tag := range tgredis.ShardTags(tgredis.ClusterShards) {
			keys = append(keys, "tg:{"+tag+"}h")
		}
		for _, key := range keys {
			want, err := client.ClusterKeySlot(t.Context(), key).Result()
			if err != nil {
				t.Fatalf("CLUSTER KEYSLOT %q: %v", key, err)
			}
			if got := tgredis.KeySlot(key); int64(got) != want {
				t.Errorf("KeySlot(%q): got %d, want %d (CLUSTER KEYSLOT)", key, got, want)
			}
		}
	})

	t.Run("Conformance", func(t *testing.T) {
		conformance.RunTokens(t, func(t *testing.T) storage.Tokens {
			s := tgredis.New(client, tgredis.Options{KeyPrefix: "tgtest:" + t.Name() + ":"})
			if got := s.Shards(); got != tgredis.ClusterShards {
				t.Fatalf("Shards on a cluster client: got %d, want %d", got, tgredis.ClusterShards)
			}
			return s
		})
	})

	// The shards' slots are spread evenly, so each of the three masters,
	// which own a third of the slots each, holds about a third of the
	// tokens.
	t.Run("Spread", func(t *testing.T) {
		prefix := "tgtest:spread:"
		s := tgredis.New(client, tgredis.Options{KeyPrefix: prefix})
		const n = 3000
		now := time.Now()
		for i := range n {
			if err := s.CreateToken(t.Context(), typicalToken(now, i)); err != nil {
				t.Fatalf("CreateToken: %v", err)
			}
		}
		var (
			mu     sync.Mutex
			counts []int
		)
		err := client.(*goredis.ClusterClient).ForEachMaster(t.Context(), func(ctx context.Context, c *goredis.Client) error {
			keys, err := redistest.Keys(ctx, c, prefix)
			mu.Lock()
			defer mu.Unlock()
			tokens := 0
			for _, k := range keys {
				if strings.Contains(k, "}t:") {
					tokens++
				}
			}
			counts = append(counts, tokens)
			return err
		})
		if err != nil {
			t.Fatalf("count keys: %v", err)
		}
		t.Logf("tokens per master: %v", counts)
		if len(counts) != 3 {
			t.Fatalf("masters: got %d, want 3", len(counts))
		}
		for _, c := range counts {
			// 16 shards over 3 masters: 5 or 6 each, so 31% to 38% of
			// the tokens, and some noise.
			if c < n/4 || c > n/2 {
				t.Errorf("tokens per master %v: want each between %d and %d", counts, n/4, n/2)
			}
		}
	})

	// A rooted token's record shares its root's slot with the meter's
	// keys, so that one script reads the record and decides.
	t.Run("GetTokenThen", func(t *testing.T) {
		prefix := "tgtest:gated:"
		s := tgredis.New(client, tgredis.Options{KeyPrefix: prefix})
		if got, want := tgredis.KeySlot(s.TokenKey(storage.Rooted(12, "x"))), tgredis.KeySlot("tg:r:{a12}:c:1:default"); got != want {
			t.Errorf("slot of a rooted token's key: got %d, want %d (the meter's keys of the root)", got, want)
		}
		testGetTokenThen(t, s, client, prefix)
	})

	t.Run("Ping", func(t *testing.T) {
		if err := tgredis.New(client, tgredis.Options{}).Ping(t.Context()); err != nil {
			t.Errorf("Ping: %v", err)
		}
	})
}

// TestShardTags pins down the tags: they are part of the key layout, and
// their slots are spread evenly.
func TestShardTags(t *testing.T) {
	if got := tgredis.ShardTags(1); len(got) != 1 || got[0] != "0" {
		t.Errorf("ShardTags(1): got %q, want [0]", got)
	}
	for _, n := range []int{1, 2, 3, tgredis.ClusterShards, 100, tgredis.MaxShards} {
		tags := tgredis.ShardTags(n)
		seen := map[string]bool{}
		for i, tag := range tags {
			if seen[tag] {
				t.Errorf("ShardTags(%d): %q twice", n, tag)
			}
			seen[tag] = true
			slot := tgredis.KeySlot("{" + tag + "}")
			if lo, hi := i*16384/n, (i+1)*16384/n; slot < lo || slot >= hi {
				t.Errorf("ShardTags(%d)[%d] = %q: slot %d, want in [%d, %d)", n, i, tag, slot, lo, hi)
			}
		}
	}
	if got := fmt.Sprint(tgredis.ShardTags(tgredis.ClusterShards)); got != clusterTags {
		t.Errorf("ShardTags(%d): got %s, want %s (changing them loses every token)", tgredis.ClusterShards, got, clusterTags)
	}
}

// clusterTags are the tags of the ClusterShards shards.
const clusterTags = "[10 3 1a b 11 2 1d c 12 1 1c d 13 0 1b a]"

// TestSentinel runs the conformance suite through a Sentinel: the client
// asks it for the master, authenticating to both.
func TestSentinel(t *testing.T) {
	sentinel := redistest.StartSentinel(t)
	client, err := tgredis.NewUniversalClient(tgredis.Topology{
		Addrs:            []string{sentinel.Addr},
		MasterName:       sentinel.MasterName,
		Password:         sentinel.Password,
		SentinelPassword: sentinel.Password,
	}, tgredis.ClientOptions{})
	if err != nil {
		t.Fatalf("NewUniversalClient: %v", err)
	}
	t.Cleanup(func() { _ = client.Close() })
	conformance.RunTokens(t, func(t *testing.T) storage.Tokens {
		s := tgredis.New(client, tgredis.Options{KeyPrefix: "tgtest:" + t.Name() + ":"})
		if got := s.Shards(); got != 1 {
			t.Fatalf("Shards on a Sentinel client: got %d, want 1", got)
		}
		return s
	})
	// The client talks to the master the Sentinel names.
	info, err := client.Info(t.Context(), "server").Result()
	if err != nil {
		t.Fatalf("INFO: %v", err)
	}
	_, port, _ := strings.Cut(sentinel.MasterAddr, ":")
	if !strings.Contains(info, "tcp_port:"+port) {
		t.Errorf("INFO server of the client's server: want tcp_port:%s, got\n%s", port, info)
	}
}

func TestNewUniversalClient(t *testing.T) {
	t.Run("sentinel", func(t *testing.T) {
		client, err := tgredis.NewUniversalClient(tgredis.Topology{
			Addrs: []string{"10.0.0.1:26379", "10.0.0.2:26379"}, MasterName: "mymaster",
			Password: "s3cret", SentinelPassword: "s3cret2",
		}, tgredis.ClientOptions{ReadTimeout: 2 * time.Second, PoolSize: 7})
		if err != nil {
			t.Fatalf("got error %v, want nil", err)
		}
		t.Cleanup(func() { _ = client.Close() })
		c, ok := client.(*goredis.Client)
		if !ok {
			t.Fatalf("got %T, want *redis.Client (a failover client)", client)
		}
		got := c.Options()
		if got.DialTimeout != tgredis.DefaultDialTimeout || got.ReadTimeout != 2*time.Second ||
			got.PoolTimeout != tgredis.DefaultPoolTimeout || got.MaxRetries != tgredis.DefaultMaxRetries ||
			got.PoolSize != 7 || got.Password != "s3cret" || !got.ContextTimeoutEnabled {
			t.Errorf("options: got dial %s read %s pool timeout %s retries %d pool %d context timeouts %t",
				got.DialTimeout, got.ReadTimeout, got.PoolTimeout, got.MaxRetries, got.PoolSize, got.ContextTimeoutEnabled)
		}
	})
	t.Run("cluster", func(t *testing.T) {
		client, err := tgredis.NewUniversalClient(tgredis.Topology{Addrs: []string{"10.0.0.1:6379"}, TLS: true},
			tgredis.ClientOptions{WriteTimeout: time.Second})
		if err != nil {
			t.Fatalf("got error %v, want nil", err)
		}
		t.Cleanup(func() { _ = client.Close() })
		c, ok := client.(*goredis.ClusterClient)
		if !ok {
			t.Fatalf("got %T, want *redis.ClusterClient", client)
		}
		got := c.Options()
		if got.WriteTimeout != time.Second || got.ReadTimeout != tgredis.DefaultReadTimeout ||
			got.TLSConfig == nil || got.TLSConfig.MinVersion != tls.VersionTLS12 || !got.ContextTimeoutEnabled {
			t.Errorf("options: got write %s read %s TLS %v", got.WriteTimeout, got.ReadTimeout, got.TLSConfig)
		}
	})
	for _, tt := range []struct {
		name string
		top  tgredis.Topology
	}{
		{"no addresses", tgredis.Topology{Password: "s3cret"}},
		{"no port", tgredis.Topology{Addrs: []string{"10.0.0.1"}, Password: "s3cret"}},
		{"port 0", tgredis.Topology{Addrs: []string{"10.0.0.1:0"}, Password: "s3cret"}},
		{"no host", tgredis.Topology{Addrs: []string{":6379"}, Password: "s3cret"}},
		{"sentinel password without master", tgredis.Topology{Addrs: []string{"10.0.0.1:6379"}, SentinelPassword: "s3cret"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			client, err := tgredis.NewUniversalClient(tt.top, tgredis.ClientOptions{})
			if err == nil {
				_ = client.Close()
				t.Fatal("got nil error, want an error")
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q: want no password in it", err)
			}
		})
	}
}

// TestBytesPerTokenCluster measures what TestBytesPerToken measures on a
// private Redis Cluster of three masters: used_memory summed over them.
// Cluster mode keeps every key in its slot's index too, so a token costs
// more than on a single server.
func TestBytesPerTokenCluster(t *testing.T) {
	n := memoryTestTokens(t)
	client, _ := redistest.NewCluster(t)
	cc := client.(*goredis.ClusterClient)
	perToken := measureBytesPerToken(t, client, n, func(ctx context.Context) (int64, error) {
		var (
			mu    sync.Mutex
			total int64
		)
		err := cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			used, err := usedMemory(ctx, c)
			mu.Lock()
			defer mu.Unlock()
			total += used
			return err
		})
		return total, err
	})
	if perToken > 300 {
		t.Errorf("used_memory per live token on a cluster: got %.1f bytes, want ≤ 300", perToken)
	}
}

// TestOneTimeIDsConformanceCluster: the single-use ids of client assertions
// and federated tokens on a Redis Cluster (one key per id, SET NX, so any
// slot), through the same conformance suite as a single server.
func TestOneTimeIDsConformanceCluster(t *testing.T) {
	client, prefix := redistest.NewCluster(t)
	var n atomic.Int64
	conformance.RunOneTimeIDs(t, func(t *testing.T, clock *conformance.Clock) storage.OneTimeIDs {
		return tgredis.NewOneTimeIDs(client, prefix+"jti"+strconv.FormatInt(n.Add(1), 10)+":", clock.Now)
	})
}
