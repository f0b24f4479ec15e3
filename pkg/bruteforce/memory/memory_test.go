package memory_test

import (
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/bruteforce"
	"github.com/tollgate/tollgate/pkg/bruteforce/conformance"
	"github.com/tollgate/tollgate/pkg/bruteforce/memory"
)

func TestConformance(t *testing.T) {
	conformance.Run(t, func(t *testing.T) (bruteforce.Store, conformance.Clock) {
		c := &conformance.FakeClock{}
		return memory.New(memory.Options{Now: c.Now}), c
	})
}

// Expired keys are dropped by later reservations; past MaxKeys the key
// failed least recently goes.
func TestBoundedMemory(t *testing.T) {
	c := &conformance.FakeClock{}
	s := memory.New(memory.Options{Now: c.Now, MaxKeys: 3})
	ctx := t.Context()
	p := bruteforce.Policy{Threshold: 100, BaseDelay: time.Second, MaxDelay: time.Second, Window: time.Minute}
	fail := func(k string) {
		t.Helper()
		if _, err := s.Reserve(ctx, c.Now(), bruteforce.Request{Key: k, Policy: p}); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"a", "b", "c", "d"} {
		fail(k)
	}
	if got := s.Len(); got != 3 {
		t.Errorf("keys past MaxKeys: got %d, want 3", got)
	}
	recs, err := s.Get(ctx, "a", "d")
	if err != nil {
		t.Fatal(err)
	}
	if recs[0].Failures != 0 || recs[1].Failures != 1 {
		t.Errorf("got a=%d d=%d failures, want a forgotten (0) and d kept (1)", recs[0].Failures, recs[1].Failures)
	}

	c.Advance(2 * time.Minute)
	fail("e")
	if got := s.Len(); got != 1 {
		t.Errorf("keys after the others expired: got %d, want 1", got)
	}
}
