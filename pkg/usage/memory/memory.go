// Package memory is the in-process usage.Counter and usage.MinuteReader of
// the embedded default: the per-minute counts of every root account, kept
// for usage.CountTTL like the Redis hashes, in bounded memory.
package memory

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tollgate/tollgate/pkg/usage"
)

var (
	_ usage.Counter      = (*Counts)(nil)
	_ usage.MinuteReader = (*Counts)(nil)
)

// minuteKey names one root account's minute.
type minuteKey struct {
	root   int64
	minute int64 // Unix minutes
}

// field names one count of a minute.
type field struct {
	credentialID int64
	class        string
	outcome      string
}

// Counts holds per-minute counts in process. It is safe for concurrent
// use.
type Counts struct {
	now func() time.Time

	mu      sync.Mutex
	minutes map[minuteKey]map[field]int64
	oldest  int64 // the oldest minute that may be held, for trimming
}

// New returns an empty Counts; now is the clock minutes expire by
// (time.Now when nil).
func New(now func() time.Time) *Counts {
	if now == nil {
		now = time.Now
	}
	return &Counts{now: now, minutes: make(map[minuteKey]map[field]int64)}
}

// Add implements usage.Counter.
func (c *Counts) Add(_ context.Context, root int64, n usage.Count) error {
	if n.N <= 0 {
		return nil
	}
	k := minuteKey{root: root, minute: n.Minute.Unix() / 60}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.trimLocked()
	m := c.minutes[k]
	if m == nil {
		m = make(map[field]int64)
		c.minutes[k] = m
	}
	m[field{credentialID: n.CredentialID, class: n.Class, outcome: n.Outcome}] += n.N
	return nil
}

// ReadMinute implements usage.MinuteReader: the counts ordered by
// credential, class and outcome.
func (c *Counts) ReadMinute(_ context.Context, root int64, minute time.Time) ([]usage.Count, error) {
	minute = minute.UTC().Truncate(time.Minute)
	c.mu.Lock()
	m := c.minutes[minuteKey{root: root, minute: minute.Unix() / 60}]
	out := make([]usage.Count, 0, len(m))
	for f, n := range m {
		out = append(out, usage.Count{Minute: minute, CredentialID: f.credentialID, Class: f.class, Outcome: f.outcome, N: n})
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b usage.Count) int {
		if d := cmp.Compare(a.CredentialID, b.CredentialID); d != 0 {
			return d
		}
		if d := strings.Compare(a.Class, b.Class); d != 0 {
			return d
		}
		return strings.Compare(a.Outcome, b.Outcome)
	})
	return out, nil
}

// trimLocked drops the minutes older than usage.CountTTL, at most once a
// minute. c.mu is held.
func (c *Counts) trimLocked() {
	oldest := c.now().Add(-usage.CountTTL).Unix() / 60
	if oldest <= c.oldest {
		return
	}
	c.oldest = oldest
	for k := range c.minutes {
		if k.minute < oldest {
			delete(c.minutes, k)
		}
	}
}
