package usage_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/usage"
)

// store is a recording fake: the real stores are tested by the storage
// conformance suite; this checks only the batching.
type store struct {
	mu      sync.Mutex
	batches []map[int64]time.Time
	fail    bool
}

func (s *store) TouchClients(_ context.Context, uses map[int64]time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return errors.New("down")
	}
	s.batches = append(s.batches, uses)
	return nil
}

func TestRecorderBatches(t *testing.T) {
	s := &store{}
	r := usage.New(s, slog.New(slog.DiscardHandler))
	t0 := time.Unix(1000, 0)
	for i := range 1000 {
		r.Record(1, t0.Add(time.Duration(i)*time.Millisecond))
		r.Record(2, t0)
	}
	r.Record(1, t0) // older: ignored
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(s.batches) != 1 {
		t.Fatalf("%d batches, want 1", len(s.batches))
	}
	want := map[int64]time.Time{1: t0.Add(999 * time.Millisecond), 2: t0}
	for id, w := range want {
		if got := s.batches[0][id]; !got.Equal(w) {
			t.Errorf("client %d last used %v, want %v", id, got, w)
		}
	}
	if err := r.Flush(t.Context()); err != nil || len(s.batches) != 1 {
		t.Errorf("empty flush wrote a batch (%d) or failed (%v)", len(s.batches), err)
	}
}

func TestRecorderKeepsUsesOnFailure(t *testing.T) {
	s := &store{fail: true}
	r := usage.New(s, slog.New(slog.DiscardHandler))
	t0 := time.Unix(1000, 0)
	r.Record(7, t0)
	if err := r.Flush(t.Context()); err == nil {
		t.Fatal("flush to a failing store succeeded")
	}
	s.fail = false
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(s.batches) != 1 || !s.batches[0][7].Equal(t0) {
		t.Errorf("batches = %v, want the use kept for the retry", s.batches)
	}
}

func TestRecorderRunFlushesOnStop(t *testing.T) {
	s := &store{}
	r := usage.New(s, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { r.Run(ctx, time.Hour); close(done) }()
	r.Record(3, time.Unix(5, 0))
	cancel()
	<-done
	if len(s.batches) != 1 {
		t.Fatalf("%d batches after stop, want the final flush", len(s.batches))
	}
}
