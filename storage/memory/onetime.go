package memory

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/tollgate/tollgate/storage"
)

var _ storage.OneTimeIDs = (*OneTimeIDs)(nil)

// ErrTooManyIDs is answered by UseOnce when OneTimeOptions.MaxIDs unexpired
// ids are remembered.
var ErrTooManyIDs = errors.New("memory: too many one-time ids")

// OneTimeOptions configure OneTimeIDs.
type OneTimeOptions struct {
	// Now is the clock that decides expiry; nil means time.Now.
	Now func() time.Time
	// MaxIDs caps the unexpired ids remembered; 0 means 1,000,000.
	MaxIDs int
}

// OneTimeIDs is an in-process storage.OneTimeIDs, for the embedded default.
// Expired ids are swept when the map reaches twice the size it had after
// the previous sweep, so the work is amortised over the writes.
type OneTimeIDs struct {
	now    func() time.Time
	maxIDs int

	mu        sync.Mutex
	ids       map[string]time.Time
	sweepSize int
}

// NewOneTimeIDs returns an empty OneTimeIDs.
func NewOneTimeIDs(opts OneTimeOptions) *OneTimeIDs {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxIDs <= 0 {
		opts.MaxIDs = 1_000_000
	}
	return &OneTimeIDs{now: opts.Now, maxIDs: opts.MaxIDs, ids: make(map[string]time.Time), sweepSize: 1024}
}

// UseOnce records id until expiresAt; ErrAlreadyExists when it is
// recorded and unexpired.
func (o *OneTimeIDs) UseOnce(_ context.Context, id string, expiresAt time.Time) error {
	now := o.now()
	o.mu.Lock()
	defer o.mu.Unlock()
	if exp, ok := o.ids[id]; ok && now.Before(exp) {
		return storage.ErrAlreadyExists
	}
	if len(o.ids) >= o.sweepSize {
		for k, exp := range o.ids {
			if !now.Before(exp) {
				delete(o.ids, k)
			}
		}
		o.sweepSize = max(1024, 2*len(o.ids))
	}
	if len(o.ids) >= o.maxIDs {
		return ErrTooManyIDs
	}
	o.ids[id] = expiresAt
	return nil
}
