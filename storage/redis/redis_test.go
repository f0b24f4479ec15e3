package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/storage/conformance"
	tgredis "github.com/tollgate/tollgate/storage/redis"
	"github.com/tollgate/tollgate/storage/redis/redistest"
)

func newStore(t testing.TB) (*tgredis.Store, goredis.UniversalClient, string) {
	client, prefix := redistest.New(t)
	return tgredis.New(client, tgredis.Options{KeyPrefix: prefix}), client, prefix
}

func TestConformance(t *testing.T) {
	conformance.RunTokens(t, func(t *testing.T) storage.Tokens {
		s, _, _ := newStore(t)
		return s
	})
}

// typicalToken is the token the memory target (≤ 250 bytes of Redis per
// live token) is measured with.
func typicalToken(now time.Time, i int) storage.Token {
	return storage.Token{
		Signature:  fmt.Sprintf("%043d", i), // as long as a fosite HMAC-SHA256 signature
		RequestID:  fmt.Sprintf("%032x", i),
		ClientID:   123456,
		Generation: 1,
		AccountID:  4321,
		Subject:    "42",
		Username:   "alice",
		GrantType:  "client_credentials",
		Scopes:     []string{"events", "contacts", "reports"},
		IssuedAt:   now,
		ExpiresAt:  now.Add(time.Hour),
	}
}

func TestEveryKeyHasTTL(t *testing.T) {
	s, client, prefix := newStore(t)
	now := time.Now()
	tokens := []storage.Token{typicalToken(now, 1), typicalToken(now, 2), typicalToken(now, 3)}
	tokens[1].RequestID = tokens[0].RequestID // a request with two tokens
	tokens[2].ExpiresAt = now.Add(365 * 24 * time.Hour)
	for _, tok := range tokens {
		if err := s.CreateToken(t.Context(), tok); err != nil {
			t.Fatalf("CreateToken: %v", err)
		}
	}
	if err := s.DeleteToken(t.Context(), tokens[1].Signature); err != nil {
		t.Fatalf("DeleteToken: %v", err)
	}

	keys, err := redistest.Keys(t.Context(), client, prefix)
	if err != nil {
		t.Fatalf("Keys: %v", err)
	}
	if got, want := len(keys), 4; got != want { // 2 tokens, 2 indexes
		t.Errorf("keys: got %d (%q), want %d", got, keys, want)
	}
	for _, key := range keys {
		ttl, err := client.PTTL(t.Context(), key).Result()
		if err != nil {
			t.Fatalf("PTTL %s: %v", key, err)
		}
		if ttl <= 0 {
			t.Errorf("PTTL %s: got %s, want > 0", key, ttl)
		}
	}
}

// The index of a request lives as long as its longest-lived token, and
// forgets tokens that are gone.
func TestRequestIndex(t *testing.T) {
	s, client, prefix := newStore(t)
	now := time.Now()
	long, short, later := typicalToken(now, 1), typicalToken(now, 2), typicalToken(now, 3)
	long.ExpiresAt = now.Add(2 * time.Hour)
	short.ExpiresAt = now.Add(time.Minute)
	short.RequestID, later.RequestID = long.RequestID, long.RequestID
	index := prefix + "r:" + long.RequestID

	for _, tok := range []storage.Token{long, short} {
		if err := s.CreateToken(t.Context(), tok); err != nil {
			t.Fatalf("CreateToken: %v", err)
		}
	}
	ttl, err := client.PTTL(t.Context(), index).Result()
	if err != nil {
		t.Fatalf("PTTL: %v", err)
	}
	if ttl < 119*time.Minute {
		t.Errorf("index PTTL after a short token joined: got %s, want about 2h", ttl)
	}

	if err := s.DeleteToken(t.Context(), long.Signature); err != nil {
		t.Fatalf("DeleteToken: %v", err)
	}
	if err := s.CreateToken(t.Context(), later); err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	value, err := client.Get(t.Context(), index).Result()
	if err != nil {
		t.Fatalf("GET index: %v", err)
	}
	for _, tok := range []storage.Token{short, later} {
		if !strings.Contains(value, tok.Signature) {
			t.Errorf("index %q: want it to hold %s", value, tok.Signature)
		}
	}
	if strings.Contains(value, long.Signature) {
		t.Errorf("index %q: want the deleted %s dropped", value, long.Signature)
	}
	if ttl, err := client.PTTL(t.Context(), index).Result(); err != nil || ttl > 61*time.Minute {
		t.Errorf("index PTTL after the long token went: got %s (error %v), want about 1h", ttl, err)
	}
}

