package memory_test

import (
	"errors"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/console/session"
	"github.com/tollgate/tollgate/pkg/console/session/conformance"
	"github.com/tollgate/tollgate/pkg/console/session/memory"
)

func TestConformance(t *testing.T) {
	conformance.Run(t, func(t *testing.T) (session.Store, conformance.Clock) {
		c := &conformance.FakeClock{}
		return memory.New(memory.Options{Now: c.Now}), c
	})
}

// The store is bounded: when full of live sessions it refuses new ones,
// and expired ones make room.
func TestMaxSessions(t *testing.T) {
	c := &conformance.FakeClock{}
	s := memory.New(memory.Options{MaxSessions: 2, Now: c.Now})
	ctx := t.Context()
	if err := s.Create(ctx, "a", session.Session{}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, "b", session.Session{}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, "c", session.Session{}, time.Hour); !errors.Is(err, memory.ErrFull) {
		t.Fatalf("Create past the bound: err = %v, want ErrFull", err)
	}
	c.Advance(2 * time.Minute)
	if err := s.Create(ctx, "c", session.Session{}, time.Hour); err != nil {
		t.Fatalf("Create once a session expired: %v", err)
	}
}
