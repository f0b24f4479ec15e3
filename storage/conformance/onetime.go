package conformance

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// Clock is a settable clock shared by a store and its test.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// RunOneTimeIDs tests a storage.OneTimeIDs whose clock is the given one.
func RunOneTimeIDs(t *testing.T, newStore func(t *testing.T, clock *Clock) storage.OneTimeIDs) {
	start := time.Now().Truncate(time.Second)
	t.Run("Once", func(t *testing.T) {
		clock := NewClock(start)
		s := newStore(t, clock)
		if err := s.UseOnce(t.Context(), "a", start.Add(time.Minute)); err != nil {
			t.Fatalf("first UseOnce: %v", err)
		}
		if err := s.UseOnce(t.Context(), "a", start.Add(time.Hour)); !errors.Is(err, storage.ErrAlreadyExists) {
			t.Fatalf("second UseOnce: got %v, want ErrAlreadyExists", err)
		}
		if err := s.UseOnce(t.Context(), "b", start.Add(time.Minute)); err != nil {
			t.Fatalf("UseOnce of another id: %v", err)
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		s := newStore(t, NewClock(start))
		var ok atomic.Int32
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				err := s.UseOnce(t.Context(), "raced", start.Add(time.Minute))
				switch {
				case err == nil:
					ok.Add(1)
				case !errors.Is(err, storage.ErrAlreadyExists):
					t.Errorf("UseOnce: %v", err)
				}
			})
		}
		wg.Wait()
		if got := ok.Load(); got != 1 {
			t.Fatalf("concurrent uses accepted: got %d, want 1", got)
		}
	})
	t.Run("Expiry", func(t *testing.T) {
		clock := NewClock(start)
		s := newStore(t, clock)
		if err := s.UseOnce(t.Context(), "short", start.Add(2*time.Second)); err != nil {
			t.Fatalf("UseOnce: %v", err)
		}
		// Redis expires keys in its own time: wait for it, as little as
		// the test can.
		time.Sleep(2100 * time.Millisecond)
		clock.Advance(3 * time.Second)
		if err := s.UseOnce(t.Context(), "short", clock.Now().Add(time.Minute)); err != nil {
			t.Fatalf("UseOnce after expiry: got %v, want nil", err)
		}
	})
}
