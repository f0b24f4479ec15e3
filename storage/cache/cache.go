// Package cache keeps the hot reads of Tollgate's relational store in
// process, so that client authentication, token validation and gateway
// checks make no database query. Store decorates any backend (storage/sql in
// production): GetClient, GetUser, AccountActive and AccountInSubtree are
// answered from a bounded in-memory table, found and not-found answers
// alike; every other call goes to the backend.
//
// # Consistency
//
// A write through a Store evicts what it touched before it returns, so the
// instance that wrote reads its own writes. Inside InTx the entries are
// evicted when written, before the commit, and again after it: a read that
// raced the transaction cannot leave the old value behind.
//
// Every write is also announced on the Bus (Redis pub/sub in production):
// the other instances drop the same entries within one pub/sub delivery,
// milliseconds after the write returns. When a message may have been lost
// (a publish failed, the subscription dropped, Redis restarted) an instance
// flushes its whole table on re-subscribing, and no entry is ever served
// longer than Options.TTL after it was read from the database: TTL is the
// worst-case staleness, also for writes made around the Store (SQL by hand,
// another tool).
//
// TouchClient and TouchClients evict nothing and announce nothing: the time
// of last use is not security relevant and is written on the hot path. They
// move LastUsedAt forward in this instance's table only.
//
// # Outages
//
// With Options.MaxStale, an entry whose TTL has passed is still served when
// the backend fails to answer its renewal (the database is down), for up to
// MaxStale past its TTL, so that tokens, introspection and gateway checks of
// the credentials in use keep working through a database outage. This
// bends the TTL bound only while the backend cannot be read: nothing can
// change in a database nobody can reach, and an invalidation heard on the
// bus still drops the entry at once. After a failure, expired entries are
// answered without asking the backend for failRetry, so that an unreachable
// database (a timeout rather than a refused connection) slows down one read
// a second, not every read.
package cache

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/tollgate/tollgate/internal/expiring"
	"github.com/tollgate/tollgate/storage"
)

// Backend is what Store decorates, and what it is itself.
type Backend interface {
	storage.Store
	storage.Transactor
	storage.Pinger
}

var _ Backend = (*Store)(nil)

// Defaults applied by New to zero Options fields.
const (
	DefaultTTL        = 5 * time.Second
	DefaultMaxEntries = 100_000
)

// failRetry is how long after a failed read expired entries are served
// stale without asking the backend again.
const failRetry = time.Second

// publishTimeout bounds announcing a write on the bus. The write has already
// happened; a failed announcement costs at most TTL of staleness elsewhere.
const publishTimeout = 2 * time.Second

// manyClients is how many client ids one announcement names at most; past
// it, every client entry is dropped instead.
const manyClients = 100

// Options configure a Store.
type Options struct {
	// TTL is how long an answer read from the backend is served, the bound
	// on staleness when an invalidation is lost. Zero means DefaultTTL.
	TTL time.Duration
	// MaxStale is how long past its TTL an entry is still served while the
	// backend fails (see Outages in the package doc); zero means never.
	MaxStale time.Duration
	// MaxEntries bounds the table; when full, one of a few random entries,
	// the one read longest ago, makes room. Zero means DefaultMaxEntries.
	MaxEntries int
	// Now is the clock entries expire by; nil means time.Now.
	Now func() time.Time
	// Bus carries invalidations between instances; nil means this is the
	// only instance.
	Bus Bus
	// Logger receives failed announcements and resynchronisations; nil
	// discards.
	Logger *slog.Logger
}

// kind tells which read an entry answers.
type kind uint8

const (
	kindClient kind = iota + 1
	kindUser
	kindAccountActive
	kindAccountInSubtree
	kindAccountStanding
	kindEffectivePolicies
	kindAccountBudgets
)

// key names one answer: a client or user id, the account id of
// AccountActive, or the root and account ids of AccountInSubtree.
type key struct {
	kind kind
	a, b int64
}

