package expiring_test

import (
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/expiring"
)

// TestEvictOne: one entry goes, of those it looked at the one expiring
// first; over many evictions from a table filled in order, the entries
// that go are mostly the oldest; an empty table is left alone.
func TestEvictOne(t *testing.T) {
	expires := func(v time.Time) time.Time { return v }
	expiring.EvictOne(map[int]time.Time{}, expires)

	start := time.Now()
	m := map[int]time.Time{}
	for i := range 1000 {
		m[i] = start.Add(time.Duration(i) * time.Second)
	}
	evicted := 0
	for range 500 {
		before := len(m)
		expiring.EvictOne(m, expires)
		if len(m) != before-1 {
			t.Fatalf("EvictOne left %d of %d entries, want one fewer", len(m), before)
		}
		evicted++
	}
	// Each eviction takes the oldest of eight random entries, so what
	// remains is mostly the newer half: far more of it than of the older.
	newer := 0
	for i := range m {
		if i >= 500 {
			newer++
		}
	}
	if newer < 400 {
		t.Errorf("after %d evictions %d of the newer 500 entries remain, want most of them (the older go first)", evicted, newer)
	}
}
