package oauth

import (
	"context"
	"sync"

	"github.com/tollgate/tollgate/storage"
)

// Refusal notes the known client whose authentication was refused during
// one request (a wrong secret, a disabled client or account), so that the
// token endpoint and the key session can count the refusal against it.
type Refusal struct {
	mu         sync.Mutex
	clientID   int64
	accountID  int64
	registered bool
}

type refusalKey struct{}

// WithRefusal returns a context carrying a fresh Refusal for one request.
func WithRefusal(ctx context.Context) (context.Context, *Refusal) {
	r := &Refusal{}
	return context.WithValue(ctx, refusalKey{}, r), r
}

// noteRefusal notes on the request's Refusal, if any, that c was refused.
func noteRefusal(ctx context.Context, c storage.Client) {
	if r, ok := ctx.Value(refusalKey{}).(*Refusal); ok {
		r.mu.Lock()
		r.clientID, r.accountID, r.registered = c.ID, c.AccountID, true
		r.mu.Unlock()
	}
}

// Client returns the refused client's id and account; ok is false when no
// known client was refused.
func (r *Refusal) Client() (clientID, accountID int64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.clientID, r.accountID, r.registered
}
