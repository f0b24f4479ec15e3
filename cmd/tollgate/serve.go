package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"sync"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/storage/cache"

	"github.com/tollgate/tollgate/pkg/secret"
)

func serve(ctx context.Context, args []string, e env) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	configPath := fs.String("config", "", "path of a YAML configuration file")
	migrateFlag := fs.Bool("migrate", false, "apply pending database migrations before serving")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	cfg, err := loadConfig(*configPath, e)
	if err != nil {
		return err
	}
	logger := newLogger(cfg.Log, e.stderr)
	goredis.SetLogger(redisLog{logger})
	keys, err := resolveKeys(cfg)
	if err != nil {
		return err
	}
	db, err := openDatabase(ctx, cfg, *migrateFlag, logger)
	if err != nil {
		return err
	}
	defer db.Close()
	be, closeBackends, err := openBackends(cfg)
	if err != nil {
		return err
	}
	defer closeBackends()
	passwords, err := secret.NewPasswords(secret.DefaultArgon2Params)
	if err != nil {
		return err
	}
	// Clients, users and accounts are cached in process; writes on any
	// instance invalidate every instance's cache through Redis.
	var bus cache.Bus
	if be.redis != nil {
		bus = cache.NewRedisBus(be.redis, cfg.Redis.KeyPrefix+"cache")
	}
	cached := cache.New(db, cache.Options{Bus: bus, Logger: logger})
	a, err := newApp(deps{cfg: cfg, keys: keys, db: cached, tokens: be.tokens, limiter: be.limiter, failures: be.failures, passwords: passwords, logger: logger})
	if err != nil {
		return err
	}

	publicLn, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTP.Addr, err)
	}
	opsLn, err := net.Listen("tcp", cfg.Ops.Addr)
	if err != nil {
		publicLn.Close()
		return fmt.Errorf("listen on %s: %w", cfg.Ops.Addr, err)
	}
	public := &http.Server{
		Handler:           a.public,
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		ReadTimeout:       cfg.HTTP.ReadTimeout,
		WriteTimeout:      cfg.HTTP.WriteTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          newHTTPErrorLog(logger),
	}
	ops := &http.Server{
		Handler:           a.ops,
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		ReadTimeout:       cfg.HTTP.ReadTimeout,
		WriteTimeout:      cfg.HTTP.WriteTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          newHTTPErrorLog(logger),
	}

	mode := "production (PostgreSQL/Redis)"
	if cfg.Embedded() {
		mode = "embedded (SQLite, in-process token store)"
	}
	logger.Info("tollgate listening", "version", version, "public", "http://"+publicLn.Addr().String(),
		"ops", "http://"+opsLn.Addr().String(), "issuer", cfg.Issuer, "mode", mode)
	if cfg.Embedded() {
		fmt.Fprintf(e.stderr, "\nTollgate is listening on http://%s (metrics and health on http://%s).\n"+
			"Create a first account, admin user and client with:\n\n    tollgate bootstrap\n\n",
			publicLn.Addr(), opsLn.Addr())
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
	errc := make(chan error, 2)
	for _, s := range []struct {
		srv *http.Server
		ln  net.Listener
	}{{public, publicLn}, {ops, opsLn}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}

	var serveErr error
	select {
	case <-ctx.Done():
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
