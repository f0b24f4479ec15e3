// Package sweeper disables stale credentials: clients and keys unused for a
// configured time, and those whose expiry date has passed, recording which
// of the two (storage.DisabledUnused, storage.DisabledExpired). Each one
// disabled leaves an audit event. Several instances may sweep at once: the
// store disables each credential in one atomic statement, so exactly one
// sweep reports (and audits) it.
package sweeper

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// Sweeper runs the sweep.
type Sweeper struct {
	store     storage.Transactor
	unusedFor time.Duration // 0: never disable for lack of use
	logger    *slog.Logger
	now       func() time.Time
}

// New returns a Sweeper disabling credentials unused for unusedFor (0 turns
// that off; expiry is always enforced).
func New(store storage.Transactor, unusedFor time.Duration, logger *slog.Logger, now func() time.Time) *Sweeper {
	return &Sweeper{store: store, unusedFor: unusedFor, logger: logger, now: now}
}

// Sweep disables what is stale now and returns how many credentials it
// disabled.
func (s *Sweeper) Sweep(ctx context.Context) (int, error) {
	now := s.now()
	var unusedSince time.Time // the zero time: nothing is that old
	if s.unusedFor > 0 {
		unusedSince = now.Add(-s.unusedFor)
	}
	var n int
	err := s.store.InTx(ctx, func(tx storage.Store) error {
		disabled, err := tx.DisableStale(ctx, unusedSince, now)
		if err != nil {
			return err
		}
		for _, c := range disabled {
			// The store says why it disabled c (DisabledReason): the
			// console and the management API show it.
			detail := fmt.Sprintf("unused since %s", lastUse(c).Format(time.RFC3339))
			if c.DisabledReason == storage.DisabledExpired {
				detail = fmt.Sprintf("expired at %s", c.ExpiresAt.Format(time.RFC3339))
			}
			if _, err := tx.AppendAudit(ctx, storage.AuditEvent{
				Time:       now,
				AccountID:  c.AccountID,
				Action:     string(c.Kind) + ".auto_disable",
				TargetType: string(c.Kind),
				TargetID:   c.ID,
				Outcome:    "success",
				Detail:     detail,
			}); err != nil {
				return err
			}
		}
		n = len(disabled)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sweep stale credentials: %w", err)
	}
	return n, nil
}

func lastUse(c storage.Client) time.Time {
	if c.LastUsedAt.IsZero() {
		return c.CreatedAt
	}
	return c.LastUsedAt
}

// Run sweeps at once and then every interval until ctx is done.
func (s *Sweeper) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := s.Sweep(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.logger.WarnContext(ctx, "sweep stale credentials; will retry", "err", err)
		case n > 0:
			s.logger.InfoContext(ctx, "disabled stale credentials", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
