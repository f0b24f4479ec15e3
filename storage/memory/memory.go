// Package memory keeps issued tokens in process: the token store of the
// embedded default (one instance, nothing to run beside it) and the fake that
// unit tests use. Tokens are lost on restart.
//
// Memory stays bounded without a goroutine: every CreateToken first removes
// the tokens that have expired, taking them off a queue ordered by expiry, so
// the work is amortised over the writes that made it. Options.MaxTokens caps
// the number of live tokens on top of that.
package memory

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/tollgate/tollgate/storage"
)

var (
	_ storage.Tokens = (*Store)(nil)
	_ storage.Pinger = (*Store)(nil)
)

// ErrFull is answered by CreateToken when Options.MaxTokens live tokens are
// stored.
var ErrFull = errors.New("memory: token store is full")

// Options configures a Store.
type Options struct {
	// Now is the clock that decides expiry; nil means time.Now.
	Now func() time.Time
	// MaxTokens caps the number of live tokens; 0 means no cap.
	MaxTokens int
}

// Store is an in-process storage.Tokens. It is safe for concurrent use.
type Store struct {
	now       func() time.Time
	maxTokens int

	mu     sync.RWMutex
	tokens map[string]storage.Token // by signature
	// requests lists the signatures of each request id; it is short (one
	// or two tokens), so a slice beats a set.
	requests map[string][]string
	// revoked keeps the expiry (Unix ms) of tokens revoked by
	// RevokeRequest until then, for CreateTokenOnce.
	revoked  map[string]int64
	expiries expiryQueue
}

// New answers an empty Store.
func New(opts Options) *Store {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Store{
		now:       now,
		maxTokens: opts.MaxTokens,
		tokens:    make(map[string]storage.Token),
		requests:  make(map[string][]string),
		revoked:   make(map[string]int64),
	}
}

// CreateToken stores t until t.ExpiresAt. Times are kept in UTC to the
// millisecond, like the Redis store does. A token without a signature or
// request id, or expiring less than a millisecond from now, is rejected.
func (s *Store) CreateToken(_ context.Context, t storage.Token) error {
	return s.create(t, false)
}

// CreateTokenOnce stores t like CreateToken, unless a token that has not
// expired, revoked or not, holds its signature.
func (s *Store) CreateTokenOnce(_ context.Context, t storage.Token) error {
	return s.create(t, true)
}

func (s *Store) create(t storage.Token, once bool) error {
	t = normalize(t)
	now := s.now()
	switch {
	case t.Signature == "":
		return errors.New("memory: token has no signature")
	case t.RequestID == "":
		return errors.New("memory: token has no request id")
	case t.ExpiresAt.Sub(now) < time.Millisecond:
		return fmt.Errorf("memory: token expires at %s, not after now (%s)", t.ExpiresAt, now.UTC())
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeExpired(now)
	if _, ok := s.tokens[t.Signature]; ok {
		return storage.ErrAlreadyExists
	}
	if _, ok := s.revoked[t.Signature]; ok {
		if once {
			return storage.ErrAlreadyExists
		}
		delete(s.revoked, t.Signature)
	}
	if s.maxTokens > 0 && len(s.tokens) >= s.maxTokens {
		return ErrFull
	}
	s.tokens[t.Signature] = t
	s.requests[t.RequestID] = append(s.requests[t.RequestID], t.Signature)
	heap.Push(&s.expiries, expiry{at: t.ExpiresAt.UnixMilli(), signature: t.Signature})
	s.compactExpiries()
	return nil
}

// GetToken answers the token stored under signature, or ErrNotFound when it
// is unknown, expired or revoked.
func (s *Store) GetToken(_ context.Context, signature string) (storage.Token, error) {
	now := s.now()
	s.mu.RLock()
	t, ok := s.tokens[signature]
	s.mu.RUnlock()
	if !ok || !now.Before(t.ExpiresAt) {
		return storage.Token{}, storage.ErrNotFound
	}
	// The stored slices are never changed in place, but the caller may
	// change the ones it gets.
	t.Scopes = slices.Clone(t.Scopes)
	t.Audience = slices.Clone(t.Audience)
	return t, nil
}

// DeleteToken removes the token; an unknown signature is no error.
func (s *Store) DeleteToken(_ context.Context, signature string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remove(signature)
	return nil
}

// RevokeRequest removes every token of requestID; an unknown request id is
// no error.
func (s *Store) RevokeRequest(_ context.Context, requestID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, signature := range s.requests[requestID] {
		if t, ok := s.tokens[signature]; ok {
			s.revoked[signature] = t.ExpiresAt.UnixMilli()
		}
		delete(s.tokens, signature)
	}
	delete(s.requests, requestID)
	return nil
}

// Ping always answers nil: the store is in process.
func (s *Store) Ping(context.Context) error { return nil }

// Len answers the number of stored tokens, including expired ones not yet
// removed.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.tokens)
}

