package usage_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/usage"
	"github.com/tollgate/tollgate/pkg/usage/memory"
)

type roots map[int64]int64

func (r roots) RootAccounts(_ context.Context, ids []int64) (map[int64]int64, error) {
	out := map[int64]int64{}
	for _, id := range ids {
		if root, ok := r[id]; ok {
			out[id] = root
		}
	}
	return out, nil
}

type downCounter struct{ down bool }

func (d *downCounter) AddBatch(context.Context, []usage.RootCount) error {
	if d.down {
		return errors.New("redis down")
	}
	return nil
}

// The batcher adds the counts of a flush interval in one batch under each
// account's root, and keeps them while the counter is down.
func TestBatcher(t *testing.T) {
	ctx := t.Context()
	counts := memory.New(nil)
	m := time.Now().UTC().Truncate(time.Minute)
	down := &downCounter{down: true}
	b := usage.NewBatcher(down, roots{2: 1, 3: 1}, nil)
	for range 5 {
		b.Count(2, 20, "token", usage.OutcomeAllowed, m.Add(time.Second))
	}
	b.Count(3, 30, "token", usage.OutcomeUnauthorized, m)
	if err := b.Flush(ctx); err == nil {
		t.Fatal("Flush with the counter down: want an error")
	}
	// Back up: the kept counts go to the real counter.
	b2 := usage.NewBatcher(counts, roots{2: 1, 3: 1}, nil)
	b2.Count(2, 20, "token", usage.OutcomeAllowed, m)
	if err := b2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	down.down = false
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	b.Count(2, 20, "token", usage.OutcomeAllowed, m) // the real counter, through b2
	_ = b.Flush(ctx)
	got, err := counts.ReadMinute(ctx, 1, m)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].CredentialID != 20 || got[0].N != 1 {
		t.Errorf("counts = %+v, want credential 20 once", got)
	}
	// Batched into the real counter from the start.
	b3 := usage.NewBatcher(counts, roots{2: 1, 3: 1}, nil)
	for range 5 {
		b3.Count(2, 20, "token", usage.OutcomeAllowed, m.Add(time.Second))
	}
	b3.Count(3, 30, "token", usage.OutcomeUnauthorized, m)
	if err := b3.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ = counts.ReadMinute(ctx, 1, m)
	sums := map[int64]int64{}
	for _, c := range got {
		sums[c.CredentialID] += c.N
	}
	if sums[20] != 6 || sums[30] != 1 {
		t.Errorf("sums = %v, want 20: 6 and 30: 1", sums)
	}
}
