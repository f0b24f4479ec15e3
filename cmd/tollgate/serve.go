package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/storage/cache"

	"github.com/tollgate/tollgate/pkg/secret"
)

// cacheMaxStale is how long past its TTL a cached client, user or account
// answer is still served while the database cannot be read: tokens,
// introspection and checks of the credentials in use survive a database
// outage (or failover) that long.
const cacheMaxStale = 5 * time.Minute

func serve(ctx context.Context, args []string, e env) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	configPath := fs.String("config", "", "path of a YAML configuration file")
	migrateFlag := fs.Bool("migrate", false, "apply pending database migrations before serving")
	if err := parseCommandFlags(fs, args, "tollgate serve [flags]", "Run the authorization server: the public listener (OAuth endpoints, /auth/check, the\nmanagement API, the console) and the ops listener (/metrics, /healthz, /readyz). SIGTERM drains\nin-flight requests. Settings come from --config and TOLLGATE_* variables (docs/configuration.md).", e); err != nil {
		return err
	}
	cfg, err := loadConfig(*configPath, e)
	if err != nil {
		return err
	}
	logger, closeLog := newServeLogger(cfg.Log, e.stderr)
	defer closeLog()
	goredis.SetLogger(redisLog{logger})
	keys, err := resolveKeys(cfg)
	if err != nil {
		return err
	}
	db, err := openDatabase(ctx, cfg, *migrateFlag, logger)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }() // at exit: the listeners have drained, nothing is left to write
	be, closeBackends, err := openBackends(cfg)
	if err != nil {
		return err
	}
	defer func() { _ = closeBackends() }() // as above
	passwords, err := secret.NewPasswords(secret.DefaultArgon2Params)
	if err != nil {
		return err
	}
	// Clients, users and accounts are cached in process; writes on any
	// instance invalidate every instance's cache through Redis. While the
	// database is down, what was read recently keeps being served.
	var bus cache.Bus
	if be.redis != nil {
		bus = cache.NewRedisBus(be.redis, cfg.Redis.KeyPrefix+"cache")
	}
	cached := cache.New(db, cache.Options{Bus: bus, Logger: logger, MaxStale: cacheMaxStale})
	a, err := newApp(deps{cfg: cfg, keys: keys, db: cached, tokens: be.tokens, limiter: be.limiter, failures: be.failures, sessions: be.sessions, passwords: passwords, logger: logger})
	if err != nil {
		return err
	}

	publicLn, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTP.Addr, err)
	}
	opsLn, err := net.Listen("tcp", cfg.Ops.Addr)
	if err != nil {
		_ = publicLn.Close() // the listen error is the one to report
		return fmt.Errorf("listen on %s: %w", cfg.Ops.Addr, err)
	}
	certs, err := listenerCertificates(map[string][2]string{
		"public": {cfg.HTTP.TLSCertFile, cfg.HTTP.TLSKeyFile},
		"ops":    {cfg.Ops.TLSCertFile, cfg.Ops.TLSKeyFile},
	})
	if err != nil {
		_ = publicLn.Close() // the build error is the one to report
		_ = opsLn.Close()
		return err
	}
	var dr drain
	public := newHTTPServer(cfg.HTTP, dr.public(a.public), certs["public"], logger)
	ops := newHTTPServer(cfg.HTTP, dr.ops(a.ops), certs["ops"], logger)

	mode := "production (PostgreSQL/Redis)"
	if cfg.Embedded() {
		mode = "embedded (SQLite, in-process token store)"
	}
	publicURL, opsURL := listenURL(public, publicLn), listenURL(ops, opsLn)
	logger.Info("tollgate listening", "version", version, "public", publicURL,
		"ops", opsURL, "issuer", cfg.Issuer, "mode", mode, "redis", redisMode(cfg))
	for _, c := range certs {
		logger.Info("serving TLS", "listener", c.listener, "not_after", c.notAfter().UTC().Format(time.RFC3339))
	}
	if cfg.Embedded() {
		fmt.Fprintf(e.stderr, "\nTollgate is listening on %s (metrics and health on %s).\n"+
			"Create a first account, admin user and client with:\n\n    tollgate bootstrap\n\n",
			publicURL, opsURL)
	}
	// SIGHUP reloads the TLS certificates (when there are any).
	var hup <-chan os.Signal
	if len(certs) > 0 {
		var stopHangups func()
		hup, stopHangups = hangups()
		defer stopHangups()
	}
	if e.ready != nil {
		e.ready(publicLn.Addr().String(), opsLn.Addr().String())
	}

	var wg sync.WaitGroup
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.run(bgCtx, cfg)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		cached.Run(bgCtx)
	}()
	if hup != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reloadOnHangup(bgCtx, hup, certs, logger)
		}()
	}
	errc := make(chan error, 2)
	for _, s := range []struct {
		srv *http.Server
		ln  net.Listener
	}{{public, publicLn}, {ops, opsLn}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := serveListener(s.srv, s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}

	var serveErr error
	select {
	case <-ctx.Done():
		if delay := cfg.HTTP.ShutdownDelay; delay > 0 {
			logger.Info("draining: still serving, /readyz answers 503", "delay", delay.String())
			dr.start()
			select {
			case <-time.After(delay):
			case serveErr = <-errc:
				logger.Error("listener failed", "err", serveErr)
			}
		}
		logger.Info("shutting down", "timeout", cfg.HTTP.ShutdownTimeout.String())
	case serveErr = <-errc:
		logger.Error("listener failed", "err", serveErr)
	}
	// In-flight requests finish; new connections are refused.
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.HTTP.ShutdownTimeout)
	defer cancel()
	err = errors.Join(public.Shutdown(shutdownCtx), ops.Shutdown(shutdownCtx))
	// Background work stops after the listeners, so the uses of the last
	// requests are written too.
	stopBackground()
	wg.Wait()
	logger.Info("stopped")
	return errors.Join(serveErr, err)
}

// newHTTPServer is a listener's server: the timeouts and header cap of the
// configuration (a client that sends its headers slower than
// ReadHeaderTimeout is cut off; larger headers are answered 431), and TLS
// when cert is not nil.
func newHTTPServer(cfg config.HTTP, h http.Handler, cert *certificate, logger *slog.Logger) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          newHTTPErrorLog(logger),
	}
	if cert != nil {
		srv.TLSConfig = cert.tlsConfig()
	}
	return srv
}

// serveListener serves ln, over TLS when srv has a TLS configuration.
func serveListener(srv *http.Server, ln net.Listener) error {
	if srv.TLSConfig != nil {
		// The certificate comes from TLSConfig.GetCertificate.
		return srv.ServeTLS(ln, "", "")
	}
	return srv.Serve(ln)
}

// listenURL is the base URL a listener answers on.
func listenURL(srv *http.Server, ln net.Listener) string {
	if srv.TLSConfig != nil {
		return "https://" + ln.Addr().String()
	}
	return "http://" + ln.Addr().String()
}
