// Package memory is the in-process bruteforce.Store of the embedded default:
// failure counts in a map, each dropped once its window has passed, in
// bounded memory.
//
// Counts are per process: several Tollgate instances need bruteforce/redis to
// share them. The package starts no goroutines; expired keys are dropped as a
// side effect of Fail.
package memory

import (
	"container/list"
	"context"
	"sync"
	"time"

	"github.com/tollgate/tollgate/pkg/bruteforce"
)

// DefaultMaxKeys bounds the keys a Store holds unless Options says otherwise.
const DefaultMaxKeys = 100_000

var _ bruteforce.Store = (*Store)(nil)

// Options configures a Store. The zero value is usable.
type Options struct {
	// Now is the clock keys expire by; time.Now when nil.
	Now func() time.Time
	// MaxKeys bounds the keys held at once (DefaultMaxKeys when <= 0). Past
	// it the key failed least recently is forgotten: an attacker spraying
	// that many distinct keys within a window can erase counts, so size it
	// well above the keys that fail within a window.
	MaxKeys int
}

// Store is an in-process bruteforce.Store, safe for concurrent use.
type Store struct {
	now     func() time.Time
	max     int
	mu      sync.Mutex
	entries map[string]*list.Element // of *entry
	order   list.List                // front: failed least recently
}

type entry struct {
	key     string
	rec     bruteforce.Record
	expires time.Time
}

// New answers a Store.
func New(opts Options) *Store {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxKeys <= 0 {
		opts.MaxKeys = DefaultMaxKeys
	}
	return &Store{now: opts.Now, max: opts.MaxKeys, entries: make(map[string]*list.Element)}
}

// Get implements bruteforce.Store.
func (s *Store) Get(_ context.Context, keys ...string) ([]bruteforce.Record, error) {
	now := s.now()
	out := make([]bruteforce.Record, len(keys))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, k := range keys {
		if el, ok := s.entries[k]; ok {
			if e := el.Value.(*entry); now.Before(e.expires) {
				out[i] = e.rec
			}
		}
	}
	return out, nil
}

// Fail implements bruteforce.Store.
func (s *Store) Fail(_ context.Context, now time.Time, window time.Duration, keys ...string) ([]bruteforce.Record, error) {
	// Milliseconds, as Redis keeps them, so both backends answer alike.
	now = time.UnixMilli(now.UnixMilli())
	clock := s.now()
	out := make([]bruteforce.Record, len(keys))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trim(clock)
	for i, k := range keys {
		var e *entry
		if el, ok := s.entries[k]; ok {
			e = el.Value.(*entry)
			s.order.MoveToBack(el)
			if !clock.Before(e.expires) || now.Sub(e.rec.Last) >= window {
				e.rec = bruteforce.Record{}
			}
		} else {
			if len(s.entries) >= s.max {
				s.remove(s.order.Front())
			}
			e = &entry{key: k}
			s.entries[k] = s.order.PushBack(e)
		}
		e.rec = bruteforce.Record{Failures: e.rec.Failures + 1, Last: now}
		e.expires = clock.Add(window)
		out[i] = e.rec
	}
	return out, nil
}

// Reset implements bruteforce.Store.
func (s *Store) Reset(_ context.Context, keys ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		if el, ok := s.entries[k]; ok {
			s.remove(el)
		}
	}
	return nil
}

// Len answers the number of keys held, expired or not.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

// trim drops expired keys from the front of the order. Keys are in the
// order they last failed, so with one window for all keys the expired ones
// are all at the front; with several windows a few may linger until they
// reach it. s.mu is held.
func (s *Store) trim(now time.Time) {
	for el := s.order.Front(); el != nil; el = s.order.Front() {
		if now.Before(el.Value.(*entry).expires) {
			return
		}
		s.remove(el)
	}
}

func (s *Store) remove(el *list.Element) {
	delete(s.entries, el.Value.(*entry).key)
	s.order.Remove(el)
}
