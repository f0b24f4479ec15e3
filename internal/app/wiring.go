package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"
	"github.com/redis/go-redis/extra/redisotel/v9"
	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/grants/apikeysession"
	"github.com/tollgate/tollgate/grants/eskimidsp"
	"github.com/tollgate/tollgate/pkg/admin"
	"github.com/tollgate/tollgate/pkg/allowlist"
	"github.com/tollgate/tollgate/pkg/assertion"
	"github.com/tollgate/tollgate/pkg/bruteforce"
	bfmemory "github.com/tollgate/tollgate/pkg/bruteforce/memory"
	bfredis "github.com/tollgate/tollgate/pkg/bruteforce/redis"
	"github.com/tollgate/tollgate/pkg/console"
	"github.com/tollgate/tollgate/pkg/console/session"
	csmemory "github.com/tollgate/tollgate/pkg/console/session/memory"
	csredis "github.com/tollgate/tollgate/pkg/console/session/redis"
	"github.com/tollgate/tollgate/pkg/dpop"
	dpopredis "github.com/tollgate/tollgate/pkg/dpop/redis"
	"github.com/tollgate/tollgate/pkg/egress"
	"github.com/tollgate/tollgate/pkg/federation"
	"github.com/tollgate/tollgate/pkg/gateway"
	"github.com/tollgate/tollgate/pkg/manage"
	"github.com/tollgate/tollgate/pkg/meter"
	memmeter "github.com/tollgate/tollgate/pkg/meter/memory"
	redismeter "github.com/tollgate/tollgate/pkg/meter/redis"
	"github.com/tollgate/tollgate/pkg/metrics"
	"github.com/tollgate/tollgate/pkg/oauth"
	"github.com/tollgate/tollgate/pkg/ratelimit"
	rlmemory "github.com/tollgate/tollgate/pkg/ratelimit/memory"
	rlredis "github.com/tollgate/tollgate/pkg/ratelimit/redis"
	"github.com/tollgate/tollgate/pkg/reqctx"
	"github.com/tollgate/tollgate/pkg/secret"
	"github.com/tollgate/tollgate/pkg/secretscan"
	"github.com/tollgate/tollgate/pkg/server"
	"github.com/tollgate/tollgate/pkg/signing"
	"github.com/tollgate/tollgate/pkg/sweeper"
	"github.com/tollgate/tollgate/pkg/tokens"
	"github.com/tollgate/tollgate/pkg/tokens/jwt"
	"github.com/tollgate/tollgate/pkg/tracing"
	"github.com/tollgate/tollgate/pkg/usage"
	usagememory "github.com/tollgate/tollgate/pkg/usage/memory"
	usageredis "github.com/tollgate/tollgate/pkg/usage/redis"
	"github.com/tollgate/tollgate/pkg/webhooks"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/storage/cache"
	"github.com/tollgate/tollgate/storage/memory"
	tgredis "github.com/tollgate/tollgate/storage/redis"
	sqlstore "github.com/tollgate/tollgate/storage/sql"
)

// NewLogger returns the logger cfg describes (level, JSON or text),
// writing to w: the one every command and the end-to-end suites log with.
func NewLogger(cfg config.Log, w io.Writer) *slog.Logger { return newLogger(cfg, w) }

// newLogger returns the logger cfg describes, writing to w; every line
// logged with a request's context carries its request id (and client id,
// once known): reqctx.LogHandler.
func newLogger(cfg config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "text" {
		return slog.New(reqctx.NewLogHandler(slog.NewTextHandler(w, opts)))
	}
	return slog.New(reqctx.NewLogHandler(slog.NewJSONHandler(w, opts)))
}

// OpenDatabase opens the relational store and settles its migrations: they
// are applied when migrate is set or on the embedded default, and serving a
// database with pending migrations is refused otherwise.
func OpenDatabase(ctx context.Context, cfg config.Config, migrate bool, logger *slog.Logger) (*sqlstore.Store, error) {
	db, _, err := OpenAndMigrate(ctx, cfg, migrate, logger)
	return db, err
}

