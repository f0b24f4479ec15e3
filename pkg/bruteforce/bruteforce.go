// Package bruteforce owns Tollgate's protection against guessing secrets and
// passwords: it counts failed authentications per identity (a client id, a
// username) and per source address, and once a key has failed Threshold
// times it refuses further attempts for a back-off that doubles with each
// further failure, up to MaxDelay. The refusal comes before any secret is
// compared, and it refuses a correct secret too, so a block tells an
// attacker nothing about the secret.
//
// The counters live in a Store: bruteforce/redis (shared by every Tollgate
// instance) or bruteforce/memory (in process, for the embedded default).
// Both pass bruteforce/conformance. Keys never contain a secret: client ids
// and source addresses are stored as they are, usernames as a SHA-256 hash
// (usernames are not secret, but hashing bounds the key size).
//
// Policy, and its trade-offs:
//
//   - No permanent lock-out. The back-off is capped (MaxDelay), a key's
//     failures are forgotten after a quiet Window, and a success resets the
//     identity's counter: the legitimate owner always gets in once the
//     current back-off has passed.
//   - Keys are independent: failing on client A never delays client B, and a
//     blocked source never blocks another source.
//   - The identity dimension lets anyone who knows a client id or a username
//     delay its owner by failing on purpose. That is accepted: the delay is
//     bounded by MaxDelay per attempt, and without it a distributed attacker
//     (many sources) could guess one credential unhindered.
//   - The source dimension counts failures from one address across all
//     identities (password spraying). Clients behind one NAT share it, hence
//     a higher threshold (SourceThreshold). A success does not reset it, so
//     an attacker holding one good credential cannot launder failures.
//   - The source is the peer address of the TCP connection (IPv6 grouped by
//     /64, see Source). Headers set by proxies (X-Forwarded-For, Forwarded)
//     are not trusted: behind a load balancer every request shares its
//     address, and the source dimension then acts as a global brake; trusted
//     proxy configuration is future work.
//   - When the Store fails, the protection fails open (the attempt goes
//     ahead, the failure is logged): authentication itself still works and
//     the per-second limiters still hold, while failing closed would turn a
//     Redis hiccup into refused logins for everybody.
package bruteforce

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Record is what a Store knows of one key.
type Record struct {
	// Failures is the number of failures since the key was last reset or
	// went quiet; 0 for a key never seen (or expired).
	Failures int
	// Last is the time of the last failure, to the millisecond.
	Last time.Time
}

// Store counts failures per key. Keys are stored as given (in Redis, in
// clear text under the store's prefix): callers pass identifiers, never a
// secret. Every method takes any number of keys and answers in their order,
// in one round trip where the backend allows.
type Store interface {
	// Get answers the records of keys.
	Get(ctx context.Context, keys ...string) ([]Record, error)
	// Fail records one failure of each key at now and answers the new
	// records. A key whose last failure is window or more before now starts
	// over at 1. A key expires by itself window after its last failure.
	Fail(ctx context.Context, now time.Time, window time.Duration, keys ...string) ([]Record, error)
	// Reset forgets keys.
	Reset(ctx context.Context, keys ...string) error
}

// Kind says what a Guard protects; it names the keys, the metric label and
// the log fields.
type Kind string

