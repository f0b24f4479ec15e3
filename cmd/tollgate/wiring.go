package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ory/fosite"
	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/grants/clientcredentials"
	"github.com/tollgate/tollgate/grants/eskimidsp"
	"github.com/tollgate/tollgate/pkg/admin"
	"github.com/tollgate/tollgate/pkg/bruteforce"
	bfmemory "github.com/tollgate/tollgate/pkg/bruteforce/memory"
	bfredis "github.com/tollgate/tollgate/pkg/bruteforce/redis"
	"github.com/tollgate/tollgate/pkg/console"
	"github.com/tollgate/tollgate/pkg/console/session"
	csmemory "github.com/tollgate/tollgate/pkg/console/session/memory"
	csredis "github.com/tollgate/tollgate/pkg/console/session/redis"
	"github.com/tollgate/tollgate/pkg/gateway"
	"github.com/tollgate/tollgate/pkg/manage"
	"github.com/tollgate/tollgate/pkg/metrics"
	"github.com/tollgate/tollgate/pkg/oauth"
	"github.com/tollgate/tollgate/pkg/ratelimit"
	rlmemory "github.com/tollgate/tollgate/pkg/ratelimit/memory"
	rlredis "github.com/tollgate/tollgate/pkg/ratelimit/redis"
	"github.com/tollgate/tollgate/pkg/secret"
	"github.com/tollgate/tollgate/pkg/server"
	"github.com/tollgate/tollgate/pkg/sweeper"
	"github.com/tollgate/tollgate/pkg/token"
	"github.com/tollgate/tollgate/pkg/usage"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/storage/memory"
	tgredis "github.com/tollgate/tollgate/storage/redis"
	sqlstore "github.com/tollgate/tollgate/storage/sql"
)

// loadConfig reads and validates the configuration.
func loadConfig(path string, e env) (config.Config, error) {
	cfg, err := config.Load(path, e.lookupEnv)
	if err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, nil
}

// newServeLogger answers the logger of `serve`: newLogger's, with its lines
// batched every cfg.FlushInterval (see logWriter). The function it answers
// writes out what is left; call it last.
func newServeLogger(cfg config.Log, w io.Writer) (*slog.Logger, func()) {
	if cfg.FlushInterval <= 0 {
		return newLogger(cfg, w), func() {}
	}
	lw := newLogWriter(w, cfg.FlushInterval)
	inner := newLogger(cfg, lw).Handler()
	return slog.New(flushingHandler{Handler: inner, w: lw}), lw.Close
}