// flightKey names a read in the singleflight group. seq is part of it: a
// read that starts after an invalidation never joins one that started
// before it and may bring back the old value.
func (k key) flightKey(seq uint64) string {
	b := make([]byte, 0, 48)
	b = strconv.AppendUint(b, uint64(k.kind), 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, k.a, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, k.b, 10)
	b = append(b, '@')
	b = strconv.AppendUint(b, seq, 10)
	return string(b)
}

// entry is a cached answer: a value, or storage.ErrNotFound as the backend
// returned it. Backend failures are never cached.
type entry struct {
	val     any
	err     error
	expires time.Time
}

// Store is a caching storage backend. It is safe for concurrent use.
//
// Store decorates by embedding: writes (and, through it, the backend's
// storage.Store) answers every method Store does not define itself, so a
// new storage method passes through with no code here. What Store defines
// are the cached reads, the writes that must evict (on writes), the
// touches, InTx and Ping. A new method that changes a cached record must be
// added to writes: TestEveryMethodClassified fails until it is.
type Store struct {
	writes
	inner      Backend
	ttl        time.Duration
	maxStale   time.Duration
	maxEntries int
	now        func() time.Time
	bus        Bus
	logger     *slog.Logger
	group      singleflight.Group

	mu      sync.RWMutex
	entries map[key]entry
	// seq counts invalidations. A read records it before asking the
	// backend and caches the answer only if it has not moved since: an
	// answer that may predate an invalidation is returned, never kept.
	seq uint64
	// failingUntil is when the backend may be asked again after a failed
	// read (see failRetry).
	failingUntil time.Time

	hits, misses, stale atomic.Uint64 // for Stats
}

// Stats are the counters of a Store's reads since New.
type Stats struct {
	Hits   uint64 // answered from the table
	Misses uint64 // asked the backend, or joined a read of it in flight
	Stale  uint64 // answered past their TTL because the backend failed
	// Entries is the size of the table now, expired entries included.
	Entries int
}

// Stats returns the counters of the cached reads, for the metrics.
func (s *Store) Stats() Stats {
	return Stats{Hits: s.hits.Load(), Misses: s.misses.Load(), Stale: s.stale.Load(), Entries: s.Len()}
}

// New answers a Store caching the reads of inner. With a Bus, Run must run
// for the Store to hear the other instances' writes.
func New(inner Backend, opts Options) *Store {
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		inner:      inner,
		ttl:        opts.TTL,
		maxStale:   max(opts.MaxStale, 0),
		maxEntries: opts.MaxEntries,
		now:        opts.Now,
		bus:        opts.Bus,
		logger:     opts.Logger,
		entries:    make(map[key]entry),
	}
	s.writes = writes{Store: inner, invalidate: s.invalidate}
	return s
}

// Len answers the number of entries in the table, expired ones included.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.entries)
}

