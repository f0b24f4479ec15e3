// Package usage records when credentials are used and writes those times to
// the database in batches: a credential used ten thousand times a second
// costs one row update per flush interval, not one per request.
package usage

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Store writes many last-used times at once.
type Store interface {
	TouchClients(ctx context.Context, uses map[int64]time.Time) error
}

// Recorder collects uses in memory until the next flush.
type Recorder struct {
	store  Store
	logger *slog.Logger

	mu      sync.Mutex
	pending map[int64]time.Time
}

// New returns a Recorder writing to store.
func New(store Store, logger *slog.Logger) *Recorder {
	return &Recorder{store: store, logger: logger, pending: map[int64]time.Time{}}
}

// Record notes that client id was used at t.
func (r *Recorder) Record(id int64, t time.Time) {
	r.mu.Lock()
	if t.After(r.pending[id]) {
		r.pending[id] = t
	}
	r.mu.Unlock()
}

// Flush writes every recorded use in one batch. On failure the uses are kept
// for the next flush.
func (r *Recorder) Flush(ctx context.Context) error {
	r.mu.Lock()
	batch := r.pending
	r.pending = map[int64]time.Time{}
	r.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	if err := r.store.TouchClients(ctx, batch); err != nil {
		r.mu.Lock()
		for id, t := range batch {
			if t.After(r.pending[id]) {
				r.pending[id] = t
			}
		}
		r.mu.Unlock()
		return err
	}
	return nil
}

// Run flushes every interval until ctx is done, then flushes once more so a
// graceful shutdown loses nothing.
func (r *Recorder) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := r.Flush(final); err != nil {
				r.logger.ErrorContext(final, "write last-used times at shutdown", "err", err)
			}
			return
		case <-t.C:
			if err := r.Flush(ctx); err != nil {
				r.logger.WarnContext(ctx, "write last-used times; will retry", "err", err)
			}
		}
	}
}
