// Package bruteforce owns Tollgate's protection against guessing secrets and
// passwords: it counts failed authentications per identity and per source
// address, and once a key has failed Threshold times it holds further
// attempts back for a back-off that doubles with each further failure, up
// to MaxDelay.
//
// The counters live in a Store: bruteforce/redis (shared by every Tollgate
// instance) or bruteforce/memory (in process, for the embedded default).
// Both pass bruteforce/conformance. Keys never contain a secret: client ids
// and source addresses are stored as they are, usernames as a SHA-256 hash
// (usernames are not secret, but hashing bounds the key size).
//
// Policy, and its trade-offs:
//
//   - Client secrets (KindClient) are 256-bit random: guessing one is
//     hopeless, so a block must never keep the owner out. The secret is
//     compared first; a correct secret always gets in, and the block applies
//     only to wrong secrets, which are answered "blocked" (429) instead of
//     "wrong" (401). That reveals nothing: the secret cannot be guessed
//     either way. The identity key is the client id. Since the comparison
//     happens anyway, nothing is reserved before it: only a wrong secret
//     touches the Store (one round trip), and a right one none at all, so
//     the guard costs the hot path of every machine client nothing. A right
//     secret therefore does not reset the client id's failures either: they
//     are forgotten after a quiet Window, and until then only wrong secrets
//     feel them.
//   - Passwords (KindUser) are chosen by people and guessable, so a block
//     refuses every attempt before the password is compared, the correct one
//     included (the refusal tells nothing about the password). The identity
//     key is the username *and* the source: an attacker at one address
//     cannot lock the user out from another address. The source dimension
//     (failures from one address across all usernames) is the brake on
//     password spraying, and a distributed attacker gets Threshold attempts,
//     then the back-off, per source address.
//   - No permanent lock-out. The back-off is capped (MaxDelay), a key's
//     failures are forgotten after a quiet Window, and a success resets the
//     identity's counter.
//   - Keys are independent: failing on client A never delays client B, and a
//     blocked source never blocks another source.
//   - The source dimension counts failures from one address across all
//     identities. Clients behind one NAT share it, hence a higher threshold
//     (SourceThreshold). A success does not reset it, so an attacker holding
//     one good credential cannot launder failures.
//   - The source is the peer address of the TCP connection (IPv6 grouped by
//     /64, see Source), or, when that peer is a configured trusted proxy,
//     the address it forwarded (see ClientIP, which reqctx applies).
//   - Counting of passwords is atomic: Begin reserves the attempt (counts it as a failure
//     in the same step that checks the back-off, one Redis script per key or
//     under the memory store's lock), and the outcome settles it: a success
//     takes the reservation back and resets the identity, a failure keeps
//     it. Concurrent wrong attempts therefore get at most Threshold
//     comparisons before the back-off, however many arrive at once.
//   - When the Store fails, the protection fails open (the attempt goes
//     ahead, the failure is logged): authentication itself still works and
//     the per-second limiters still hold, while failing closed would turn a
//     Redis hiccup into refused logins for everybody.
package bruteforce

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"
)

// Record is what a Store knows of one key.
type Record struct {
	// Failures is the number of failures (reservations not taken back)
	// since the key was last reset or went quiet; 0 for a key never seen
	// (or expired).
	Failures int
	// Last is the time of the last failure, to the millisecond.
	Last time.Time
}

// Policy says when a key holds attempts back.
type Policy struct {
	// Threshold is the number of failures after which attempts are held
	// back.
	Threshold int
	// BaseDelay is the back-off after the failure that reaches Threshold;
	// it doubles with each further failure, up to MaxDelay.
	BaseDelay, MaxDelay time.Duration
	// Window is the quiet time after which a key's failures are forgotten.
	Window time.Duration
}

// Delay answers the back-off after the failure that is extra failures past
// the threshold: BaseDelay doubled extra times, capped at MaxDelay.
func (p Policy) Delay(extra int) time.Duration {
	d := p.BaseDelay
	for range extra {
		if d >= p.MaxDelay {
			break
		}
		d *= 2
	}
	return min(d, p.MaxDelay)
}

// Wait answers how long rec holds attempts back at now: 0 below the
// threshold, after a quiet window, or once the back-off since the last
// failure has passed.
func (p Policy) Wait(rec Record, now time.Time) time.Duration {
	if rec.Failures < p.Threshold || now.Sub(rec.Last) >= p.Window {
		return 0
	}
	return max(rec.Last.Add(p.Delay(rec.Failures-p.Threshold)).Sub(now), 0)
}

// Request asks a Store to reserve an attempt on Key under Policy.
type Request struct {
	Key    string
	Policy Policy
}