// Run listens to the other instances' invalidations until ctx is done. It
// retries a failed subscription, and flushes the table once subscribed:
// announcements made before then were not heard. Without a Bus it just
// waits for ctx.
func (s *Store) Run(ctx context.Context) {
	if s.bus == nil {
		<-ctx.Done()
		return
	}
	const maxBackoff = 5 * time.Second
	backoff := 100 * time.Millisecond
	for {
		stop, err := s.bus.Subscribe(ctx, s.handle)
		if err == nil {
			s.apply(Resync)
			<-ctx.Done()
			stop()
			return
		}
		if ctx.Err() != nil {
			return
		}
		s.logger.WarnContext(ctx, "cache invalidation bus: subscribe failed, retrying", "err", err, "retry_in", backoff.String())
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// handle applies a message from the bus.
func (s *Store) handle(msg string) {
	if msg == Resync {
		s.logger.Info("cache invalidation bus: (re)subscribed, flushing the cache")
	}
	s.apply(strings.Fields(msg)...)
}

// Invalidation messages: space-separated tokens.
const (
	tokClient      = "c:"  // c:<id>, one client
	tokUser        = "u:"  // u:<id>, one user
	tokAllClients  = "c:*" // every client
	tokAllUsers    = "u:*" // every user
	tokAllAccounts = "a:*" // every answer about accounts: active, subtree, standing, policies, budgets
)

func clientToken(id int64) string { return tokClient + strconv.FormatInt(id, 10) }
func userToken(id int64) string   { return tokUser + strconv.FormatInt(id, 10) }

// apply evicts what tokens name. An unknown token flushes everything: a
// newer instance may speak a message this one does not know.
func (s *Store) apply(tokens ...string) {
	if len(tokens) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	for _, tok := range tokens {
		switch tok {
		case Resync:
			clear(s.entries)
			continue
		case tokAllClients:
			s.dropKindLocked(kindClient)
			continue
		case tokAllUsers:
			s.dropKindLocked(kindUser)
			continue
		case tokAllAccounts:
			s.dropKindLocked(kindAccountActive, kindAccountInSubtree, kindAccountStanding, kindEffectivePolicies, kindAccountBudgets)
			continue
		}
		if id, ok := parseToken(tok, tokClient); ok {
			delete(s.entries, key{kind: kindClient, a: id})
			continue
		}
		if id, ok := parseToken(tok, tokUser); ok {
			delete(s.entries, key{kind: kindUser, a: id})
			continue
		}
		s.logger.Warn("cache invalidation bus: unknown message, flushing the cache", "token", tok)
		clear(s.entries)
	}
}

func parseToken(tok, prefix string) (int64, bool) {
	rest, ok := strings.CutPrefix(tok, prefix)
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	return id, err == nil
}

func (s *Store) dropKindLocked(kinds ...kind) {
	for k := range s.entries {
		if slices.Contains(kinds, k.kind) {
			delete(s.entries, k)
		}
	}
}

// invalidate evicts what tokens name here and announces it to the other
// instances. A failed announcement is logged, never returned: the write it
// follows has happened, and TTL bounds the staleness it causes.
func (s *Store) invalidate(ctx context.Context, tokens ...string) {
	if len(tokens) == 0 {
		return
	}
	s.apply(tokens...)
	if s.bus == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if err := s.bus.Publish(ctx, strings.Join(tokens, " ")); err != nil {
		s.logger.ErrorContext(ctx, "cache invalidation bus: publish failed; other instances may serve stale entries until they expire",
			"err", err, "ttl", s.ttl.String())
	}
}

// lookup answers the live entry for k, if any.
func (s *Store) lookup(k key) (entry, bool) {
	e, fresh, _ := s.lookupStale(k)
	return e, fresh
}

// lookupStale answers the entry for k, whether it is live (fresh), and
// whether it may still be served while the backend fails (stale).
func (s *Store) lookupStale(k key) (e entry, fresh, stale bool) {
	s.mu.RLock()
	e, ok := s.entries[k]
	s.mu.RUnlock()
	if !ok {
		return entry{}, false, false
	}
	now := s.now()
	if now.Before(e.expires) {
		return e, true, false
	}
	return e, false, s.maxStale > 0 && now.Before(e.expires.Add(s.maxStale))
}

// failing reports whether a read failed less than failRetry ago.
func (s *Store) failing() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.now().Before(s.failingUntil)
}

// servingStale notes a failed read answered from a stale entry, logging it
// with ctx, the reading request's.
func (s *Store) servingStale(ctx context.Context, err error) {
	now := s.now()
	s.mu.Lock()
	first := !now.Before(s.failingUntil.Add(failRetry))
	s.failingUntil = now.Add(failRetry)
	s.mu.Unlock()
	if first {
		s.logger.WarnContext(ctx, "database read failed; serving cached entries up to their maximum staleness",
			"err", err, "max_stale", s.maxStale.String())
	}
}

// put caches an answer read while the invalidation count was seq, unless an
// invalidation happened since.
func (s *Store) put(k key, seq uint64, e entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seq != seq {
		return
	}
	if _, ok := s.entries[k]; !ok && len(s.entries) >= s.maxEntries {
		s.evictLocked()
	}
	s.entries[k] = e
}

// evictLocked makes room for an entry (expiring.EvictOne).
func (s *Store) evictLocked() {
	expiring.EvictOne(s.entries, func(e entry) time.Time { return e.expires })
}

// read answers k from the table or, once for all concurrent callers, from
// fetch. Found and not-found answers are cached; other errors are not, and
// are answered with the stale entry when there is one.
func read[T any](ctx context.Context, s *Store, k key, fetch func(ctx context.Context) (T, error)) (T, error) {
	e, fresh, stale := s.lookupStale(k)
	if fresh {
		s.hits.Add(1)
		return e.val.(T), e.err
	}
	if stale && s.failing() {
		s.stale.Add(1)
		return e.val.(T), e.err
	}
	s.misses.Add(1)
	s.mu.RLock()
	seq := s.seq
	s.mu.RUnlock()
	ch := s.group.DoChan(k.flightKey(seq), func() (any, error) {
		// A caller that missed just before the previous flight filled
		// the entry lands here: look again before asking the backend.
		if e, ok := s.lookup(k); ok {
			return e.val, e.err
		}
		// The query serves every caller waiting on it: one leaving must
		// not cancel it for the others. The backend bounds it by its own
		// query timeout.
		v, err := fetch(context.WithoutCancel(ctx))
		if err == nil || errors.Is(err, storage.ErrNotFound) {
			s.put(k, seq, entry{val: v, err: err, expires: s.now().Add(s.ttl)})
		}
		return v, err
	})
	select {
	case r := <-ch:
		if stale && r.Err != nil && !errors.Is(r.Err, storage.ErrNotFound) {
			s.servingStale(ctx, r.Err)
			s.stale.Add(1)
			return e.val.(T), e.err
		}
		return r.Val.(T), r.Err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// cloneClient copies the slices of c, so that no caller can change what the
// table holds.
func cloneClient(c storage.Client) storage.Client {
	c.GrantTypes = slices.Clone(c.GrantTypes)
	c.Scopes = slices.Clone(c.Scopes)
	c.RateLimits = maps.Clone(c.RateLimits)
	return c
}

// GetClient answers the client from the table or the backend.
func (s *Store) GetClient(ctx context.Context, id int64) (storage.Client, error) {
	c, err := read(ctx, s, key{kind: kindClient, a: id}, func(ctx context.Context) (storage.Client, error) {
		return s.inner.GetClient(ctx, id)
	})
	return cloneClient(c), err
}

// GetUser answers the user from the table or the backend.
func (s *Store) GetUser(ctx context.Context, id int64) (storage.User, error) {
	return read(ctx, s, key{kind: kindUser, a: id}, func(ctx context.Context) (storage.User, error) {
		return s.inner.GetUser(ctx, id)
	})
}

// AccountActive answers from the table or the backend.
func (s *Store) AccountActive(ctx context.Context, id int64) (bool, error) {
	return read(ctx, s, key{kind: kindAccountActive, a: id}, func(ctx context.Context) (bool, error) {
		return s.inner.AccountActive(ctx, id)
	})
}

// AccountStanding answers from the table or the backend; it is dropped
// with every AccountActive answer, on any change of any account.
func (s *Store) AccountStanding(ctx context.Context, id int64) (storage.Standing, error) {
	return read(ctx, s, key{kind: kindAccountStanding, a: id}, func(ctx context.Context) (storage.Standing, error) {
		return s.inner.AccountStanding(ctx, id)
	})
}

// EffectivePolicies answers from the table or the backend. A child's
// answer depends on its ancestors' settings, so, like AccountStanding, it
// is dropped on any change of any account.
func (s *Store) EffectivePolicies(ctx context.Context, id int64) (storage.EffectivePolicies, error) {
	return read(ctx, s, key{kind: kindEffectivePolicies, a: id}, func(ctx context.Context) (storage.EffectivePolicies, error) {
		return s.inner.EffectivePolicies(ctx, id)
	})
}

// AccountBudgets answers from the table or the backend. A child's answer
// holds its ancestors' budgets, so, like AccountStanding, it is dropped on
// any change of any account. The gateway reads it on every check.
func (s *Store) AccountBudgets(ctx context.Context, id int64) (storage.BudgetChain, error) {
	c, err := read(ctx, s, key{kind: kindAccountBudgets, a: id}, func(ctx context.Context) (storage.BudgetChain, error) {
		return s.inner.AccountBudgets(ctx, id)
	})
	return cloneBudgets(c), err
}

// cloneBudgets copies the slices and maps of c, so that no caller can change
// what the table holds.
func cloneBudgets(c storage.BudgetChain) storage.BudgetChain {
	if c.Budgets == nil {
		return c
	}
	out := make([]storage.AccountBudget, len(c.Budgets))
	for i, b := range c.Budgets {
		out[i] = storage.AccountBudget{AccountID: b.AccountID, Budget: storage.Budget{RateLimits: maps.Clone(b.Budget.RateLimits)}}
		if b.Budget.Quota != nil {
			q := *b.Budget.Quota
			out[i].Budget.Quota = &q
		}
	}
	c.Budgets = out
	return c
}

// AccountInSubtree answers from the table or the backend.
func (s *Store) AccountInSubtree(ctx context.Context, rootID, id int64) (bool, error) {
	return read(ctx, s, key{kind: kindAccountInSubtree, a: rootID, b: id}, func(ctx context.Context) (bool, error) {
		return s.inner.AccountInSubtree(ctx, rootID, id)
	})
}

// touch moves the cached LastUsedAt of the clients forward, as the backend
// stores it (UTC, microseconds). Nothing is evicted or announced.
func (s *Store) touch(uses map[int64]time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, t := range uses {
		k := key{kind: kindClient, a: id}
		e, ok := s.entries[k]
		if !ok || e.err != nil {
			continue
		}
		c := e.val.(storage.Client)
		if t = t.UTC().Truncate(time.Microsecond); t.After(c.LastUsedAt) {
			c.LastUsedAt = t
			e.val = c
			s.entries[k] = e
		}
	}
}

// Ping asks the backend.
func (s *Store) Ping(ctx context.Context) error { return s.inner.Ping(ctx) }

// InTx runs fn in a transaction of the backend. fn's store reads from the
// transaction, never from the table, and evicts what it writes at once;
// once the transaction has committed (or its commit failed, which may
// still have committed) the same entries are evicted again and announced.
// A rolled back transaction announces nothing.
func (s *Store) InTx(ctx context.Context, fn func(tx storage.Store) error) error {
	var (
		tx    *txStore
		fnErr error
	)
	err := s.inner.InTx(ctx, func(inner storage.Store) error {
		pending := make(map[string]struct{})
		tx = &txStore{pending: pending, writes: writes{Store: inner, invalidate: func(_ context.Context, tokens ...string) {
			s.apply(tokens...)
			for _, tok := range tokens {
				pending[tok] = struct{}{}
			}
		}}}
		fnErr = fn(tx)
		return fnErr
	})
	if tx != nil && fnErr == nil {
		s.invalidate(ctx, slices.Sorted(maps.Keys(tx.pending))...)
	}
	return err
}

// txStore is the store InTx hands to fn: the backend's transaction with its
// writes noted, to be evicted and announced after the commit. Its reads go
// to the transaction, never to the table, and TouchClient and TouchClients
// are not reflected in the table: the transaction may still roll back.
type txStore struct {
	writes
	pending map[string]struct{}
}

// writes passes every call to the storage.Store it embeds, and hands what
// a write touched to invalidate. Store embeds it with invalidate evicting
// and announcing at once; txStore with invalidate noting what to announce
// after the commit. A write whose method is not defined here passes
// through unnoticed: see TestEveryMethodClassified.
type writes struct {
	storage.Store
	invalidate func(ctx context.Context, tokens ...string)
}

// CreateAccount creates in the backend and drops every account answer.
func (w writes) CreateAccount(ctx context.Context, a storage.Account) (storage.Account, error) {
	a, err := w.Store.CreateAccount(ctx, a)
	// Any new id may have been cached as unknown.
	w.invalidate(ctx, tokAllAccounts)
	return a, err
}

// UpdateAccount updates in the backend and drops every account answer.
func (w writes) UpdateAccount(ctx context.Context, id int64, update func(*storage.Account) error) (storage.Account, error) {
	a, err := w.Store.UpdateAccount(ctx, id, update)
	// The answers of every descendant depend on this account.
	w.invalidate(ctx, tokAllAccounts)
	return a, err
}

// CreateUser creates in the backend and drops the new id.
func (w writes) CreateUser(ctx context.Context, u storage.User) (storage.User, error) {
	u, err := w.Store.CreateUser(ctx, u)
	if err == nil {
		w.invalidate(ctx, userToken(u.ID)) // may have been cached as unknown
	}
	return u, err
}

// UpdateUser updates in the backend and drops the user.
func (w writes) UpdateUser(ctx context.Context, id int64, update func(*storage.User) error) (storage.User, error) {
	u, err := w.Store.UpdateUser(ctx, id, update)
	w.invalidate(ctx, userToken(id))
	return u, err
}

// DeleteUser deletes in the backend and drops the user and every client.
func (w writes) DeleteUser(ctx context.Context, id int64) error {
	err := w.Store.DeleteUser(ctx, id)
	// The user's credentials go with them, and others' lose CreatedBy.
	w.invalidate(ctx, userToken(id), tokAllClients)
	return err
}

// CreateClient creates in the backend and drops the new id.
func (w writes) CreateClient(ctx context.Context, c storage.Client) (storage.Client, error) {
	c, err := w.Store.CreateClient(ctx, c)
	if err == nil {
		w.invalidate(ctx, clientToken(c.ID)) // may have been cached as unknown
	}
	return c, err
}

// UpdateClient updates in the backend and drops the client.
func (w writes) UpdateClient(ctx context.Context, id int64, update func(*storage.Client) error) (storage.Client, error) {
	c, err := w.Store.UpdateClient(ctx, id, update)
	w.invalidate(ctx, clientToken(id))
	return c, err
}

// DeleteClient deletes in the backend and drops the client.
func (w writes) DeleteClient(ctx context.Context, id int64) error {
	err := w.Store.DeleteClient(ctx, id)
	w.invalidate(ctx, clientToken(id))
	return err
}

// DisableStale disables in the backend and drops the clients it disabled.
func (w writes) DisableStale(ctx context.Context, unusedSince, now time.Time) ([]storage.Client, error) {
	disabled, err := w.Store.DisableStale(ctx, unusedSince, now)
	switch {
	case err != nil || len(disabled) > manyClients:
		// A failure may have disabled some.
		w.invalidate(ctx, tokAllClients)
	case len(disabled) > 0:
		tokens := make([]string, len(disabled))
		for i, c := range disabled {
			tokens[i] = clientToken(c.ID)
		}
		w.invalidate(ctx, tokens...)
	}
	return disabled, err
}

// TouchClient writes to the backend and moves the cached LastUsedAt.
func (s *Store) TouchClient(ctx context.Context, id int64, t time.Time) error {
	if err := s.inner.TouchClient(ctx, id, t); err != nil {
		return err
	}
	s.touch(map[int64]time.Time{id: t})
	return nil
}

// TouchClients writes to the backend and moves the cached LastUsedAt.
func (s *Store) TouchClients(ctx context.Context, uses map[int64]time.Time) error {
	if err := s.inner.TouchClients(ctx, uses); err != nil {
		return err
	}
	s.touch(uses)
	return nil
}

var _ storage.Store = (*txStore)(nil)
