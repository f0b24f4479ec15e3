package usage

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RootCount is a Count under its root account.
type RootCount struct {
	Root int64
	Count
}

// BatchCounter adds many counts in one round trip.
type BatchCounter interface {
	AddBatch(ctx context.Context, counts []RootCount) error
}

// BatchReader reads the counts of many root accounts' minute in one round
// trip: the roll-up's read.
type BatchReader interface {
	ReadMinutes(ctx context.Context, roots []int64, minute time.Time) (map[int64][]Count, error)
}

// Roots finds the root account of an account's tree. Accounts never move,
// so an answer holds for ever.
type Roots interface {
	RootAccounts(ctx context.Context, ids []int64) (map[int64]int64, error)
}

// ParseField splits a count field (CountField) into the credential id, the
// class and the outcome; ok is false for anything else.
func ParseField(field string) (credentialID int64, class, outcome string, ok bool) {
	i := strings.IndexByte(field, ':')
	j := strings.LastIndexByte(field, ':')
	if i <= 0 || j <= i {
		return 0, "", "", false
	}
	id, err := strconv.ParseInt(field[:i], 10, 64)
	if err != nil || id <= 0 {
		return 0, "", "", false
	}
	return id, field[i+1 : j], field[j+1:], true
}

// batchKey is one pending count: the credential's account (its root is
// found at flush time), the minute, the credential, class and outcome.
type batchKey struct {
	account, minute, credential int64
	class, outcome              string
}

// Batcher counts calls in memory and adds them to a BatchCounter in one
// round trip per flush: the token endpoint and the key session pay no
// round trip per call. A crash loses what was not flushed yet, at most one
// flush interval of those paths' counts; a graceful shutdown flushes.
type Batcher struct {
	next   BatchCounter
	roots  Roots
	logger *slog.Logger

	mu       sync.Mutex
	pending  map[batchKey]int64
	rootOf   map[int64]int64 // account → root, for ever: accounts never move
	maxItems int
}

// maxPending bounds the distinct pending counts kept while the counter
// cannot be reached; beyond it new counts are dropped (and logged).
const maxPending = 100_000

// NewBatcher returns a Batcher adding to next, finding roots with roots.
func NewBatcher(next BatchCounter, roots Roots, logger *slog.Logger) *Batcher {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Batcher{next: next, roots: roots, logger: logger, pending: map[batchKey]int64{}, rootOf: map[int64]int64{}, maxItems: maxPending}
}

// Count counts one call of credential (of account) at t, in class, ending
// with outcome. It never blocks on I/O.
func (b *Batcher) Count(account, credential int64, class, outcome string, t time.Time) {
	k := batchKey{account: account, minute: t.Unix() / 60, credential: credential, class: class, outcome: outcome}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.pending[k]; !ok && len(b.pending) >= b.maxItems {
		return
	}
	b.pending[k]++
}

// Flush adds every pending count in one batch. On failure the counts are
// kept for the next flush.
func (b *Batcher) Flush(ctx context.Context) error {
	b.mu.Lock()
	batch := b.pending
	b.pending = map[batchKey]int64{}
	var unknown []int64
	for k := range batch {
		if _, ok := b.rootOf[k.account]; !ok {
			unknown = append(unknown, k.account)
		}
	}
	b.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	restore := func(err error) error {
		b.mu.Lock()
		for k, n := range batch {
			b.pending[k] += n
		}
		b.mu.Unlock()
		return err
	}
	if len(unknown) > 0 {
		found, err := b.roots.RootAccounts(ctx, unknown)
		if err != nil {
			return restore(err)
		}
		b.mu.Lock()
		for id, root := range found {
			b.rootOf[id] = root
		}
		b.mu.Unlock()
	}
	counts := make([]RootCount, 0, len(batch))
	b.mu.Lock()
	for k, n := range batch {
		root, ok := b.rootOf[k.account]
		if !ok {
			continue // an account deleted meanwhile: nobody reads its counts
		}
		counts = append(counts, RootCount{Root: root, Count: Count{Minute: time.Unix(k.minute*60, 0).UTC(),
			CredentialID: k.credential, Class: k.class, Outcome: k.outcome, N: n}})
	}
	b.mu.Unlock()
	if err := b.next.AddBatch(ctx, counts); err != nil {
		return restore(err)
	}
	return nil
}

// Run flushes every interval until ctx is done, then once more so that a
// graceful shutdown loses nothing.
func (b *Batcher) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := b.Flush(final); err != nil {
				b.logger.ErrorContext(final, "write usage counts at shutdown", "err", err)
			}
			return
		case <-t.C:
			if err := b.Flush(ctx); err != nil && !errors.Is(err, context.Canceled) {
				b.logger.WarnContext(ctx, "write usage counts; will retry", "err", err)
			}
		}
	}
}
