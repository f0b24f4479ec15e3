// Package memory keeps the per-minute usage counts in process, for the
// embedded default (one instance) and tests: the same contract as the
// Redis counts, each minute kept usage.CountTTL.
package memory

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/tollgate/tollgate/pkg/usage"
)

var (
	_ usage.Counter      = (*Counts)(nil)
	_ usage.MinuteReader = (*Counts)(nil)
	_ usage.BatchCounter = (*Counts)(nil)
	_ usage.BatchReader  = (*Counts)(nil)
	_ usage.RangeReader  = (*Counts)(nil)
)

type minuteKey struct{ root, minute int64 }

type countKey struct {
	credential     int64
	class, outcome string
}

// Counts are usage counts in process. Safe for concurrent use.
type Counts struct {
	now func() time.Time

	mu      sync.Mutex
	minutes map[minuteKey]map[countKey]int64
	swept   int64 // the minute of the last sweep of expired minutes
}

// New returns empty Counts; now is the clock of expiry (time.Now when nil).
func New(now func() time.Time) *Counts {
	if now == nil {
		now = time.Now
	}
	return &Counts{now: now, minutes: map[minuteKey]map[countKey]int64{}}
}

// Add adds c under root.
func (m *Counts) Add(_ context.Context, root int64, c usage.Count) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.add(root, c)
	m.sweep()
	return nil
}

// AddBatch adds every count.
func (m *Counts) AddBatch(_ context.Context, counts []usage.RootCount) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range counts {
		m.add(c.Root, c.Count)
	}
	m.sweep()
	return nil
}

func (m *Counts) add(root int64, c usage.Count) {
	k := minuteKey{root: root, minute: c.Minute.Unix() / 60}
	h := m.minutes[k]
	if h == nil {
		h = map[countKey]int64{}
		m.minutes[k] = h
	}
	h[countKey{credential: c.CredentialID, class: c.Class, outcome: c.Outcome}] += c.N
}

// sweep drops the minutes older than usage.CountTTL, once a minute.
func (m *Counts) sweep() {
	now := m.now().Unix() / 60
	if now == m.swept {
		return
	}
	m.swept = now
	oldest := now - int64(usage.CountTTL/time.Minute)
	for k := range m.minutes {
		if k.minute < oldest {
			delete(m.minutes, k)
		}
	}
}

// ReadMinute returns root's counts of minute.
func (m *Counts) ReadMinute(_ context.Context, root int64, minute time.Time) ([]usage.Count, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.read(root, minute), nil
}

// ReadMinutes returns the counts of minute of every root that has some.
func (m *Counts) ReadMinutes(_ context.Context, roots []int64, minute time.Time) (map[int64][]usage.Count, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[int64][]usage.Count{}
	for _, r := range roots {
		if cs := m.read(r, minute); len(cs) > 0 {
			out[r] = cs
		}
	}
	return out, nil
}

// ReadRange returns root's counts of every minute in [from, to), oldest
// first.
func (m *Counts) ReadRange(_ context.Context, root int64, from, to time.Time) ([]usage.Count, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []usage.Count
	for t := from.UTC().Truncate(time.Minute); t.Before(to); t = t.Add(time.Minute) {
		out = append(out, m.read(root, t)...)
	}
	return out, nil
}

func (m *Counts) read(root int64, minute time.Time) []usage.Count {
	minute = minute.UTC().Truncate(time.Minute)
	h := m.minutes[minuteKey{root: root, minute: minute.Unix() / 60}]
	out := make([]usage.Count, 0, len(h))
	for k, n := range h {
		out = append(out, usage.Count{Minute: minute, CredentialID: k.credential, Class: k.class, Outcome: k.outcome, N: n})
	}
	// In a fixed order (credential, class, outcome), as a reader of a
	// minute expects the same answer twice.
	slices.SortFunc(out, func(a, b usage.Count) int {
		return cmp.Or(cmp.Compare(a.CredentialID, b.CredentialID), cmp.Compare(a.Class, b.Class), cmp.Compare(a.Outcome, b.Outcome))
	})
	return out
}
