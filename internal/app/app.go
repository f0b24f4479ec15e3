// Package app builds Tollgate's application graph — the stores, the fosite
// provider and its grants, the HTTP handlers and the background jobs — and
// runs it: the public and ops listeners, their graceful shutdown, and the
// background work. cmd/tollgate loads the configuration and owns the process
// (flags, signals); the end-to-end suites build the same graph through New.
package app

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/pkg/admin"
	"github.com/tollgate/tollgate/pkg/bruteforce"
	"github.com/tollgate/tollgate/pkg/console/session"
	"github.com/tollgate/tollgate/pkg/dpop"
	"github.com/tollgate/tollgate/pkg/manage"
	"github.com/tollgate/tollgate/pkg/meter"
	"github.com/tollgate/tollgate/pkg/metrics"
	"github.com/tollgate/tollgate/pkg/ratelimit"
	"github.com/tollgate/tollgate/pkg/secret"
	"github.com/tollgate/tollgate/pkg/server"
	"github.com/tollgate/tollgate/pkg/sweeper"
	"github.com/tollgate/tollgate/pkg/usage"
	"github.com/tollgate/tollgate/pkg/webhooks"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/storage/cache"
	sqlstore "github.com/tollgate/tollgate/storage/sql"
)

// cacheMaxStale is how long past its TTL a cached client, user or account
// answer is still served while the database cannot be read: tokens,
// introspection and checks of the credentials in use survive a database
// outage (or failover) that long.
const cacheMaxStale = 5 * time.Minute

// Deps are the opened stores and process services the application is built
// on.
type Deps struct {
	Keys config.Keys
	DB   Store
	// SigningKeys stores the token signing keys, sealed under
	// Keys.KeyEncryptionKey: the database, uncached, so that every
	// instance reads the others' rotations.
	SigningKeys storage.SigningKeys
	Tokens      TokenStore
	Limiter     ratelimit.Limiter
	// Meter takes the check's one decision and counts it (Backends.Meter);
	// in process when nil. Counter counts the check's refusals before a
	// decision (Backends.Counter); none when nil (the in-process one with
	// the in-process Meter).
	Meter   meter.Decider
	Counter usage.Counter
	// TokenMeter reads a token's record with the check's decision
	// (Backends.TokenMeter); Meter after the token's own store read when
	// nil.
	TokenMeter meter.TokenDecider
	// QuotaEvents hears of the quota thresholds the check's calls cross;
	// none when nil.
	QuotaEvents usage.QuotaEvents
	Failures    bruteforce.Store // brute-force counters; in process when nil
	Sessions    session.Store    // web console sessions; in process when nil
	// OneTimeIDs remembers the jtis of client assertions; in process when
	// nil.
	OneTimeIDs storage.OneTimeIDs
	Proofs     dpop.Replay // DPoP proofs used; in process when nil
	// QuotaSpent reads the quota counters the check keeps; nothing spent
	// (manage.NoQuotaSpent) when nil.
	QuotaSpent manage.QuotaSpent
	// Counts are the per-minute usage counts; in process when nil.
	Counts UsageCounts
	// Usage stores the rolled-up usage (the database, uncached); nil
	// turns usage counting, the roll-up and the usage API off.
	Usage storage.Usage
	// Passwords hashes and verifies user passwords.
	Passwords *secret.Passwords
	Logger    *slog.Logger
	// Now is the clock of every expiry; time.Now when nil.
	Now func() time.Time
	// Version is the server's version, for the start-up log and the
	// build-info metric.
	Version string
}

// New builds the application on cfg and the opened stores of d. It opens
// nothing and starts nothing: Run serves it. It reads the signing keys
// once (making the first one of a new installation), so that the JWK Set
// is served and JWT access tokens are signed from the first request.
func New(cfg config.Config, d Deps) (*App, error) {
	a, err := newApp(deps{cfg: cfg, keys: d.Keys, db: d.DB, signingKeys: d.SigningKeys, tokens: d.Tokens, limiter: d.Limiter, meter: d.Meter, tokenMeter: d.TokenMeter, counter: d.Counter, quotaEvents: d.QuotaEvents, failures: d.Failures,
		sessions: d.Sessions, oneTimeIDs: d.OneTimeIDs, proofs: d.Proofs, quotaSpent: d.QuotaSpent,
		counts: d.Counts, usage: d.Usage, passwords: d.Passwords, logger: d.Logger, now: d.Now, version: d.Version})
	if err != nil {
		return nil, err
	}
	a.cfg, a.logger, a.version = cfg, d.Logger, d.Version
	return a, nil
}

// Options are what Open takes besides the configuration.
type Options struct {
	Keys config.Keys
	// Migrate applies pending database migrations first; the embedded
	// default always does, and production refuses to serve a database with
	// pending migrations otherwise.
	Migrate bool
	Logger  *slog.Logger
	// Version is the server's version, for the start-up log and the
	// build-info metric.
	Version string
}

