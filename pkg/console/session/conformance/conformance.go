// Package conformance is the test suite every session.Store backend must
// pass. A backend's test calls Run with a constructor; the suite owns the
// cases. Only expiry needs time to pass: the backend's Clock advances by a
// few hundred milliseconds, so a backend on real time (Redis) sleeps
// briefly.
package conformance

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/console/session"
)

// Clock is the time a Store under test expires sessions by.
type Clock interface {
	// Advance lets at least d pass for the Store.
	Advance(d time.Duration)
}

// FakeClock moves only when told to; inject its Now into the Store.
type FakeClock struct {
	mu  sync.Mutex
	now time.Time
}

// Now answers the fake time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now.IsZero() {
		c.now = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return c.now
}

// Advance moves the fake time forward by d.
func (c *FakeClock) Advance(d time.Duration) {
	c.Now()
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// RealClock is the wall clock: Advance sleeps.
type RealClock struct{}

// Advance sleeps d.
func (RealClock) Advance(d time.Duration) { time.Sleep(d) }

// Run runs the suite on stores made by newStore, a fresh one per case.
func Run(t *testing.T, newStore func(t *testing.T) (session.Store, Clock)) {
	sample := session.Session{UserID: 7, AccountID: 3, CSRF: "csrf-token", Sent: "form-id",
		CreatedAt: time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC), LastSeen: time.Date(2025, 1, 1, 10, 5, 0, 0, time.UTC)}

	t.Run("create get delete", func(t *testing.T) {
		s, _ := newStore(t)
		ctx := t.Context()
		key := session.Key("cookie-1")
		if _, err := s.Get(ctx, key); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("Get of an unknown key: err = %v, want ErrNotFound", err)
		}
		if err := s.Create(ctx, key, sample, time.Hour); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if !equal(got, sample) {
			t.Errorf("Get = %+v, want %+v", got, sample)
		}
		if _, err := s.Get(ctx, session.Key("cookie-2")); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Get of another key: err = %v, want ErrNotFound", err)
		}
		if err := s.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, key); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Get after Delete: err = %v, want ErrNotFound", err)
		}
		if err := s.Delete(ctx, key); err != nil {
			t.Errorf("Delete of an unknown key: %v", err)
		}
	})

	t.Run("update", func(t *testing.T) {
		s, _ := newStore(t)
		ctx := t.Context()
		key := session.Key("cookie-u")
		if err := s.Update(ctx, key, sample, time.Hour); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("Update of an unknown key: err = %v, want ErrNotFound", err)
		}
		if _, err := s.Get(ctx, key); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("Update of an unknown key created it: err = %v", err)
		}
		if err := s.Create(ctx, key, sample, time.Hour); err != nil {
			t.Fatal(err)
		}
		next := sample
		next.AccountID, next.LastSeen = 9, sample.LastSeen.Add(time.Minute)
		if err := s.Update(ctx, key, next, time.Hour); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Get(ctx, key); err != nil || !equal(got, next) {
			t.Errorf("Get after Update = %+v, %v; want %+v", got, err, next)
		}
		if err := s.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		if err := s.Update(ctx, key, next, time.Hour); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Update after Delete: err = %v, want ErrNotFound (a deleted session stays deleted)", err)
		}
	})

	t.Run("expiry", func(t *testing.T) {
		s, clock := newStore(t)
		ctx := t.Context()
		short, long := session.Key("short"), session.Key("long")
		if err := s.Create(ctx, short, sample, 200*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if err := s.Create(ctx, long, sample, time.Hour); err != nil {
			t.Fatal(err)
		}
		// An update renews the lifetime it is given.
		if err := s.Update(ctx, long, sample, 200*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if err := s.Update(ctx, long, sample, time.Hour); err != nil {
			t.Fatal(err)
		}
		clock.Advance(400 * time.Millisecond)
		if _, err := s.Get(ctx, short); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Get after the TTL: err = %v, want ErrNotFound", err)
		}
		if err := s.Update(ctx, short, sample, time.Hour); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Update after the TTL: err = %v, want ErrNotFound", err)
		}
		if _, err := s.Get(ctx, long); err != nil {
			t.Errorf("Get of a renewed session: %v", err)
		}
	})

	t.Run("keys are independent", func(t *testing.T) {
		s, _ := newStore(t)
		ctx := t.Context()
		a, b := sample, sample
		b.UserID, b.CSRF = 8, "other"
		if err := s.Create(ctx, session.Key("a"), a, time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := s.Create(ctx, session.Key("b"), b, time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, session.Key("a")); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Get(ctx, session.Key("b")); err != nil || !equal(got, b) {
			t.Errorf("Get b = %+v, %v; want %+v", got, err, b)
		}
	})
}

func equal(a, b session.Session) bool {
	return a.UserID == b.UserID && a.AccountID == b.AccountID && a.CSRF == b.CSRF && a.Sent == b.Sent &&
		a.CreatedAt.Equal(b.CreatedAt) && a.LastSeen.Equal(b.LastSeen)
}