// GetToken answers ErrNotFound once the store's clock passes ExpiresAt, even
// while Redis, on its own clock, still holds the key.
func TestExpiryOnStoreClock(t *testing.T) {
	client, prefix := redistest.New(t)
	var offset atomic.Int64
	s := tgredis.New(client, tgredis.Options{
		KeyPrefix: prefix,
		Now:       func() time.Time { return time.Now().Add(time.Duration(offset.Load())) },
	})
	tok := typicalToken(time.Now(), 1)
	if err := s.CreateToken(t.Context(), tok); err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	if _, err := s.GetToken(t.Context(), tok.Signature); err != nil {
		t.Fatalf("GetToken: got error %v, want nil", err)
	}
	offset.Store(int64(2 * time.Hour))
	if _, err := s.GetToken(t.Context(), tok.Signature); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetToken after the store's clock passed expiry: got error %v, want ErrNotFound", err)
	}
}

func TestCorruptRecordIsNotNotFound(t *testing.T) {
	s, client, prefix := newStore(t)
	if err := client.Set(t.Context(), prefix+"t:bad", "garbage", time.Minute).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	_, err := s.GetToken(t.Context(), "bad")
	if err == nil || errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetToken of a corrupt record: got error %v, want an error other than ErrNotFound", err)
	}
}

// With nothing listening, every method answers an error that is not
// ErrNotFound, and quickly: these are answered as 503, never as an unknown
// token.
func TestOutage(t *testing.T) {
	client, err := tgredis.NewClient("redis://127.0.0.1:1/", tgredis.ClientOptions{})
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { _ = client.Close() })
	s := tgredis.New(client, tgredis.Options{})
	tok := typicalToken(time.Now(), 1)

	tests := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"GetToken", func(ctx context.Context) error { _, err := s.GetToken(ctx, tok.Signature); return err }},
		{"CreateToken", func(ctx context.Context) error { return s.CreateToken(ctx, tok) }},
		{"DeleteToken", func(ctx context.Context) error { return s.DeleteToken(ctx, tok.Signature) }},
		{"RevokeRequest", func(ctx context.Context) error { return s.RevokeRequest(ctx, tok.RequestID) }},
		{"Ping", func(ctx context.Context) error { return s.Ping(ctx) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			err := tt.call(t.Context())
			elapsed := time.Since(start)
			if err == nil || errors.Is(err, storage.ErrNotFound) {
				t.Errorf("got error %v, want an error other than ErrNotFound", err)
			}
			if elapsed > 3*time.Second {
				t.Errorf("answered after %s, want < 3s", elapsed)
			}
		})
	}
}

func TestNewClient(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		opts    tgredis.ClientOptions
		wantErr bool
		want    goredis.Options // fields checked: Network, Addr, DB, timeouts, retries
	}{
		{
			name: "defaults",
			url:  "redis://127.0.0.1:6379/2",
			want: goredis.Options{Network: "tcp", Addr: "127.0.0.1:6379", DB: 2,
				DialTimeout: 500 * time.Millisecond, ReadTimeout: 500 * time.Millisecond,
				WriteTimeout: 500 * time.Millisecond, PoolTimeout: time.Second, MaxRetries: 1},
		},
		{
			name: "options win over the URL",
			url:  "redis://127.0.0.1:6379/?dial_timeout=10s&max_retries=5",
			opts: tgredis.ClientOptions{DialTimeout: time.Second, ReadTimeout: 2 * time.Second,
				WriteTimeout: 3 * time.Second, PoolTimeout: 4 * time.Second, PoolSize: 7, MaxRetries: -1},
			want: goredis.Options{Network: "tcp", Addr: "127.0.0.1:6379",
				DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 3 * time.Second,
				PoolTimeout: 4 * time.Second, PoolSize: 7, MaxRetries: 0}, // go-redis keeps -1 as 0
		},
		{
			name: "unix socket",
			url:  "unix:///run/redis.sock?db=3",
			want: goredis.Options{Network: "unix", Addr: "/run/redis.sock", DB: 3,
				DialTimeout: 500 * time.Millisecond, ReadTimeout: 500 * time.Millisecond,
				WriteTimeout: 500 * time.Millisecond, PoolTimeout: time.Second, MaxRetries: 1},
		},
		{name: "wrong scheme", url: "http://:s3cret@127.0.0.1/", wantErr: true},
		{name: "bad database", url: "redis://:s3cret@127.0.0.1/abc", wantErr: true},
		{name: "unparsable", url: "redis://:s3cret@127.0.0.1:6379/\x7f", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, err := tgredis.NewClient(tt.url, tt.opts)
			if tt.wantErr {
				if err == nil {
					_ = client.Close()
					t.Fatal("got nil error, want an error")
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("error %q: want no password in it", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want nil", err)
			}
			t.Cleanup(func() { _ = client.Close() })
			got := client.(*goredis.Client).Options()
			if got.Network != tt.want.Network || got.Addr != tt.want.Addr || got.DB != tt.want.DB {
				t.Errorf("address: got %s %s db %d, want %s %s db %d",
					got.Network, got.Addr, got.DB, tt.want.Network, tt.want.Addr, tt.want.DB)
			}
			if got.DialTimeout != tt.want.DialTimeout || got.ReadTimeout != tt.want.ReadTimeout ||
				got.WriteTimeout != tt.want.WriteTimeout || got.PoolTimeout != tt.want.PoolTimeout {
				t.Errorf("timeouts: got dial %s read %s write %s pool %s, want dial %s read %s write %s pool %s",
					got.DialTimeout, got.ReadTimeout, got.WriteTimeout, got.PoolTimeout,
					tt.want.DialTimeout, tt.want.ReadTimeout, tt.want.WriteTimeout, tt.want.PoolTimeout)
			}
			if got.MaxRetries != tt.want.MaxRetries {
				t.Errorf("MaxRetries: got %d, want %d", got.MaxRetries, tt.want.MaxRetries)
			}
			if tt.want.PoolSize != 0 && got.PoolSize != tt.want.PoolSize {
				t.Errorf("PoolSize: got %d, want %d", got.PoolSize, tt.want.PoolSize)
			}
		})
	}
}