// Open opens the configured stores and builds the application on them, as
// `tollgate serve` runs it: the database behind the in-process cache of
// clients, users and accounts (invalidated on every instance through Redis
// when Redis is configured), and the tokens, rate limits, brute-force
// counters and console sessions in Redis or in process. Close closes the
// stores once Run has returned.
func Open(ctx context.Context, cfg config.Config, o Options) (*App, error) {
	db, err := OpenDatabase(ctx, cfg, o.Migrate, o.Logger)
	if err != nil {
		return nil, err
	}
	be, closeBackends, err := OpenBackends(cfg)
	if err != nil {
		_ = db.Close() // the open error is the one to report
		return nil, err
	}
	closeAll := func() error { return errors.Join(closeBackends(), db.Close()) }
	passwords, err := secret.NewPasswords(secret.DefaultArgon2Params)
	if err != nil {
		_ = closeAll() // the build error is the one to report
		return nil, err
	}
	// Clients, users and accounts are cached in process; writes on any
	// instance invalidate every instance's cache through Redis. While the
	// database is down, what was read recently keeps being served.
	var bus cache.Bus
	if be.Redis != nil {
		bus = cache.NewRedisBus(be.Redis, cfg.Redis.KeyPrefix+"cache")
	}
	cached := cache.New(db, cache.Options{Bus: bus, Logger: o.Logger, MaxStale: cacheMaxStale})
	a, err := New(cfg, Deps{Keys: o.Keys, DB: cached, SigningKeys: db, Tokens: be.Tokens, Limiter: be.Limiter, Meter: be.Meter, TokenMeter: be.TokenMeter, Counter: be.Counter, Failures: be.Failures,
		Sessions: be.Sessions, OneTimeIDs: be.OneTimeIDs, Proofs: be.Proofs, QuotaSpent: be.QuotaSpent,
		Counts: be.Counts, Usage: db, Passwords: passwords, Logger: o.Logger, Version: o.Version})
	if err != nil {
		_ = closeAll() // the build error is the one to report
		return nil, err
	}
	a.cache = cached
	a.closers = append(a.closers, closeAll)
	watchPools(a.metrics, db, cached, be.Redis)
	return a, nil
}

// Close closes the stores Open opened; the application must not serve
// after it. An application built by New has nothing to close.
func (a *App) Close() error {
	var errs []error
	for _, c := range a.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// Public returns the public handler: the OAuth endpoints, /auth/check, the
// management API and the console, with the security headers.
func (a *App) Public() http.Handler { return a.public }

// Ops returns the ops handler: /metrics, /healthz, /readyz, pprof when
// enabled.
func (a *App) Ops() http.Handler { return a.ops }

// Routes returns the routes of the public handler.
func (a *App) Routes() []server.Route { return a.routes }

// API returns the management API mounted on the public handler.
func (a *App) API() *admin.API { return a.api }

// Usage returns the recorder of last-used times, which Run flushes every
// credentials.last_used_flush_interval.
func (a *App) Usage() *usage.Recorder { return a.uses }

// UsageCounter returns the batcher of the token endpoint's and key
// session's usage counts (nil without a usage store), which Run flushes
// every usage.flush_interval.
func (a *App) UsageCounter() *usage.Batcher { return a.counter }

// Rollup returns the usage roll-up (nil without a usage store), which Run
// starts every usage.rollup_interval.
func (a *App) Rollup() *usage.Rollup { return a.rollup }

// Sweeper returns the job disabling unused and expired credentials, which
// Run starts every credentials.stale_check_interval.
func (a *App) Sweeper() *sweeper.Sweeper { return a.sweeper }

// Webhooks returns the webhook deliverer (Run starts it; tests call
// DeliverDue).
func (a *App) Webhooks() *webhooks.Deliverer { return a.deliverer }

// QuotaEvents returns the queue of quota thresholds the check endpoint
// reports (usage.QuotaEvents), written to the webhook outbox by Run.
func (a *App) QuotaEvents() *webhooks.QuotaEvents { return a.quotaEvents }

// Expiry returns the job that sends credential.expiring.
func (a *App) Expiry() *webhooks.Expiry { return a.expiry }

// watchPools exports the connection pools of the database and of Redis (nil
// on the embedded default) and the cache's counters.
func watchPools(m *metrics.Prometheus, db *sqlstore.Store, cached *cache.Store, rdb goredis.UniversalClient) {
	m.WatchDatabasePool(db.Stats)
	m.WatchCache(func() metrics.CacheStats {
		s := cached.Stats()
		return metrics.CacheStats{Hits: s.Hits, Misses: s.Misses, Stale: s.Stale, Entries: s.Entries}
	})
	if rdb == nil {
		return
	}
	m.WatchRedisPool(func() metrics.RedisPoolStats {
		s := rdb.PoolStats()
		return metrics.RedisPoolStats{Hits: s.Hits, Misses: s.Misses, Timeouts: s.Timeouts, WaitCount: s.WaitCount,
			WaitDuration: time.Duration(s.WaitDurationNs), TotalConns: s.TotalConns, IdleConns: s.IdleConns,
			StaleConns: s.StaleConns}
	})
}

// RotateSigningKey makes a new token signing key on demand, as `tollgate
// signing-keys rotate` does: published now, signing one publish-ahead from
// now. It returns the key's id and when it signs.
func (a *App) RotateSigningKey(ctx context.Context) (string, time.Time, error) {
	return a.ring.Rotate(ctx)
}
