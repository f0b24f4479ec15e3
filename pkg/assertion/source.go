package assertion

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// Fetcher fetches a document from a customer-supplied URL (*egress.Client).
type Fetcher interface {
	Get(ctx context.Context, url string) ([]byte, error)
}

// Defaults of SourceOptions.
const (
	DefaultMaxAge          = 10 * time.Minute
	DefaultRefetchInterval = 30 * time.Second
	DefaultMaxEntries      = 10000
)

// SourceOptions configure a KeySource.
type SourceOptions struct {
	// Fetcher fetches jwks_uri documents; nil refuses every client with a
	// jwks_uri.
	Fetcher Fetcher
	// MaxAge is how long a fetched key set is used before it is fetched
	// again; DefaultMaxAge when 0.
	MaxAge time.Duration
	// RefetchInterval is the least time between two fetches of one
	// client's jwks_uri, whatever its assertions' kids say;
	// DefaultRefetchInterval when 0. It is also the least time a fetched
	// set is kept.
	RefetchInterval time.Duration
	// MaxEntries bounds the clients whose key sets are cached;
	// DefaultMaxEntries when 0.
	MaxEntries int
	Now        func() time.Time
}

// KeySource returns the key set of a client: its inline jwks, parsed once
// per version of the client, or its jwks_uri's, fetched and cached. A kid
// not in the cached set makes one refetch, at most once per
// RefetchInterval per client, so a client's key rotation is picked up at
// once and a stream of unknown kids costs one fetch per interval.
type KeySource struct {
	opts SourceOptions

	mu      sync.Mutex
	entries map[int64]*entry
}

type entry struct {
	mu        sync.Mutex // held during a fetch: one fetch per client at a time
	version   int64      // the client's Version the inline set was parsed from
	url       string     // the jwks_uri fetched
	set       *KeySet
	fetchedAt time.Time // when set was fetched
	triedAt   time.Time // when a fetch was last tried
}

// NewKeySource returns a KeySource.
func NewKeySource(opts SourceOptions) *KeySource {
	if opts.RefetchInterval <= 0 {
		opts.RefetchInterval = DefaultRefetchInterval
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	opts.MaxAge = max(opts.MaxAge, opts.RefetchInterval)
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &KeySource{opts: opts, entries: make(map[int64]*entry)}
}

func (s *KeySource) entry(id int64) *entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[id]
	if !ok {
		if len(s.entries) >= s.opts.MaxEntries {
			// Forget everything rather than track recency: refilling costs
			// one parse or fetch per active client.
			clear(s.entries)
		}
		e = &entry{}
		s.entries[id] = e
	}
	return e
}

// Keys returns c's key set for an assertion naming kid ("" for none).
// A client without keys, an unparsable set and an unreachable jwks_uri are
// ErrInvalid.
func (s *KeySource) Keys(ctx context.Context, c storage.Client, kid string) (*KeySet, error) {
	switch {
	case c.JWKS != "":
		return s.inline(c)
	case c.JWKSURI != "":
		return s.remote(ctx, c, kid)
	}
	return nil, invalid("the client has no keys")
}

func (s *KeySource) inline(c storage.Client) (*KeySet, error) {
	e := s.entry(c.ID)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.set != nil && e.url == "" && e.version == c.Version {
		return e.set, nil
	}
	set, err := ParseKeySet([]byte(c.JWKS))
	if err != nil {
		return nil, fmt.Errorf("%w: registered jwks: %w", ErrInvalid, err)
	}
	e.set, e.url, e.version = set, "", c.Version
	return set, nil
}

func (s *KeySource) remote(ctx context.Context, c storage.Client, kid string) (*KeySet, error) {
	if s.opts.Fetcher == nil {
		return nil, invalid("jwks_uri is not enabled")
	}
	e := s.entry(c.ID)
	e.mu.Lock()
	defer e.mu.Unlock()
	now := s.opts.Now()
	if e.set != nil && e.url == c.JWKSURI && now.Sub(e.fetchedAt) < s.opts.MaxAge {
		if kid == "" || e.set.HasKID(kid) || now.Sub(e.triedAt) < s.opts.RefetchInterval {
			return e.set, nil
		}
	}
	if e.url == c.JWKSURI && !e.triedAt.IsZero() && now.Sub(e.triedAt) < s.opts.RefetchInterval && e.set == nil {
		return nil, invalid("jwks_uri failed recently")
	}
	e.triedAt, e.url = now, c.JWKSURI
	body, err := s.opts.Fetcher.Get(ctx, c.JWKSURI)
	if err != nil {
		e.set = nil
		return nil, fmt.Errorf("%w: jwks_uri: %w", ErrInvalid, err)
	}
	set, err := ParseKeySet(body)
	if err != nil {
		e.set = nil
		return nil, fmt.Errorf("%w: jwks_uri: %w", ErrInvalid, err)
	}
	e.set, e.fetchedAt = set, now
	return set, nil
}
