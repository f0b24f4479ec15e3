// Package memory is the in-process bruteforce.Store of the embedded default:
// failure counts in a map, each dropped once its window has passed, in
// bounded memory. One mutex makes every call atomic.
//
// Counts are per process: several Tollgate instances need bruteforce/redis to
// share them. The package starts no goroutines; expired keys are dropped as a
// side effect of Reserve.
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
	seq     int64                    // numbers reservations, across keys
	entries map[string]*list.Element // of *entry
	order   list.List                // front: failed least recently
}

type entry struct {
	key     string
	rec     bruteforce.Record
	seq     int64
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
		if e := s.live(k, now); e != nil {
			out[i] = e.rec
		}
	}
	return out, nil
}

// live answers k's entry unless it is missing or expired. s.mu is held.
func (s *Store) live(k string, clock time.Time) *entry {
	if el, ok := s.entries[k]; ok {
		if e := el.Value.(*entry); clock.Before(e.expires) {
			return e
		}
	}
	return nil
}

// Reserve implements bruteforce.Store. It is all or nothing: when any key
// holds back, none is counted.
func (s *Store) Reserve(_ context.Context, now time.Time, reqs ...bruteforce.Request) ([]bruteforce.Result, error) {
	// Milliseconds, as Redis keeps them, so both backends answer alike.
	now = time.UnixMilli(now.UnixMilli())
	clock := s.now()
	out := make([]bruteforce.Result, len(reqs))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trim(clock)
	held := false
	for i, req := range reqs {
		var rec bruteforce.Record
		if e := s.live(req.Key, clock); e != nil {
			rec = e.rec
		}
		if rec.Failures > 0 && now.Sub(rec.Last) >= max(req.Policy.Window, time.Millisecond) {
			rec = bruteforce.Record{}
		}
		out[i] = bruteforce.Result{Record: rec, Wait: req.Policy.Wait(rec, now)}
		held = held || out[i].Wait > 0
	}
	if held {
		return out, nil
	}
	for i, req := range reqs {
		var e *entry
		if el, ok := s.entries[req.Key]; ok {
			e = el.Value.(*entry)
			s.order.MoveToBack(el)
		} else {
			if len(s.entries) >= s.max {
				s.remove(s.order.Front())
			}
			e = &entry{key: req.Key}
			s.entries[req.Key] = s.order.PushBack(e)
		}
		prev := out[i].Record
		s.seq++
		e.seq = s.seq
		e.rec = bruteforce.Record{Failures: prev.Failures + 1, Last: now}
		e.expires = clock.Add(max(req.Policy.Window, time.Millisecond))
		out[i] = bruteforce.Result{Record: e.rec,
			Reservation: bruteforce.Reservation{Key: req.Key, Seq: e.seq, Prev: prev.Last}}
	}
	return out, nil
}

// Release implements bruteforce.Store.
func (s *Store) Release(_ context.Context, release []bruteforce.Reservation, reset []string) error {
	clock := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range release {
		e := s.live(r.Key, clock)
		if e == nil {
			continue
		}
		if e.rec.Failures <= 1 {
			s.remove(s.entries[r.Key])
			continue
		}
		e.rec.Failures--
		if e.seq == r.Seq && !r.Prev.IsZero() {
			e.rec.Last = r.Prev
		}
	}
	for _, k := range reset {
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