// remove deletes the token under signature and its entry in the request
// index. The caller holds s.mu.
func (s *Store) remove(signature string) {
	t, ok := s.tokens[signature]
	if !ok {
		return
	}
	delete(s.tokens, signature)
	signatures := slices.DeleteFunc(s.requests[t.RequestID], func(sig string) bool { return sig == signature })
	if len(signatures) == 0 {
		delete(s.requests, t.RequestID)
		return
	}
	s.requests[t.RequestID] = signatures
}

// removeExpired removes the tokens that expired at now. Queue entries of
// tokens that were deleted, revoked or replaced since are dropped on the way.
// The caller holds s.mu.
func (s *Store) removeExpired(now time.Time) {
	nowMilli := now.UnixMilli()
	for len(s.expiries) > 0 && s.expiries[0].at <= nowMilli {
		e := heap.Pop(&s.expiries).(expiry)
		if t, ok := s.tokens[e.signature]; ok && t.ExpiresAt.UnixMilli() == e.at {
			s.remove(e.signature)
		}
		if at, ok := s.revoked[e.signature]; ok && at <= nowMilli {
			delete(s.revoked, e.signature)
		}
	}
}

// compactExpiries rebuilds the expiry queue from the live tokens when
// deleted and revoked tokens have left it mostly stale entries, so that
// creating and deleting long-lived tokens cannot grow it without bound. The
// rebuild is O(n) once per n stale entries. The caller holds s.mu.
func (s *Store) compactExpiries() {
	if len(s.expiries) <= 2*(len(s.tokens)+len(s.revoked))+1024 {
		return
	}
	q := make(expiryQueue, 0, len(s.tokens)+len(s.revoked))
	for signature, t := range s.tokens {
		q = append(q, expiry{at: t.ExpiresAt.UnixMilli(), signature: signature})
	}
	for signature, at := range s.revoked {
		q = append(q, expiry{at: at, signature: signature})
	}
	heap.Init(&q)
	s.expiries = q
}

// normalize answers a copy of t that shares no slices with the caller, with
// times in UTC truncated to the millisecond and empty slices as nil.
func normalize(t storage.Token) storage.Token {
	t.Scopes = cloneNonEmpty(t.Scopes)
	t.Audience = cloneNonEmpty(t.Audience)
	t.IssuedAt = t.IssuedAt.Truncate(time.Millisecond).UTC()
	t.ExpiresAt = t.ExpiresAt.Truncate(time.Millisecond).UTC()
	return t
}

func cloneNonEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

// expiry is an entry of the queue of tokens ordered by expiry.
type expiry struct {
	at        int64 // ExpiresAt in Unix milliseconds
	signature string
}

// expiryQueue is a min-heap of expiries (container/heap).
type expiryQueue []expiry

func (q expiryQueue) Len() int           { return len(q) }
func (q expiryQueue) Less(i, j int) bool { return q[i].at < q[j].at }
func (q expiryQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *expiryQueue) Push(x any)        { *q = append(*q, x.(expiry)) }

func (q *expiryQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = expiry{} // let the signature be collected
	*q = old[:len(old)-1]
	return e
}
