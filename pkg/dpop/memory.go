package dpop

import (
	"context"
	"errors"
	"sync"
	"time"
)

// DefaultMaxRemembered bounds a Memory replay store.
const DefaultMaxRemembered = 1 << 18

// ErrFull is returned by Memory when it remembers as many live proofs as
// it may: refusing to decide is safer than forgetting one.
var ErrFull = errors.New("dpop replay store full")

// Memory is the in-process Replay of the embedded default and of tests:
// one instance only.
type Memory struct {
	mu   sync.Mutex
	seen map[string]time.Time
	max  int
	now  func() time.Time
}

var _ Replay = (*Memory)(nil)

// NewMemory returns a Memory remembering at most max live proofs
// (DefaultMaxRemembered when max <= 0), on clock now (nil: time.Now).
func NewMemory(maxRemembered int, now func() time.Time) *Memory {
	if maxRemembered <= 0 {
		maxRemembered = DefaultMaxRemembered
	}
	if now == nil {
		now = time.Now
	}
	return &Memory{seen: map[string]time.Time{}, max: maxRemembered, now: now}
}

// Fresh implements Replay.
func (m *Memory) Fresh(_ context.Context, key string, ttl time.Duration) (bool, error) {
	now := m.now()
	until := now.Add(ttl)
	m.mu.Lock()
	defer m.mu.Unlock()
	if exp, ok := m.seen[key]; ok && now.Before(exp) {
		return false, nil
	}
	if len(m.seen) >= m.max {
		for k, exp := range m.seen {
			if !now.Before(exp) {
				delete(m.seen, k)
			}
		}
		if len(m.seen) >= m.max {
			return false, ErrFull
		}
	}
	m.seen[key] = until
	return true, nil
}