// Kinds of Guard.
const (
	// KindClient guards client authentication; ids are client ids.
	KindClient Kind = "client"
	// KindUser guards user passwords; ids are usernames, hashed.
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
	// StoreTimeout bounds recording a failure, which is not cancelled with
	// the request, so that a caller hanging up cannot avoid being counted
	// (default 2s).
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
	return &Guard{store: store, opts: opts}
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
// reports its outcome with Failed or Succeeded. The zero Attempt (no Guard)
// does nothing.
type Attempt struct {
	g      *Guard
	keys   []string // the identity's key, then the source's if any
	logID  slog.Attr
	source string
	// dirty is set when the identity may have failures to reset.
	dirty bool
}

// Begin starts an attempt by id (a client id or a username) from source (a
// Source; empty when unknown: then only the identity is counted). It
// answers a *BlockedError when the identity or the source is held back. A
// Store failure lets the attempt through.
func (g *Guard) Begin(ctx context.Context, id, source string) (Attempt, error) {
	a := Attempt{g: g, keys: g.keys(id, source), logID: g.logID(id), source: source}
	recs, err := g.store.Get(ctx, a.keys...)
	if err != nil {
		g.opts.Logger.WarnContext(ctx, "brute-force store unavailable; failing open",
			"kind", string(g.opts.Kind), a.logID, "err", err)
		a.dirty = true
		return a, nil
	}
	now := g.opts.Now()
	var wait time.Duration
	dimension := ""
	for i, rec := range recs {
		threshold, dim := g.opts.Threshold, DimensionID
		if i > 0 {
			threshold, dim = g.opts.SourceThreshold, DimensionSource
		}
		if w := g.wait(rec, threshold, now); w > wait {
			wait, dimension = w, dim
		}
	}
	if wait > 0 {
		g.opts.Metrics.BruteForceBlocked(string(g.opts.Kind), dimension)
		g.opts.Logger.WarnContext(ctx, "brute-force protection refused an attempt",
			"kind", string(g.opts.Kind), a.logID, "source", source, "dimension", dimension,
			"retry_after_ms", wait.Milliseconds())
		return Attempt{}, &BlockedError{RetryAfter: wait}
	}
	a.dirty = len(recs) > 0 && recs[0].Failures > 0
	return a, nil
}

// Failed records that the attempt's secret was wrong.
func (a Attempt) Failed(ctx context.Context) {
	if a.g == nil {
		return
	}
	g := a.g
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.opts.StoreTimeout)
	defer cancel()
	recs, err := g.store.Fail(ctx, g.opts.Now(), g.opts.Window, a.keys...)
	if err != nil {
		g.opts.Logger.WarnContext(ctx, "brute-force store unavailable; failure not counted",
			"kind", string(g.opts.Kind), a.logID, "err", err)
		return
	}
	for i, rec := range recs {
		threshold, dim := g.opts.Threshold, DimensionID
		if i > 0 {
			threshold, dim = g.opts.SourceThreshold, DimensionSource
		}
		if rec.Failures >= threshold {
			g.opts.Logger.WarnContext(ctx, "brute-force back-off",
				"kind", string(g.opts.Kind), a.logID, "source", a.source, "dimension", dim,
				"failures", rec.Failures, "delay_ms", g.delay(rec.Failures-threshold).Milliseconds())
		}
	}
}

// Succeeded records that the attempt's secret was right: the identity's
// failures are forgotten. The source's are not, so that one good
// credential cannot launder an attacker's failures on others.
func (a Attempt) Succeeded(ctx context.Context) {
	if a.g == nil || !a.dirty {
		return
	}
	if err := a.g.store.Reset(ctx, a.keys[0]); err != nil {
		a.g.opts.Logger.WarnContext(ctx, "brute-force store unavailable; failures not reset",
			"kind", string(a.g.opts.Kind), a.logID, "err", err)
	}
}

// wait answers how long rec holds attempts back at now.
func (g *Guard) wait(rec Record, threshold int, now time.Time) time.Duration {
	if rec.Failures < threshold || now.Sub(rec.Last) >= g.opts.Window {
		return 0
	}
	return max(rec.Last.Add(g.delay(rec.Failures-threshold)).Sub(now), 0)
}

// delay answers the back-off after the failure that is extra failures past
// the threshold: BaseDelay doubled extra times, capped at MaxDelay.
func (g *Guard) delay(extra int) time.Duration {
	d := g.opts.BaseDelay
	for range extra {
		if d >= g.opts.MaxDelay {
			break
		}
		d *= 2
	}
	return min(d, g.opts.MaxDelay)
}

// keys answers the Store keys of an attempt by id from source.
func (g *Guard) keys(id, source string) []string {
	prefix := "c:"
	if g.opts.Kind == KindUser {
		prefix = "u:"
		id = HashID(id)
	}
	keys := []string{prefix + "id:" + id}
	if source != "" {
		keys = append(keys, prefix+"src:"+source)
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

// Source answers the source address counted for a request from remoteAddr
// (http.Request.RemoteAddr, "host:port"): the IP address, or for IPv6 its
// /64 network, which one subscriber typically holds whole. An address that
// does not parse is answered as it is, cut to 64 bytes.
func Source(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host[:min(len(host), 64)]
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}
