package memory_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/ratelimit"
	"github.com/tollgate/tollgate/pkg/ratelimit/conformance"
	"github.com/tollgate/tollgate/pkg/ratelimit/memory"
)

func TestConformance(t *testing.T) {
	conformance.Run(t, func(t *testing.T) (ratelimit.Limiter, conformance.Clock) {
		clock := &conformance.FakeClock{}
		return memory.New(memory.Options{Now: clock.Now}), clock
	})
}

// Keys whose buckets have refilled are forgotten as other keys come and go,
// so memory follows the keys active in the last few seconds.
func TestIdleKeysAreDropped(t *testing.T) {
	clock := &conformance.FakeClock{}
	l := memory.New(memory.Options{Now: clock.Now})
	limit := ratelimit.Limit{Rate: 10, Burst: 10} // refills within a second
	for i := range 1000 {
		if _, err := l.Allow(t.Context(), fmt.Sprint("old-", i), limit); err != nil {
			t.Fatal(err)
		}
	}
	if got := l.Len(); got != 1000 {
		t.Fatalf("got %d keys, want 1000", got)
	}
	clock.Advance(time.Second)
	for i := range 1000 {
		if _, err := l.Allow(t.Context(), fmt.Sprint("new-", i%10), limit); err != nil {
			t.Fatal(err)
		}
	}
	if got := l.Len(); got != 10 {
		t.Errorf("after the old keys went idle: got %d keys, want 10", got)
	}
}

// Keys still being limited are not trimmed, however many there are.
func TestBusyKeysAreKept(t *testing.T) {
	clock := &conformance.FakeClock{}
	l := memory.New(memory.Options{Now: clock.Now})
	limit := ratelimit.Limit{Rate: 1, Burst: 1}
	for i := range 500 {
		if _, err := l.Allow(t.Context(), fmt.Sprint("k-", i), limit); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(500 * time.Millisecond)
	for i := range 500 {
		res, err := l.Allow(t.Context(), fmt.Sprint("k-", i), limit)
		if err != nil {
			t.Fatal(err)
		}
		if res.Allowed {
			t.Fatalf("k-%d half a second after its only request: got allowed, want denied", i)
		}
	}
	if got := l.Len(); got != 500 {
		t.Errorf("got %d keys, want 500", got)
	}
}

// Past MaxKeys the least recently used key goes, even if it is not idle.
func TestMaxKeys(t *testing.T) {
	clock := &conformance.FakeClock{}
	l := memory.New(memory.Options{Now: clock.Now, MaxKeys: 3})
	limit := ratelimit.Limit{Rate: 1, Burst: 1}
	for _, key := range []string{"a", "b", "c", "a", "d"} { // "b" is least recently used when "d" comes
		if _, err := l.Allow(t.Context(), key, limit); err != nil {
			t.Fatal(err)
		}
	}
	if got := l.Len(); got != 3 {
		t.Errorf("got %d keys, want 3", got)
	}
	tests := []struct {
		key     string
		allowed bool
	}{
		{"a", false}, {"c", false}, {"d", false},
		{"b", true}, // forgotten, so it starts afresh
	}
	for _, tt := range tests {
		res, err := l.Allow(t.Context(), tt.key, limit)
		if err != nil {
			t.Fatal(err)
		}
		if res.Allowed != tt.allowed {
			t.Errorf("%s: got allowed %v, want %v", tt.key, res.Allowed, tt.allowed)
		}
	}
}

// The bound holds across shards for a large MaxKeys too.
func TestMaxKeysSharded(t *testing.T) {
	clock := &conformance.FakeClock{}
	const maxKeys = 10_000
	l := memory.New(memory.Options{Now: clock.Now, MaxKeys: maxKeys})
	limit := ratelimit.Limit{Rate: 1, Burst: 1}
	for i := range 3 * maxKeys {
		if _, err := l.Allow(t.Context(), fmt.Sprint("k-", i), limit); err != nil {
			t.Fatal(err)
		}
	}
	if got := l.Len(); got > maxKeys || got < maxKeys*9/10 {
		t.Errorf("got %d keys, want at most %d and close to it", got, maxKeys)
	}
}

func BenchmarkAllow(b *testing.B) {
	l := memory.New(memory.Options{})
	limit := ratelimit.Limit{Rate: 1_000_000_000, Burst: 1_000_000}
	ctx := b.Context()
	// A limit never reached: every request is allowed.
	b.Run("one key allowed", func(b *testing.B) {
		for b.Loop() {
			if _, err := l.Allow(ctx, "client:default", limit); err != nil {
				b.Fatal(err)
			}
		}
	})
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprint("client-", i, ":default")
	}
	// The default class's 3/s: most requests are denied, as in a flood.
	limit = ratelimit.Limit{Rate: 3, Burst: 3}
	b.Run("parallel 1024 keys 3 per second", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := l.Allow(ctx, keys[i%len(keys)], limit); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
}