// OpenAndMigrate is OpenDatabase that also reports the migrations it applied.
func OpenAndMigrate(ctx context.Context, cfg config.Config, migrate bool, logger *slog.Logger) (*sqlstore.Store, []string, error) {
	db, err := sqlstore.Open(ctx, sqlstore.Options{
		URL:             cfg.Database.URL,
		MaxOpenConns:    cfg.Database.MaxOpenConns,
		MaxIdleConns:    cfg.Database.MaxIdleConns,
		ConnMaxLifetime: noLimitIfZero(cfg.Database.ConnMaxLifetime),
		ConnMaxIdleTime: noLimitIfZero(cfg.Database.ConnMaxIdleTime),
		QueryTimeout:    cfg.Database.QueryTimeout,
		Logger:          logger,
		Trace:           tracing.Enabled(),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("open database: %w", err)
	}
	pending, err := db.PendingMigrations(ctx)
	if err != nil {
		_ = db.Close() // the error being returned is the one to report
		return nil, nil, fmt.Errorf("check migrations: %w", err)
	}
	if len(pending) == 0 {
		return db, nil, nil
	}
	if !migrate && !cfg.Embedded() {
		_ = db.Close() // the error being returned is the one to report
		return nil, nil, fmt.Errorf("the database has %d pending migrations (%s): run 'tollgate migrate' or start with --migrate",
			len(pending), strings.Join(pending, ", "))
	}
	applied, err := db.Migrate(ctx)
	if err != nil {
		_ = db.Close() // the error being returned is the one to report
		return nil, nil, fmt.Errorf("migrate database: %w", err)
	}
	logger.Info("applied database migrations", "migrations", applied)
	return db, applied, nil
}

// embeddedMaxTokens bounds the in-process token store of the embedded
// default (about 300 MB at most); past it issuance answers 503.
const embeddedMaxTokens = 1_000_000

// TokenStore is the token store with its health check and its closer.
type TokenStore interface {
	storage.Tokens
	storage.Pinger
}

// Backends are the stores that live in Redis in production and in process
// on the embedded default.
type Backends struct {
	Tokens  TokenStore
	Limiter ratelimit.Limiter
	// Meter takes the check's one decision (rates, quotas, budgets) and
	// counts it; Counter counts the refusals before it. In process on the
	// embedded default (Counts, which Counter is, holds the counts), in
	// Redis otherwise (the meter's script writes the keys Counts reads).
	Meter   meter.Decider
	Counter usage.Counter
	// TokenMeter reads the record of a token that names its root account
	// in the script of its decision: one round trip (ADR 0013). Nil: the
	// record is read, then Meter decides (the embedded default, with no
	// round trip to save).
	TokenMeter meter.TokenDecider
	// Failures are the brute-force counters.
	Failures bruteforce.Store
	// Sessions are the web console's sessions.
	Sessions session.Store
	// OneTimeIDs are the used jtis of client assertions.
	OneTimeIDs storage.OneTimeIDs
	// Proofs remember the DPoP proofs already used.
	Proofs dpop.Replay
	// QuotaSpent reads the quota counters, for the remaining quota the
	// management surfaces show.
	QuotaSpent manage.QuotaSpent
	// Counts are the per-minute usage counts.
	Counts UsageCounts
	Redis  goredis.UniversalClient // nil on the embedded default
}

// UsageCounts are the per-minute usage counters: added to in batches,
// read by the roll-up and, for the minutes not rolled up yet, by the usage
// answers.
type UsageCounts interface {
	usage.Counter
	usage.MinuteReader
	usage.BatchCounter
	usage.BatchReader
	usage.RangeReader
}

// noLimitIfZero turns a configured 0 ("no limit") into the negative
// duration sqlstore reads as no limit (its 0 means its default).
func noLimitIfZero(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// redisMode names the configured Redis deployment for the start-up log.
func redisMode(cfg config.Config) string {
	switch r := cfg.Redis; {
	case r.URL != "":
		return "single"
	case r.MasterName != "":
		return "sentinel"
	case r.Cluster:
		return "cluster"
	}
	return "none"
}

// newRedisClient connects to the configured Redis: one server by URL, or a
// Sentinel-managed master or a Cluster by addresses.
func newRedisClient(cfg config.Config) (goredis.UniversalClient, error) {
	r := cfg.Redis
	bounds := tgredis.ClientOptions{
		DialTimeout:  r.DialTimeout,
		ReadTimeout:  r.ReadTimeout,
		WriteTimeout: r.WriteTimeout,
		PoolSize:     r.PoolSize,
	}
	if r.URL != "" {
		return tgredis.NewClient(r.URL, bounds)
	}
	return tgredis.NewUniversalClient(tgredis.Topology{
		Addrs:            r.Addrs,
		MasterName:       r.MasterName,
		Username:         r.Username,
		Password:         string(r.Password),
		SentinelPassword: string(r.SentinelPassword),
		TLS:              r.TLS,
	}, bounds)
}

// OpenBackends opens the configured backends: Redis when it is configured,
// in process otherwise. The function it returns closes them.
func OpenBackends(cfg config.Config) (Backends, func() error, error) {
	if !cfg.Redis.Enabled() {
		counts := usagememory.New(nil)
		return Backends{
			Tokens:   memory.New(memory.Options{MaxTokens: embeddedMaxTokens}),
			Limiter:  rlmemory.New(rlmemory.Options{}),
			Meter:    memmeter.New(memmeter.Options{Counter: counts}),
			Counter:  counts,
			Counts:   counts,
			Failures: bfmemory.New(bfmemory.Options{}),
			Sessions: csmemory.New(csmemory.Options{}),
			Proofs:   dpop.NewMemory(0, nil),

			OneTimeIDs: memory.NewOneTimeIDs(memory.OneTimeOptions{}),
		}, func() error { return nil }, nil
	}
	client, err := newRedisClient(cfg)
	if err != nil {
		return Backends{}, nil, fmt.Errorf("redis: %w", err)
	}
	return RedisBackends(client, cfg.Redis.KeyPrefix, nil), client.Close, nil
}

// RedisBackends builds the stores that live in Redis, every key under
// prefix, so that every instance on the same Redis shares them. now is the
// token store's clock (nil: time.Now); the end-to-end tests build their
// Redis app through here too, so they test this wiring.
//
// When tracing is on (tracing.Setup installed a provider), every Redis
// command of client gets a span named by the command alone: its arguments,
// which hold token signatures and keys, are never recorded.
func RedisBackends(client goredis.UniversalClient, prefix string, now func() time.Time) Backends {
	if tracing.Enabled() {
		// Every UniversalClient go-redis builds (a *Client, also for
		// Sentinel, a *ClusterClient or a *Ring) is one InstrumentTracing
		// takes: its only error is for another type.
		_ = redisotel.InstrumentTracing(client, redisotel.WithDBStatement(false), redisotel.WithCallerEnabled(false))
	}
	// The check's decisions and counts: with the default prefix "tg:",
	// exactly pkg/usage's layout (tg:u:{a<root>}:<minute>).
	decider := redismeter.New(client, redismeter.Options{KeyPrefix: prefix})
	tokens := tgredis.New(client, tgredis.Options{KeyPrefix: prefix, Now: now})
	return Backends{
		Tokens:     tokens,
		TokenMeter: newRedisTokenMeter(tokens, decider),
		Limiter:    rlredis.New(client, rlredis.Options{KeyPrefix: prefix + "rl:"}),
		Meter:      decider,
		Counter:    decider,
		Failures:   bfredis.New(client, bfredis.Options{KeyPrefix: prefix + "bf:"}),
		Sessions:   csredis.New(client, csredis.Options{KeyPrefix: prefix + "console:"}),
		Proofs:     dpopredis.New(client, prefix+"dpop:"),
		// The check's decision script writes the same keys.
		Counts: usageredis.New(client, usageredis.Options{KeyPrefix: prefix}),
		Redis:  client,

		QuotaSpent: redisQuotaSpent{client: client, prefix: prefix},

		// The jtis of client assertions, shared by every instance.
		OneTimeIDs: tgredis.NewOneTimeIDs(client, prefix+"jti:", now),
	}
}

// rateClasses turns the configured classes into limits; Validate has
// checked every value.
func rateClasses(cfg config.Config) map[string]ratelimit.Limit {
	out := make(map[string]ratelimit.Limit, len(cfg.RateLimits.Classes))
	for name, v := range cfg.RateLimits.Classes {
		rate, burst, err := config.ParseRate(v)
		if err == nil {
			out[name] = ratelimit.Limit{Rate: rate, Burst: burst}
		}
	}
	return out
}

// NewHasher builds the secret hasher from the key material.
func NewHasher(keys config.Keys) (*secret.Hasher, error) {
	peppers := map[string][]byte{keys.PepperID: keys.Pepper}
	for id, p := range keys.RetiredPeppers {
		if id == keys.PepperID {
			return nil, fmt.Errorf("retired pepper id %q is the current pepper id", id)
		}
		peppers[id] = p
	}
	return secret.NewHasher(keys.PepperID, peppers)
}

// accessRights turns the configured bundles into scope lists.
// AccessRights are the scope bundles of cfg by name (the configured ones,
// or the defaults): what bootstrap hands the management service too.
func AccessRights(cfg config.Config) map[string][]string { return accessRights(cfg) }

func accessRights(cfg config.Config) map[string][]string {
	out := make(map[string][]string, len(cfg.Credentials.AccessRights))
	for name, scopes := range cfg.Credentials.AccessRights {
		out[name] = strings.Fields(scopes)
	}
	return out
}

// grantSettings hands the grants the configuration values they read.
type grantSettings struct{ cfg config.Config }

func (g grantSettings) ClientCredentialsLifetime() time.Duration {
	return g.cfg.Tokens.ClientCredentialsLifetime
}
func (g grantSettings) EskimiDSPGrantName() string        { return g.cfg.Grants.EskimiDSPName }
func (g grantSettings) EskimiDSPLifetime() time.Duration  { return g.cfg.Tokens.EskimiDSPLifetime }
func (g grantSettings) KeySessionLifetime() time.Duration { return g.cfg.Tokens.KeySessionLifetime }
func (g grantSettings) KeySessionMaxLifetime() time.Duration {
	return g.cfg.Tokens.KeySessionMaxLifetime
}

// outboxStore is the database behind the webhook outbox, still a Pinger.
type outboxStore struct {
	*webhooks.Outbox
	storage.Pinger
}

// Store is what the HTTP layer and the grants need from the database.
type Store interface {
	storage.Accounts
	storage.Users
	storage.Clients
	storage.Audit
	storage.FederatedCredentials
	storage.Webhooks
	storage.Transactor
	storage.Pinger
}

// App is the wired server: the public handler and the ops handler.
type App struct {
	public  http.Handler
	ops     http.Handler
	routes  []server.Route // of public
	uses    *usage.Recorder
	counter *usage.Batcher // nil without a usage store
	rollup  *usage.Rollup  // nil without a usage store
	sweeper *sweeper.Sweeper
	api     *admin.API
	// The webhooks' background work: the outbox's deliveries, the queue of
	// quota thresholds, the expiry warnings.
	deliverer   *webhooks.Deliverer
	quotaEvents *webhooks.QuotaEvents
	expiry      *webhooks.Expiry
	ring        *signing.Ring

	// Set by New and Open, for Run.
	cfg     config.Config
	logger  *slog.Logger
	version string
	cache   *cache.Store   // run in the background when not nil
	closers []func() error // the stores Open opened

	metrics *metrics.Prometheus // for Open to add the pools and the cache
	drain   drain               // Run's first step of shutdown; tollgate_ready reads it
}

// run runs the app's background work until ctx is done and returns when all
// of it has stopped.
func (a *App) run(ctx context.Context, cfg config.Config) {
	var wg sync.WaitGroup
	wg.Add(6)
	if a.counter != nil {
		wg.Add(2)
		go func() { defer wg.Done(); a.counter.Run(ctx, cfg.Usage.FlushInterval) }()
		go func() { defer wg.Done(); a.rollup.Run(ctx, cfg.Usage.RollupInterval) }()
	}
	go func() { defer wg.Done(); a.uses.Run(ctx, cfg.Credentials.LastUsedFlushInterval) }()
	go func() { defer wg.Done(); a.ring.Run(ctx, cfg.SigningKeys.RefreshInterval) }()
	go func() { defer wg.Done(); a.sweeper.Run(ctx, cfg.Credentials.StaleCheckInterval) }()
	go func() { defer wg.Done(); a.deliverer.Run(ctx) }()
	go func() { defer wg.Done(); a.quotaEvents.Run(ctx) }()
	go func() { defer wg.Done(); a.expiry.Run(ctx, cfg.Webhooks.ExpiryCheckInterval) }()
	wg.Wait()
}

// deps are the opened backends app is built on.
type deps struct {
	cfg         config.Config
	keys        config.Keys
	db          Store
	signingKeys storage.SigningKeys
	tokens      TokenStore
	limiter     ratelimit.Limiter
	meter       meter.Decider      // in process when nil
	tokenMeter  meter.TokenDecider // the meter after a token read when nil
	counter     usage.Counter      // the refusals before a decision; none when nil
	quotaEvents usage.QuotaEvents  // quota thresholds crossed; none when nil
	failures    bruteforce.Store   // brute-force counters; in process when nil
	sessions    session.Store      // web console sessions; in process when nil
	oneTimeIDs  storage.OneTimeIDs // used assertion jtis; in process when nil
	proofs      dpop.Replay        // DPoP proofs used; in process when nil
	quotaSpent  manage.QuotaSpent  // quota counters; nothing spent when nil
	counts      UsageCounts        // per-minute usage counts; in process when nil
	usage       storage.Usage      // rolled-up usage; nil: no counting, no roll-up
	passwords   *secret.Passwords
	logger      *slog.Logger
	now         func() time.Time
	version     string // for the build-info metric
}

func newApp(d deps) (*App, error) {
	version := d.version
	hasher, err := NewHasher(d.keys)
	if err != nil {
		return nil, err
	}
	format, err := tokens.NewOpaque(d.keys.TokenSecret, d.keys.RotatedTokenSecrets)
	if err != nil {
		return nil, err
	}
	if d.now == nil {
		d.now = time.Now
	}
	// Every audited change of a credential made in a transaction writes
	// its webhook deliveries in that transaction (the outbox).
	d.db = outboxStore{Outbox: webhooks.NewOutbox(d.db, d.now), Pinger: d.db}
	// quota.threshold events of the check's calls, queued to the outbox.
	quotaEvents := webhooks.NewQuotaEvents(d.db, d.logger, d.now)
	if d.quotaEvents == nil {
		d.quotaEvents = quotaEvents
	}
	whSecrets, err := webhooks.NewSecrets(d.keys.KeyEncryptionKey)
	if err != nil {
		return nil, err
	}
	ring, err := newRing(d)
	if err != nil {
		return nil, err
	}
	jwtFormat, err := jwt.New(jwt.Options{Issuer: d.cfg.Issuer, Keys: ring, Secret: d.keys.TokenSecret, Now: d.now})
	if err != nil {
		return nil, err
	}
	settings := grantSettings{cfg: d.cfg}
	uses := usage.New(d.db, d.logger)
	tokenService := tokens.New(tokens.Options{Format: format, Formats: map[string]tokens.Format{storage.StrategyJWT: jwtFormat},
		Unnamed: d.cfg.Tokens.LegacyOpaqueFormat, Tokens: d.tokens, Store: d.db, Usage: uses, Now: d.now})
	m := metrics.New(version)
	m.KnownRateClasses(slices.Sorted(maps.Keys(d.cfg.RateLimits.Classes))...)
	for _, kind := range []bruteforce.Kind{bruteforce.KindClient, bruteforce.KindUser} {
		m.KnownBruteForce(string(kind), bruteforce.DimensionID)
		m.KnownBruteForce(string(kind), bruteforce.DimensionSource)
	}
	if d.failures == nil {
		d.failures = bfmemory.New(bfmemory.Options{Now: d.now})
	}
	if d.sessions == nil {
		d.sessions = csmemory.New(csmemory.Options{Now: d.now})
	}
	if d.proofs == nil {
		d.proofs = dpop.NewMemory(0, d.now)
	}
	if d.counts == nil {
		d.counts = usagememory.New(d.now)
	}
	var counter *usage.Batcher
	var rollup *usage.Rollup
	var usageReader manage.UsageReader // nil (not a nil *usage.Reader) without a usage store
	if d.usage != nil {
		usageReader = usage.NewReader(usage.ReaderOptions{Store: d.usage, Live: d.counts, Accounts: d.db, Logger: d.logger, Now: d.now})
		counter = usage.NewBatcher(d.counts, d.usage, d.logger)
		u := d.cfg.Usage
		rollup = usage.NewRollup(usage.RollupOptions{Counts: d.counts, Store: d.usage, Grace: u.RollupGrace,
			MinuteRetention: u.MinuteRetention, HourRetention: u.HourRetention, DayRetention: u.DayRetention,
			Logger: d.logger, Now: d.now})
	}
	algs := make([]jose.SignatureAlgorithm, len(d.cfg.DPoP.Algorithms))
	for i, a := range d.cfg.DPoP.Algorithms {
		algs[i] = jose.SignatureAlgorithm(a)
	}
	proofs, err := dpop.New(dpop.Options{Algorithms: algs, MaxAge: d.cfg.DPoP.ProofMaxAge, MaxSkew: d.cfg.DPoP.ProofMaxSkew,
		Replay: d.proofs, Now: d.now})
	if err != nil {
		return nil, err
	}
	bf := d.cfg.BruteForce
	bfOptions := func(kind bruteforce.Kind) bruteforce.Options {
		return bruteforce.Options{Kind: kind, Threshold: bf.Threshold, SourceThreshold: bf.SourceThreshold,
			BaseDelay: bf.BaseDelay, MaxDelay: bf.MaxDelay, Window: bf.Window, Logger: d.logger, Metrics: m, Now: d.now}
	}
	var clientGuard oauth.Guard
	var userGuard eskimidsp.Guard
	if bf.Enabled {
		clientGuard = bruteforce.New(d.failures, bfOptions(bruteforce.KindClient))
		userGuard = bruteforce.New(d.failures, bfOptions(bruteforce.KindUser))
	}
	if d.oneTimeIDs == nil {
		d.oneTimeIDs = memory.NewOneTimeIDs(memory.OneTimeOptions{Now: d.now})
	}
	assertions, err := newAssertionChecker(d)
	if err != nil {
		return nil, err
	}
	federated, err := newFederationVerifier(d)
	if err != nil {
		return nil, err
	}
	// Calls refused by an allowlist are audited, one event per credential
	// per minute on each instance at most.
	refusals := allowlist.New(allowlist.Options{Audit: d.db, Logger: d.logger, Now: d.now})
	authenticator := oauth.NewAuthenticator(d.db, d.db, hasher, uses, clientGuard, d.now).
		WithAssertions(assertions, d.logger).WithFederation(federated, d.logger).WithRefusals(refusals)
	enabled, err := grantRegistry(settings, d.db, d.passwords, userGuard, tokenService).Enable(d.cfg.Grants.EnabledGrants())
	if err != nil {
		return nil, err
	}
	grantTypes := enabled.TokenEndpointNames()
	// The console offers the token endpoint's grants a client may be given.
	consoleGrantTypes := slices.DeleteFunc(slices.Clone(grantTypes), func(g string) bool { return !slices.Contains(enabled.Assignable(), g) })

	fcfg := &fosite.Config{
		ClientSecretsHasher:          hasher,
		ClientAuthenticationStrategy: authenticator.Strategy,
		SendDebugMessagesToClients:   false,
		TokenURL:                     strings.TrimSuffix(d.cfg.Issuer, "/") + server.PathToken,
		AccessTokenLifespan:          d.cfg.Tokens.ClientCredentialsLifetime,
		ScopeStrategy:                fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:     fosite.DefaultAudienceMatchingStrategy,
		TokenEndpointHandlers:        enabled.Handlers(tokenService),
	}
	provider := fosite.NewOAuth2Provider(oauth.NewClientStore(d.db, d.now), fcfg)
	limiter := d.limiter
	decider := d.meter
	if decider == nil {
		decider, d.counter = memmeter.New(memmeter.Options{Counter: d.counts, Now: d.now}), d.counts
	}
	if d.quotaSpent == nil {
		// The remaining quota, read from the counters the meter keeps.
		d.quotaSpent = meterQuotaSpent{decider}
	}
	if d.cfg.RateLimits.FailOpen {
		limiter = ratelimit.FailOpen(limiter, d.logger)
		decider = meter.FailOpen(decider, d.logger)
	}
	switch {
	case d.tokenMeter == nil:
		d.tokenMeter = meter.WithTokens(decider, d.tokens)
	case d.cfg.RateLimits.FailOpen:
		// The one script reads the record and writes the counters: when
		// Redis refuses it (full), the record is read alone and the
		// decision fails open, as for a key.
		d.tokenMeter = meter.FailOpenTokens(d.tokenMeter, decider, d.tokens)
	}

	svc := manage.New(manage.Options{
		Store:               d.db,
		Tokens:              tokenService,
		Hasher:              hasher,
		Passwords:           d.passwords,
		ManagementScope:     d.cfg.Credentials.ManagementScope,
		AccessRights:        accessRights(d.cfg),
		DefaultAccessRights: d.cfg.Credentials.DefaultAccessRights,
		// A plain client may be allowed the key session explicitly; API
		// keys have it without asking.
		GrantTypes:          enabled.Assignable(),
		DefaultGrantTypes:   d.cfg.Credentials.DefaultGrantTypes,
		RotationOverlap:     d.cfg.Credentials.RotationOverlap,
		MaxRotationOverlap:  d.cfg.Credentials.MaxRotationOverlap,
		ClientTokenLifetime: d.cfg.Tokens.ClientTokenLifetime,
		JWKSAllowHTTP:       d.cfg.Credentials.JWKSAllowHTTP,
		FederationAllowHTTP: d.cfg.Federation.AllowHTTPIssuers,
		WebhookSecrets:      whSecrets,
		WebhooksAllowHTTP:   d.cfg.Webhooks.AllowHTTP,
		RateClasses:         slices.Sorted(maps.Keys(d.cfg.RateLimits.Classes)),
		QuotaSpent:          d.quotaSpent,
		Usage:               usageReader,
		Logger:              d.logger,
		Now:                 d.now,
		Guard:               userGuard,
	})
	api := admin.New(admin.Options{
		Service:      svc,
		Tokens:       tokenService,
		MaxBodyBytes: d.cfg.HTTP.MaxBodyBytes,
		Logger:       d.logger,
	})
	check := gateway.New(gateway.Options{
		Tokens:        tokenService,
		Authenticator: authenticator,
		Accounts:      d.db,
		Meter:         decider,
		TokenMeter:    d.tokenMeter,
		Counter:       d.counter,
		Events:        d.quotaEvents,
		Now:           d.now,
		Classes:       rateClasses(d.cfg),
		DPoP:          proofs,
		Refusals:      refusals,
		Metrics:       m,
		Logger:        d.logger,
	})
	// /auth/check/… too: Envoy's ext_authz appends the API request's path.
	mounts := []server.Mount{
		{Prefix: admin.Prefix, Endpoint: "admin", Handler: api},
		{Prefix: "/auth/check", Endpoint: "check", Handler: check},
	}
	handlers := []server.Mount{{Prefix: "/auth/check", Endpoint: "check", Handler: check}}
	if scan := newSecretScanning(d, svc); scan != nil {
		handlers = append(handlers, server.Mount{Prefix: secretscan.Path, Endpoint: "secret_scanning", Handler: scan, Method: http.MethodPost})
	}
	if d.cfg.Console.Enabled {
		con, err := console.New(console.Options{
			Issuer:              d.cfg.Issuer,
			Service:             svc,
			Users:               d.db,
			Sessions:            d.sessions,
			Passwords:           d.passwords,
			Guard:               userGuard,
			AccessRights:        accessRights(d.cfg),
			DefaultAccessRights: d.cfg.Credentials.DefaultAccessRights,
			GrantTypes:          consoleGrantTypes,
			DefaultGrantTypes:   svc.DefaultGrantTypes(storage.KindClient),
			RateClasses:         slices.Sorted(maps.Keys(d.cfg.RateLimits.Classes)),
			RotationOverlap:     d.cfg.Credentials.RotationOverlap,
			MaxRotationOverlap:  d.cfg.Credentials.MaxRotationOverlap,
			ClientTokenLifetime: d.cfg.Tokens.ClientTokenLifetime,
			DisableUnusedAfter:  d.cfg.Credentials.DisableUnusedAfter,
			IdleTimeout:         d.cfg.Console.SessionIdleTimeout,
			MaxLifetime:         d.cfg.Console.SessionLifetime,
			SecureCookies:       d.cfg.Console.SecureCookies,
			MaxFormBytes:        d.cfg.HTTP.MaxBodyBytes,
			Logger:              d.logger,
			Now:                 d.now,
		})
		if err != nil {
			return nil, fmt.Errorf("console: %w", err)
		}
		mounts = append(mounts, server.Mount{Prefix: console.Prefix, Endpoint: "console", Handler: con})
		handlers = append(handlers, server.Mount{Prefix: console.Prefix, Endpoint: "console", Handler: con})
	}
	public := server.New(server.Options{
		Issuer:              d.cfg.Issuer,
		GrantTypes:          grantTypes,
		MaxBodyBytes:        d.cfg.HTTP.MaxBodyBytes,
		Provider:            provider,
		Tokens:              tokenService,
		Mounts:              mounts,
		Handlers:            handlers,
		Limiter:             limiter,
		TokenRate:           d.cfg.RateLimits.TokenRate,
		Usage:               usageCounter(counter),
		Authenticator:       authenticator,
		KeySession:          enabled.Get(apikeysession.GrantType),
		KeyRevoker:          svc,
		DPoP:                proofs,
		JWKS:                ring.JWKS,
		JWKSMaxAge:          d.cfg.SigningKeys.PublishAhead / 2,
		AssertionAlgorithms: assertion.AlgorithmNames(),
		Logger:              d.logger,
		Metrics:             m,
		Now:                 d.now,
		TrustedProxies:      d.cfg.BruteForce.Proxies(),
	})
	ops := server.OpsHandler(m.Handler(), []server.Check{
		{Name: "database", Ping: d.db.Ping},
		{Name: "tokens", Ping: d.tokens.Ping},
	}, readyTimeout, d.cfg.Ops.Pprof)
	sweep := sweeper.New(d.db, d.cfg.Credentials.DisableUnusedAfter, d.logger, d.now)
	if d.cfg.Webhooks.AllowHTTP && d.logger != nil {
		d.logger.Warn("webhooks.allow_http is on: webhooks may use http and reach loopback and private addresses (tests and development only)")
	}
	deliverer := webhooks.NewDeliverer(webhooks.DelivererOptions{
		Store:        d.db,
		Secrets:      whSecrets,
		Poster:       egress.New(egress.Options{AllowInsecure: d.cfg.Webhooks.AllowHTTP, Timeout: d.cfg.Webhooks.Timeout}),
		Timeout:      d.cfg.Webhooks.Timeout,
		PollInterval: d.cfg.Webhooks.PollInterval,
		Metrics:      m,
		Logger:       d.logger,
		Now:          d.now,
	})
	expiry := webhooks.NewExpiry(webhooks.ExpiryOptions{Store: d.db, Before: d.cfg.Webhooks.ExpiringBefore,
		Retention: d.cfg.Webhooks.DeliveryRetention, Logger: d.logger, Now: d.now})
	// Every public answer carries the security headers (HSTS over TLS);
	// a page that sets its own Content-Security-Policy keeps it.
	a := &App{public: server.SecurityHeaders(public), routes: public.Routes(), ops: ops, uses: uses, counter: counter, rollup: rollup, sweeper: sweep,
		api: api, metrics: m, ring: ring, deliverer: deliverer, quotaEvents: quotaEvents, expiry: expiry}
	// tollgate_ready says what /readyz says: the same checks, and draining.
	m.WatchReadiness([]metrics.Probe{
		{Name: "database", Ping: d.db.Ping},
		{Name: "tokens", Ping: d.tokens.Ping},
	}, readyTimeout, a.drain.on.Load)
	return a, nil
}

// usageCounter returns b as the server's counter: none when b is nil (a
// nil *Batcher in the interface would not compare equal to nil).
func usageCounter(b *usage.Batcher) server.UsageCounter {
	if b == nil {
		return nil
	}
	return b
}

// signingLoadTimeout bounds the first load of the signing keys, which may
// make the first key.
const signingLoadTimeout = 30 * time.Second

// newRing builds the signing key ring and loads it, making the first key
// of a new installation.
func newRing(d deps) (*signing.Ring, error) {
	if d.signingKeys == nil {
		return nil, errors.New("signing keys: no store")
	}
	ctx, cancel := context.WithTimeout(context.Background(), signingLoadTimeout)
	defer cancel()
	return SigningRing(ctx, d.cfg, d.keys, d.signingKeys, d.logger, d.now)
}

// SigningRing returns the signing key ring cfg describes on store, loaded
// (the first key made when there is none): what the server signs with, and
// what `tollgate signing-keys` rotates. now may be nil (time.Now).
func SigningRing(ctx context.Context, cfg config.Config, keys config.Keys, store storage.SigningKeys, logger *slog.Logger, now func() time.Time) (*signing.Ring, error) {
	ring, err := signing.New(signing.Options{
		Store:            store,
		KeyEncryptionKey: keys.KeyEncryptionKey,
		Algorithm:        jose.SignatureAlgorithm(cfg.SigningKeys.Algorithm),
		RotationPeriod:   cfg.SigningKeys.RotationPeriod,
		PublishAhead:     cfg.SigningKeys.PublishAhead,
		Retain:           cfg.Tokens.Longest(),
		Now:              now,
		Logger:           logger,
	})
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	if err := ring.Refresh(ctx); err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	return ring, nil
}

// readyTimeout bounds the dependency checks of /readyz and tollgate_ready.
const readyTimeout = 2 * time.Second

// newAssertionChecker builds the private_key_jwt verifier: assertions
// addressed to the issuer or the token endpoint, jtis remembered in
// d.oneTimeIDs, keys from the client's jwks or its jwks_uri, fetched
// through the guarded outbound client.
func newAssertionChecker(d deps) (assertion.Checker, error) {
	issuer := d.cfg.Issuer
	verifier, err := assertion.NewVerifier(assertion.VerifierOptions{
		Audiences: []string{issuer, strings.TrimSuffix(issuer, "/") + server.PathToken},
		Used:      d.oneTimeIDs,
		Now:       d.now,
	})
	if err != nil {
		return assertion.Checker{}, err
	}
	if d.cfg.Credentials.JWKSAllowHTTP && d.logger != nil {
		d.logger.Warn("credentials.jwks_allow_http is on: clients' jwks_uri may use http and reach loopback, private and link-local addresses; for tests and development only")
	}
	fetcher := egress.New(egress.Options{AllowInsecure: d.cfg.Credentials.JWKSAllowHTTP, Timeout: jwksFetchTimeout})
	keys := assertion.NewKeySource(assertion.SourceOptions{Fetcher: fetcher, Now: d.now})
	return assertion.Checker{Keys: keys, Verifier: verifier}, nil
}

// jwksFetchTimeout bounds a fetch of a client's jwks_uri, which happens
// inside a token request: a slow host costs that request this much, once
// per refetch interval.
const jwksFetchTimeout = 3 * time.Second

// newSecretScanning builds GitHub's secret-scanning partner endpoint on
// svc, its keys fetched through a guarded outbound client of its own (its
// http setting is secret scanning's); nil when no keys URL is configured.
func newSecretScanning(d deps, svc *manage.Service) *secretscan.Handler {
	cfg := d.cfg.SecretScanning
	if cfg.GitHubKeysURL == "" {
		return nil
	}
	if cfg.AllowHTTP && d.logger != nil {
		d.logger.Warn("secret_scanning.allow_http is on: GitHub's secret-scanning keys may be fetched over http and from loopback, private and link-local addresses; for tests and development only")
	}
	keys := secretscan.NewKeys(secretscan.KeysOptions{
		URL:     cfg.GitHubKeysURL,
		Fetcher: egress.New(egress.Options{AllowInsecure: cfg.AllowHTTP}),
		Now:     d.now,
	})
	return secretscan.New(secretscan.Options{Keys: keys, Reporter: svc, Logger: d.logger})
}

// newFederationVerifier builds the verifier of tokens of external issuers
// (workload identity federation): credentials from the database, jtis in
// d.oneTimeIDs beside the assertions', discovery documents and keys
// fetched through a guarded outbound client of its own (its http setting
// is federation's, not jwks_uri's).
func newFederationVerifier(d deps) (*federation.Verifier, error) {
	allow := d.cfg.Federation.AllowHTTPIssuers
	if allow && d.logger != nil {
		d.logger.Warn("federation.allow_http_issuers is on: federated credentials may name http issuers, and their documents may be fetched from loopback, private and link-local addresses; for tests and development only")
	}
	return federation.New(federation.Options{
		Credentials: d.db,
		Fetcher:     egress.New(egress.Options{AllowInsecure: allow, Timeout: jwksFetchTimeout}),
		AllowHTTP:   allow,
		Used:        d.oneTimeIDs,
		Now:         d.now,
	})
}
