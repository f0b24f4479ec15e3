// Package memory is the in-process session.Store of the embedded default:
// sessions live in a map and die with the process.
package memory

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/tollgate/tollgate/pkg/console/session"
)

var _ session.Store = (*Store)(nil)

// DefaultMaxSessions bounds the store unless Options says otherwise.
const DefaultMaxSessions = 100_000

// ErrFull answers a Create when the store holds MaxSessions live sessions.
var ErrFull = errors.New("too many console sessions")

// Options configure a Store.
type Options struct {
	// MaxSessions bounds the live sessions held (DefaultMaxSessions).
	MaxSessions int
	// Now is the clock sessions expire by; time.Now when nil.
	Now func() time.Time
}

type entry struct {
	s       session.Session
	expires time.Time
}

// Store is a session.Store in process, safe for concurrent use.
type Store struct {
	mu   sync.Mutex
	m    map[string]entry
	opts Options
}

// New answers an empty Store.
func New(opts Options) *Store {
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = DefaultMaxSessions
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{m: map[string]entry{}, opts: opts}
}

// Create implements session.Store.
func (s *Store) Create(_ context.Context, key string, sess session.Session, ttl time.Duration) error {
	now := s.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= s.opts.MaxSessions {
		for k, e := range s.m {
			if !now.Before(e.expires) {
				delete(s.m, k)
			}
		}
		if len(s.m) >= s.opts.MaxSessions {
			return ErrFull
		}
	}
	s.m[key] = entry{s: sess, expires: now.Add(ttl)}
	return nil
}

// Get implements session.Store.
func (s *Store) Get(_ context.Context, key string) (session.Session, error) {
	now := s.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	if !ok {
		return session.Session{}, session.ErrNotFound
	}
	if !now.Before(e.expires) {
		delete(s.m, key)
		return session.Session{}, session.ErrNotFound
	}
	return e.s, nil
}

// Update implements session.Store.
func (s *Store) Update(_ context.Context, key string, sess session.Session, ttl time.Duration) error {
	now := s.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	if !ok || !now.Before(e.expires) {
		delete(s.m, key)
		return session.ErrNotFound
	}
	s.m[key] = entry{s: sess, expires: now.Add(ttl)}
	return nil
}

// Delete implements session.Store.
func (s *Store) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}