// Result is a Store's answer to one Request.
type Result struct {
	// Record is the key's record after the call.
	Record Record
	// Wait is how long the key holds attempts back; when it is positive
	// nothing was counted.
	Wait time.Duration
	// Reservation is what was counted, to take back with Release; zero
	// (no Key) when nothing was.
	Reservation Reservation
}

// Reservation is one failure a Store counted for an attempt whose outcome
// is not known yet.
type Reservation struct {
	Key string
	// Seq numbers the reservation among the key's: Release restores the
	// key's last failure time only when no later reservation counted.
	Seq int64
	// Prev is the key's last failure before the reservation (zero when
	// none, or when the reservation started the count over).
	Prev time.Time
}

// Store counts failures per key. Keys are stored as given (in Redis, in
// clear text under the store's prefix): callers pass identifiers, never a
// secret. Every method takes any number of keys and answers in their order,
// in one round trip where the backend allows.
type Store interface {
	// Get answers the records of keys.
	Get(ctx context.Context, keys ...string) ([]Record, error)
	// Reserve checks and counts, as one atomic step per key: a key that
	// holds attempts back at now (Policy.Wait of its record is positive)
	// answers the wait and counts nothing; any other key counts one
	// failure at now, starting over at 1 when its last failure is a
	// Policy.Window or more before now, and expires by itself a window
	// after now. So concurrent reservations on one key are counted one
	// after the other and none passes the threshold unseen. A Store may
	// also count none of the keys when one holds back (all or nothing);
	// what it counted is in the Results' Reservations.
	Reserve(ctx context.Context, now time.Time, reqs ...Request) ([]Result, error)
	// Release takes back each reservation in release: one failure fewer
	// (never below zero; a key left at zero is forgotten), and the key's
	// last failure time back to Prev when the reservation is the key's
	// latest. It forgets the keys in reset.
	Release(ctx context.Context, release []Reservation, reset []string) error
}

// Kind says what a Guard protects; it names the keys, the metric label and
// the log fields.
type Kind string

// Kinds of Guard.
const (
	// KindClient guards client authentication; ids are client ids. The
	// secret is compared even during a block; only a wrong secret is
	// refused.
	KindClient Kind = "client"
	// KindUser guards user passwords; ids are usernames, hashed, and
	// counted per source. A block refuses before the password is compared.
	KindUser Kind = "user"
)

// Dimensions a block is counted under.
const (
	DimensionID     = "id"
	DimensionSource = "source"
)

// Metrics counts refused attempts. kind and dimension come from the fixed
// sets above.
type Metrics interface {
	BruteForceBlocked(kind, dimension string)
}

type nopMetrics struct{}

func (nopMetrics) BruteForceBlocked(string, string) {}

// Defaults of Options.
const (
	DefaultThreshold       = 5
	DefaultSourceThreshold = 20
	DefaultBaseDelay       = time.Second
	DefaultMaxDelay        = 5 * time.Minute
	DefaultWindow          = 15 * time.Minute
)