func newLogger(cfg config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// openDatabase opens the relational store and settles its migrations: they
// are applied when migrate is set or on the embedded default, and serving a
// database with pending migrations is refused otherwise.
func openDatabase(ctx context.Context, cfg config.Config, migrate bool, logger *slog.Logger) (*sqlstore.Store, error) {
	db, _, err := openAndMigrate(ctx, cfg, migrate, logger)
	return db, err
}

// openAndMigrate is openDatabase that also reports the migrations it applied.
func openAndMigrate(ctx context.Context, cfg config.Config, migrate bool, logger *slog.Logger) (*sqlstore.Store, []string, error) {
	db, err := sqlstore.Open(ctx, sqlstore.Options{
		URL:             cfg.Database.URL,
		MaxOpenConns:    cfg.Database.MaxOpenConns,
		MaxIdleConns:    cfg.Database.MaxIdleConns,
		ConnMaxLifetime: noLimitIfZero(cfg.Database.ConnMaxLifetime),
		ConnMaxIdleTime: noLimitIfZero(cfg.Database.ConnMaxIdleTime),
		QueryTimeout:    cfg.Database.QueryTimeout,
		Logger:          logger,
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

// tokenStore is the token store with its health check and its closer.
type tokenStore interface {
	storage.Tokens
	storage.Pinger
}

// backends are the stores that live in Redis in production and in process
// on the embedded default.
type backends struct {
	tokens  tokenStore
	limiter ratelimit.Limiter
	// failures are the brute-force counters.
	failures bruteforce.Store
	// sessions are the web console's sessions.
	sessions session.Store
	redis    goredis.UniversalClient // nil on the embedded default
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

func openBackends(cfg config.Config) (backends, func() error, error) {
	if !cfg.Redis.Enabled() {
		return backends{
			tokens:   memory.New(memory.Options{MaxTokens: embeddedMaxTokens}),
			limiter:  rlmemory.New(rlmemory.Options{}),
			failures: bfmemory.New(bfmemory.Options{}),
			sessions: csmemory.New(csmemory.Options{}),
		}, func() error { return nil }, nil
	}
	client, err := newRedisClient(cfg)
	if err != nil {
		return backends{}, nil, fmt.Errorf("redis: %w", err)
	}
	return redisBackends(client, cfg.Redis.KeyPrefix, nil), client.Close, nil
}

// redisBackends builds the stores that live in Redis, every key under
// prefix, so that every instance on the same Redis shares them. now is the
// token store's clock (nil: time.Now); the end-to-end tests build their
// Redis app through here too, so they test this wiring.
func redisBackends(client goredis.UniversalClient, prefix string, now func() time.Time) backends {
	return backends{
		tokens:   tgredis.New(client, tgredis.Options{KeyPrefix: prefix, Now: now}),
		limiter:  rlredis.New(client, rlredis.Options{KeyPrefix: prefix + "rl:"}),
		failures: bfredis.New(client, bfredis.Options{KeyPrefix: prefix + "bf:"}),
		sessions: csredis.New(client, csredis.Options{KeyPrefix: prefix + "console:"}),
		redis:    client,
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

// newHasher builds the secret hasher from the key material.
func newHasher(keys config.Keys) (*secret.Hasher, error) {
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
func (g grantSettings) EskimiDSPGrantName() string       { return g.cfg.Grants.EskimiDSPName }
func (g grantSettings) EskimiDSPLifetime() time.Duration { return g.cfg.Tokens.EskimiDSPLifetime }

// appStore is what the HTTP layer and the grants need from the database.
type appStore interface {
	storage.Accounts
	storage.Users
	storage.Clients
	storage.Audit
	storage.Transactor
	storage.Pinger
}

// app is the wired server: the public handler and the ops handler.
type app struct {
	public  http.Handler
	ops     http.Handler
	routes  []server.Route // of public
	uses    *usage.Recorder
	sweeper *sweeper.Sweeper
	api     *admin.API
}

// run runs the app's background work until ctx is done and returns when all
// of it has stopped.
func (a *app) run(ctx context.Context, cfg config.Config) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a.uses.Run(ctx, cfg.Credentials.LastUsedFlushInterval) }()
	go func() { defer wg.Done(); a.sweeper.Run(ctx, cfg.Credentials.StaleCheckInterval) }()
	wg.Wait()
}

// deps are the opened backends app is built on.
type deps struct {
	cfg       config.Config
	keys      config.Keys
	db        appStore
	tokens    tokenStore
	limiter   ratelimit.Limiter
	failures  bruteforce.Store // brute-force counters; in process when nil
	sessions  session.Store    // web console sessions; in process when nil
	passwords *secret.Passwords
	logger    *slog.Logger
	now       func() time.Time
}

func newApp(d deps) (*app, error) {
	hasher, err := newHasher(d.keys)
	if err != nil {
		return nil, err
	}
	strategy, err := token.NewStrategy(d.keys.TokenSecret, d.keys.RotatedTokenSecrets)
	if err != nil {
		return nil, err
	}
	if d.now == nil {
		d.now = time.Now
	}
	settings := grantSettings{cfg: d.cfg}
	issuer := oauth.NewIssuer(strategy, d.tokens, d.now)
	uses := usage.New(d.db, d.logger)
	m := metrics.New(version)
	if d.failures == nil {
		d.failures = bfmemory.New(bfmemory.Options{Now: d.now})
	}
	if d.sessions == nil {
		d.sessions = csmemory.New(csmemory.Options{Now: d.now})
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
	authenticator := oauth.NewAuthenticator(d.db, d.db, hasher, uses, clientGuard, d.now)
	validator := oauth.NewValidator(strategy, d.tokens, d.db, uses, d.now)
	grantTypes := []string{clientcredentials.GrantType, settings.EskimiDSPGrantName()}

	fcfg := &fosite.Config{
		ClientSecretsHasher:          hasher,
		ClientAuthenticationStrategy: authenticator.Strategy,
		SendDebugMessagesToClients:   false,
		TokenURL:                     strings.TrimSuffix(d.cfg.Issuer, "/") + server.PathToken,
		AccessTokenLifespan:          d.cfg.Tokens.ClientCredentialsLifetime,
		ScopeStrategy:                fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:     fosite.DefaultAudienceMatchingStrategy,
		TokenEndpointHandlers: fosite.TokenEndpointHandlers{
			clientcredentials.New(settings, issuer),
			eskimidsp.New(settings, d.db, d.passwords, userGuard, issuer),
		},
	}
	provider := fosite.NewOAuth2Provider(oauth.NewClientStore(d.db, d.now), fcfg)

	svc := manage.New(manage.Options{
		Store:               d.db,
		Minter:              issuer,
		Hasher:              hasher,
		Passwords:           d.passwords,
		ManagementScope:     d.cfg.Credentials.ManagementScope,
		AccessRights:        accessRights(d.cfg),
		DefaultAccessRights: d.cfg.Credentials.DefaultAccessRights,
		// A plain client may be allowed the key session explicitly; API
		// keys have it without asking.
		GrantTypes:          append(slices.Clone(grantTypes), server.KeySessionGrant),
		DefaultGrantTypes:   d.cfg.Credentials.DefaultGrantTypes,
		RotationOverlap:     d.cfg.Credentials.RotationOverlap,
		MaxRotationOverlap:  d.cfg.Credentials.MaxRotationOverlap,
		ClientTokenLifetime: d.cfg.Tokens.ClientTokenLifetime,
		RateClasses:         slices.Sorted(maps.Keys(d.cfg.RateLimits.Classes)),
		Logger:              d.logger,
		Now:                 d.now,
		Guard:               userGuard,
	})
	api := admin.New(admin.Options{
		Service:        svc,
		TrustedProxies: d.cfg.BruteForce.Proxies(),
		Validator:      validator,
		MaxBodyBytes:   d.cfg.HTTP.MaxBodyBytes,
		Logger:         d.logger,
	})
	check := gateway.New(gateway.Options{
		Validator:     validator,
		Authenticator: authenticator,
		Accounts:      d.db,
		Limiter:       d.limiter,
		Classes:       rateClasses(d.cfg),
		FailOpen:      d.cfg.RateLimits.FailOpen,
		Metrics:       m,
		Logger:        d.logger,
		// The gateways calling /auth/check forward the API caller's address.
		TrustedProxies: d.cfg.BruteForce.Proxies(),
	})
	// /auth/check/… too: Envoy's ext_authz appends the API request's path.
	mounts := []server.Mount{
		{Prefix: admin.Prefix, Endpoint: "admin", Handler: api},
		{Prefix: "/auth/check", Endpoint: "check", Handler: check},
	}
	handlers := []server.Mount{{Prefix: "/auth/check", Endpoint: "check", Handler: check}}
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
			GrantTypes:          grantTypes,
			DefaultGrantTypes:   svc.DefaultGrantTypes(storage.KindClient),
			RotationOverlap:     d.cfg.Credentials.RotationOverlap,
			MaxRotationOverlap:  d.cfg.Credentials.MaxRotationOverlap,
			ClientTokenLifetime: d.cfg.Tokens.ClientTokenLifetime,
			DisableUnusedAfter:  d.cfg.Credentials.DisableUnusedAfter,
			IdleTimeout:         d.cfg.Console.SessionIdleTimeout,
			MaxLifetime:         d.cfg.Console.SessionLifetime,
			SecureCookies:       d.cfg.Console.SecureCookies,
			TrustedProxies:      d.cfg.BruteForce.Proxies(),
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
		Issuer:                d.cfg.Issuer,
		GrantTypes:            grantTypes,
		MaxBodyBytes:          d.cfg.HTTP.MaxBodyBytes,
		Provider:              provider,
		Strategy:              strategy,
		Validator:             validator,
		Mounts:                mounts,
		Handlers:              handlers,
		Limiter:               d.limiter,
		TokenRate:             d.cfg.RateLimits.TokenRate,
		FailOpen:              d.cfg.RateLimits.FailOpen,
		Authenticator:         authenticator,
		Minter:                issuer,
		KeySessionLifetime:    d.cfg.Tokens.KeySessionLifetime,
		KeySessionMaxLifetime: d.cfg.Tokens.KeySessionMaxLifetime,
		Tokens:                d.tokens,
		Store:                 d.db,
		Logger:                d.logger,
		Metrics:               m,
		Now:                   d.now,
		TrustedProxies:        d.cfg.BruteForce.Proxies(),
	})
	ops := server.OpsHandler(m.Handler(), []server.Check{
		{Name: "database", Ping: d.db.Ping},
		{Name: "tokens", Ping: d.tokens.Ping},
	}, 2*time.Second, d.cfg.Ops.Pprof)
	sweep := sweeper.New(d.db, d.cfg.Credentials.DisableUnusedAfter, d.logger, d.now)
	// Every public answer carries the security headers (HSTS over TLS);
	// a page that sets its own Content-Security-Policy keeps it.
	return &app{public: server.SecurityHeaders(public), routes: public.Routes(), ops: ops, uses: uses, sweeper: sweep, api: api}, nil
}
