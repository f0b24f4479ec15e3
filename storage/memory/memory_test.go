package memory

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/storage/conformance"
)

func TestConformance(t *testing.T) {
	conformance.RunTokensWithClock(t, func(t *testing.T, now func() time.Time) storage.Tokens {
		return New(Options{Now: now})
	})
}

func TestConformanceRealClock(t *testing.T) {
	conformance.RunTokens(t, func(t *testing.T) storage.Tokens {
		return New(Options{})
	})
}

// clock is a fake clock for the tests of this file.
type clock struct{ now atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.now.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.now.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.now.Add(int64(d)) }

func token(i int, now time.Time, lifetime time.Duration) storage.Token {
	return storage.Token{
		Signature: fmt.Sprintf("sig-%d", i),
		RequestID: fmt.Sprintf("req-%d", i),
		ClientID:  1,
		IssuedAt:  now,
		ExpiresAt: now.Add(lifetime),
	}
}

func TestExpiredTokensAreRemoved(t *testing.T) {
	c := newClock()
	s := New(Options{Now: c.Now})
	for i := range 100 {
		if err := s.CreateToken(t.Context(), token(i, c.Now(), time.Duration(i+1)*time.Second)); err != nil {
			t.Fatalf("CreateToken: %v", err)
		}
	}
	tests := []struct {
		name    string
		advance time.Duration
		want    int // tokens left after one more create
	}{
		{"none expired", 0, 101},
		{"half expired", 50 * time.Second, 51},
		{"all expired", time.Hour, 1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.Advance(tt.advance)
			// A long-lived token, so that it never counts as expired.
			if err := s.CreateToken(t.Context(), token(1000+i, c.Now(), 24*time.Hour)); err != nil {
				t.Fatalf("CreateToken: %v", err)
			}
			if got := s.Len(); got != tt.want+i {
				t.Errorf("Len: got %d, want %d", got, tt.want+i)
			}
			s.mu.RLock()
			requests, queued := len(s.requests), len(s.expiries)
			s.mu.RUnlock()
			if requests != tt.want+i {
				t.Errorf("indexed requests: got %d, want %d", requests, tt.want+i)
			}
			if queued != tt.want+i {
				t.Errorf("queued expiries: got %d, want %d", queued, tt.want+i)
			}
		})
	}
}

func TestMaxTokens(t *testing.T) {
	c := newClock()
	s := New(Options{Now: c.Now, MaxTokens: 3})
	for i := range 3 {
		if err := s.CreateToken(t.Context(), token(i, c.Now(), time.Minute)); err != nil {
			t.Fatalf("CreateToken %d: %v", i, err)
		}
	}
	if err := s.CreateToken(t.Context(), token(3, c.Now(), time.Minute)); !errors.Is(err, ErrFull) {
		t.Fatalf("CreateToken over the cap: got error %v, want ErrFull", err)
	}
	if err := s.DeleteToken(t.Context(), "sig-0"); err != nil {
		t.Fatalf("DeleteToken: %v", err)
	}
	if err := s.CreateToken(t.Context(), token(3, c.Now(), time.Minute)); err != nil {
		t.Fatalf("CreateToken after a delete: got error %v, want nil", err)
	}
	c.Advance(time.Minute)
	if err := s.CreateToken(t.Context(), token(4, c.Now(), time.Minute)); err != nil {
		t.Fatalf("CreateToken after expiry: got error %v, want nil", err)
	}
	if got, want := s.Len(), 1; got != want {
		t.Errorf("Len: got %d, want %d", got, want)
	}
}

// Deleting long-lived tokens leaves stale queue entries; they must not pile
// up.
func TestExpiryQueueStaysBounded(t *testing.T) {
	c := newClock()
	s := New(Options{Now: c.Now})
	const n = 10_000
	for i := range n {
		if err := s.CreateToken(t.Context(), token(i, c.Now(), time.Hour)); err != nil {
			t.Fatalf("CreateToken: %v", err)
		}
		if err := s.DeleteToken(t.Context(), fmt.Sprintf("sig-%d", i)); err != nil {
			t.Fatalf("DeleteToken: %v", err)
		}
	}
	s.mu.RLock()
	queued := len(s.expiries)
	s.mu.RUnlock()
	if limit := 2*s.Len() + 1024 + 1; queued > limit {
		t.Errorf("queued expiries: got %d, want at most %d", queued, limit)
	}
}

func TestPing(t *testing.T) {
	if err := New(Options{}).Ping(t.Context()); err != nil {
		t.Errorf("Ping: got %v, want nil", err)
	}
}

func BenchmarkCreateGetToken(b *testing.B) {
	s := New(Options{})
	now := time.Now()
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(n.Add(1))
			tok := token(i, now, time.Hour)
			if err := s.CreateToken(b.Context(), tok); err != nil {
				b.Fatal(err)
			}
			if _, err := s.GetToken(b.Context(), tok.Signature); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestOneTimeIDsConformance(t *testing.T) {
	conformance.RunOneTimeIDs(t, func(_ *testing.T, clock *conformance.Clock) storage.OneTimeIDs {
		return NewOneTimeIDs(OneTimeOptions{Now: clock.Now})
	})
}