// Options configure a Guard. Zero values take the defaults.
type Options struct {
	Kind Kind
	// Threshold is the number of failures of one identity after which its
	// attempts are held back (DefaultThreshold).
	Threshold int
	// SourceThreshold is the same for one source address, across
	// identities (DefaultSourceThreshold).
	SourceThreshold int
	// BaseDelay is the back-off after the failure that reaches a threshold;
	// it doubles with each further failure (DefaultBaseDelay) up to
	// MaxDelay (DefaultMaxDelay).
	BaseDelay time.Duration
	MaxDelay  time.Duration
	// Window is the quiet period after which a key's failures are
	// forgotten (DefaultWindow); never less than MaxDelay.
	Window time.Duration
	// StoreTimeout bounds each Store call. Store calls are not cancelled
	// with the request, so that a caller hanging up cannot avoid being
	// counted nor leave a success unsettled (default 2s).
	StoreTimeout time.Duration
	Logger       *slog.Logger
	Metrics      Metrics
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Guard holds back identities and sources that failed too often. It is
// safe for concurrent use.
type Guard struct {
	store Store
	opts  Options
	id    Policy
	src   Policy
}

// New answers a Guard counting in store.
func New(store Store, opts Options) *Guard {
	if opts.Kind == "" {
		opts.Kind = KindClient
	}
	if opts.Threshold <= 0 {
		opts.Threshold = DefaultThreshold
	}
	if opts.SourceThreshold <= 0 {
		opts.SourceThreshold = DefaultSourceThreshold
	}
	if opts.BaseDelay <= 0 {
		opts.BaseDelay = DefaultBaseDelay
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = DefaultMaxDelay
	}
	opts.MaxDelay = max(opts.MaxDelay, opts.BaseDelay)
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	// A key must outlive the longest back-off, or the block would vanish
	// with it.
	opts.Window = max(opts.Window, opts.MaxDelay)
	if opts.StoreTimeout <= 0 {
		opts.StoreTimeout = 2 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = nopMetrics{}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	p := Policy{BaseDelay: opts.BaseDelay, MaxDelay: opts.MaxDelay, Window: opts.Window}
	id, src := p, p
	id.Threshold, src.Threshold = opts.Threshold, opts.SourceThreshold
	return &Guard{store: store, opts: opts, id: id, src: src}
}

// BlockedError refuses an attempt: too many recent failures.
type BlockedError struct {
	// RetryAfter is how long until an attempt is let through again.
	RetryAfter time.Duration
}

func (e *BlockedError) Error() string {
	return fmt.Sprintf("too many failed authentication attempts: retry after %v", e.RetryAfter)
}

// Attempt is one authentication attempt a Guard let through. The caller
// settles it with exactly one of Succeeded, Failed or Cancel; an attempt
// never settled stays counted as a failure. The zero Attempt (no Guard, or
// a Store failure) does nothing.
type Attempt struct {
	g      *Guard
	keys   []string // the identity's key, then the source's if any
	logID  slog.Attr
	source string
	// held are the reservations Begin made, in the order of keys.
	held []Reservation
	// records are the keys' records after the reservation.
	records []Record
	// blocked is set on a KindClient attempt made during a block: the
	// secret is compared, and only a wrong one is refused.
	blocked   *BlockedError
	dimension string
}

// Begin starts an attempt by id (a client id or a username) from source (a
// Source; empty when unknown: then only the identity is counted), and
// reserves it: it counts as a failure until Succeeded or Cancel takes it
// back.
//
// For KindUser it answers a *BlockedError, before any password is
// compared, when the identity or the source is held back. For KindClient it
// never does: the secret is compared anyway, and Failed answers the
// *BlockedError for a wrong one. A Store failure lets the attempt through,
// uncounted.
func (g *Guard) Begin(ctx context.Context, id, source string) (Attempt, error) {
	a := Attempt{g: g, keys: g.keys(id, source), logID: g.logID(id), source: source}
	if g.opts.Kind == KindClient {
		// The secret is compared whatever the counts say: count only a
		// wrong one, in Failed.
		return a, nil
	}
	return g.reserve(ctx, a)
}

// reserve counts a as a failure, unless one of its keys holds attempts
// back: then it counts nothing and sets a.blocked, and for KindUser answers
// the *BlockedError.
func (g *Guard) reserve(ctx context.Context, a Attempt) (Attempt, error) {
	reqs := make([]Request, len(a.keys))
	for i, k := range a.keys {
		reqs[i] = Request{Key: k, Policy: g.policy(i)}
	}
	sctx, cancel := g.storeContext(ctx)
	defer cancel()
	res, err := g.store.Reserve(sctx, g.opts.Now(), reqs...)
	if err != nil {
		g.opts.Logger.WarnContext(ctx, "brute-force store unavailable; failing open",
			"kind", string(g.opts.Kind), a.logID, "err", err)
		return Attempt{}, nil
	}
	var wait time.Duration
	var held []Reservation
	for i, r := range res {
		if r.Wait > wait {
			wait, a.dimension = r.Wait, dimension(i)
		}
		if r.Reservation.Key != "" {
			held = append(held, r.Reservation)
		}
		a.records = append(a.records, r.Record)
	}
	if wait <= 0 {
		a.held = held
		return a, nil
	}
	// Held back on one key: take back what was counted on the others.
	a.records = nil
	if len(held) > 0 {
		if err := g.store.Release(sctx, held, nil); err != nil {
			g.opts.Logger.WarnContext(ctx, "brute-force store unavailable; reservation not taken back",
				"kind", string(g.opts.Kind), a.logID, "err", err)
		}
	}
	a.blocked = &BlockedError{RetryAfter: wait}
	if g.opts.Kind == KindClient {
		return a, nil
	}
	g.refused(ctx, a)
	return Attempt{}, a.blocked
}

// Failed settles the attempt as a wrong secret: its reservation stays
// counted (a KindClient attempt is counted now, in one Store call). It
// answers the *BlockedError of a KindClient attempt made during a block,
// which the caller answers instead of its usual failure; nil otherwise.
func (a Attempt) Failed(ctx context.Context) error {
	if a.g == nil {
		return nil
	}
	g := a.g
	if g.opts.Kind == KindClient {
		var err error
		if a, err = g.reserve(ctx, a); err != nil || a.g == nil {
			return err // never for KindClient; a.g is nil when the Store failed
		}
	}
	if a.blocked != nil {
		g.refused(ctx, a)
		return a.blocked
	}
	for i, rec := range a.records {
		p := g.policy(i)
		if rec.Failures >= p.Threshold {
			g.opts.Logger.WarnContext(ctx, "brute-force back-off",
				"kind", string(g.opts.Kind), a.logID, "source", a.source, "dimension", dimension(i),
				"failures", rec.Failures, "delay_ms", p.Delay(rec.Failures-p.Threshold).Milliseconds())
		}
	}
	return nil
}

// Succeeded settles the attempt as a right secret: for KindUser the
// reservation is taken back and the identity's failures are forgotten. The
// source's other failures are not, so that one good credential cannot
// launder an attacker's failures on others. For KindClient it does nothing:
// nothing was reserved, and a right secret gets in whatever the counts.
func (a Attempt) Succeeded(ctx context.Context) {
	if a.g == nil || a.g.opts.Kind == KindClient {
		return // a client attempt reserved nothing, and resets nothing
	}
	var release []Reservation
	for _, r := range a.held {
		if r.Key != a.keys[0] {
			release = append(release, r)
		}
	}
	a.g.release(ctx, a, release, a.keys[:1])
}

// Cancel settles an attempt that reached no verdict (a backend failed
// before the secret could be checked): the reservation is taken back,
// nothing else changes.
func (a Attempt) Cancel(ctx context.Context) {
	if a.g == nil || len(a.held) == 0 {
		return
	}
	a.g.release(ctx, a, a.held, nil)
}

func (g *Guard) release(ctx context.Context, a Attempt, release []Reservation, reset []string) {
	sctx, cancel := g.storeContext(ctx)
	defer cancel()
	if err := g.store.Release(sctx, release, reset); err != nil {
		g.opts.Logger.WarnContext(ctx, "brute-force store unavailable; attempt not settled",
			"kind", string(g.opts.Kind), a.logID, "err", err)
	}
}

// refused counts and logs a refusal.
func (g *Guard) refused(ctx context.Context, a Attempt) {
	g.opts.Metrics.BruteForceBlocked(string(g.opts.Kind), a.dimension)
	g.opts.Logger.WarnContext(ctx, "brute-force protection refused an attempt",
		"kind", string(g.opts.Kind), a.logID, "source", a.source, "dimension", a.dimension,
		"retry_after_ms", a.blocked.RetryAfter.Milliseconds())
}

// storeContext bounds a Store call by StoreTimeout, and keeps it from
// being cancelled with the request.
func (g *Guard) storeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), g.opts.StoreTimeout)
}