// TestMemoryPerToken reports the Redis memory a typical token takes in
// production: MEMORY USAGE of its two keys, and the growth of used_memory
// over many tokens, which also counts the expires dictionary and the hash
// tables. The store writes the values; they are measured under key names as
// long as the production ones ("tg:t:<43>", "tg:r:<32>"), cut to fit under
// the test's longer prefix. It reports; the target (≤ 250 bytes) is not
// asserted here.
func TestMemoryPerToken(t *testing.T) {
	s, client, prefix := newStore(t)
	now := time.Now()
	tok := typicalToken(now, 0)
	if err := s.CreateToken(t.Context(), tok); err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	record, err := client.Get(t.Context(), prefix+"t:"+tok.Signature).Bytes()
	if err != nil {
		t.Fatalf("GET token: %v", err)
	}
	index, err := client.Get(t.Context(), prefix+"r:"+tok.RequestID).Bytes()
	if err != nil {
		t.Fatalf("GET index: %v", err)
	}

	// Production key names are len(DefaultKeyPrefix) long before "t:" and
	// "r:"; the test prefix is longer, so the rest is cut by the difference.
	cut := len(prefix) - len(tgredis.DefaultKeyPrefix)
	tokenKey := func(i int) string { return fmt.Sprintf("%st:%0*d", prefix, 43-cut, i) }
	indexKey := func(i int) string { return fmt.Sprintf("%sr:%0*x", prefix, 32-cut, i) }
	write := func(ctx context.Context, p goredis.Pipeliner, i int) {
		p.Set(ctx, tokenKey(i), record, time.Hour)
		p.Set(ctx, indexKey(i), index, time.Hour)
	}
	if _, err := client.Pipelined(t.Context(), func(p goredis.Pipeliner) error {
		write(t.Context(), p, 0)
		return nil
	}); err != nil {
		t.Fatalf("SET: %v", err)
	}
	var total int64
	for _, kv := range []struct {
		name, key string
		value     []byte
	}{
		{"token", tokenKey(0), record},
		{"index", indexKey(0), index},
	} {
		used, err := client.MemoryUsage(t.Context(), kv.key, 0).Result()
		if err != nil {
			t.Fatalf("MEMORY USAGE %s: %v", kv.key, err)
		}
		t.Logf("%s key: name %d bytes, value %d bytes, MEMORY USAGE %d bytes",
			kv.name, len(kv.key), len(kv.value), used)
		total += used
	}
	t.Logf("MEMORY USAGE per token, both keys: %d bytes", total)

	const n = 5000
	before, err := usedMemory(t.Context(), client)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Pipelined(t.Context(), func(p goredis.Pipeliner) error {
		for i := 1; i <= n; i++ {
			write(t.Context(), p, i)
		}
		return nil
	}); err != nil {
		t.Fatalf("SET: %v", err)
	}
	after, err := usedMemory(t.Context(), client)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("used_memory per token over %d tokens: %.0f bytes (approximate: shared Redis, hash tables grow in steps)",
		n, float64(after-before)/n)
}

func usedMemory(ctx context.Context, client goredis.UniversalClient) (int64, error) {
	info, err := client.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("no used_memory in INFO memory")
}

func BenchmarkCreateGetToken(b *testing.B) {
	s, _, _ := newStore(b)
	now := time.Now()
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tok := typicalToken(now, int(n.Add(1)))
			if err := s.CreateToken(b.Context(), tok); err != nil {
				b.Fatal(err)
			}
			if _, err := s.GetToken(b.Context(), tok.Signature); err != nil {
				b.Fatal(err)
			}
		}
	})
}