// policy answers the policy of the i-th key of an attempt: the identity's,
// then the source's.
func (g *Guard) policy(i int) Policy {
	if i == 0 {
		return g.id
	}
	return g.src
}

func dimension(i int) string {
	if i == 0 {
		return DimensionID
	}
	return DimensionSource
}

// keys answers the Store keys of an attempt by id from source: the
// identity's ("c:id:<client id>", or "u:id:<username hash>@<source>": a
// user is counted per source), then the source's ("c:src:…", "u:src:…")
// when it is known.
func (g *Guard) keys(id, source string) []string {
	if g.opts.Kind == KindUser {
		idKey := "u:id:" + HashID(id)
		if source == "" {
			return []string{idKey}
		}
		return []string{idKey + "@" + source, "u:src:" + source}
	}
	keys := []string{"c:id:" + id}
	if source != "" {
		keys = append(keys, "c:src:"+source)
	}
	return keys
}

func (g *Guard) logID(id string) slog.Attr {
	if g.opts.Kind == KindUser {
		return slog.String("username_hash", HashID(id))
	}
	if n, err := strconv.ParseInt(id, 10, 64); err == nil {
		return slog.Int64("client_id", n)
	}
	return slog.String("client_id", id)
}

// HashID answers the hash a username is keyed and logged by: the first 128
// bits of its SHA-256, in hex.
func HashID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:16])
}

// Starter begins attempts: a *Guard, or a caller's own interface that one
// satisfies.
type Starter interface {
	Begin(ctx context.Context, id, source string) (Attempt, error)
}

// Check runs verify as one attempt by id from source through g (nil: no
// protection), and settles it by verify's outcome: nil is a success; an
// error that is wrong (errors.Is) a failure, answered instead by the
// *BlockedError the attempt reports, if any; any other error (a backend
// failed) takes the attempt back. A *BlockedError from Begin answers
// before verify runs.
func Check[T any](ctx context.Context, g Starter, id, source string, wrong error, verify func() (T, error)) (T, error) {
	var zero T
	var attempt Attempt
	if g != nil {
		var err error
		if attempt, err = g.Begin(ctx, id, source); err != nil {
			return zero, err
		}
	}
	v, err := verify()
	switch {
	case err == nil:
		attempt.Succeeded(ctx)
	case errors.Is(err, wrong):
		if blocked := attempt.Failed(ctx); blocked != nil {
			return zero, blocked
		}
	default:
		attempt.Cancel(ctx)
	}
	return v, err
}
