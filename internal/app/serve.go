package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/tollgate/tollgate/config"
)

// RunOptions are the process's hooks into Run.
type RunOptions struct {
	// Ready, when not nil, receives the public and ops addresses once both
	// listen.
	Ready func(public, ops string)
	// Hangups, when not nil, registers for the signal that reloads the TLS
	// certificates and returns its channel and its stop function. Run calls
	// it only when a listener serves TLS, before Ready, so that a signal sent
	// as soon as the server is ready is not lost.
	Hangups func() (<-chan os.Signal, func())
	// Notice, when not nil, receives the embedded default's first-run hint.
	Notice io.Writer
}

// Run serves the public and ops listeners and the background work until
// ctx is done or a listener fails. Then it drains for http.shutdown_delay
// (/readyz answers 503, every answer asks for Connection: close), lets
// in-flight requests finish within http.shutdown_timeout, and stops the
// background work last, so the uses of the last requests are written too.
func (a *App) Run(ctx context.Context, o RunOptions) error {
	cfg, logger := a.cfg, a.logger
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
	dr := &a.drain
	public := withTLS(NewHTTPServer(cfg.HTTP, dr.public(a.public), logger), certs["public"])
	ops := withTLS(NewHTTPServer(cfg.HTTP, dr.ops(a.ops), logger), certs["ops"])

	mode := "production (PostgreSQL/Redis)"
	if cfg.Embedded() {
		mode = "embedded (SQLite, in-process token store)"
	}
	publicURL, opsURL := listenURL(public, publicLn), listenURL(ops, opsLn)
	logger.Info("tollgate listening", "version", a.version, "public", publicURL,
		"ops", opsURL, "issuer", cfg.Issuer, "mode", mode, "redis", redisMode(cfg))
	for _, c := range certs {
		logger.Info("serving TLS", "listener", c.listener, "not_after", c.notAfter().UTC().Format(time.RFC3339))
	}
	if cfg.Embedded() && o.Notice != nil {
		fmt.Fprintf(o.Notice, "\nTollgate is listening on %s (metrics and health on %s).\n"+
			"Create a first account, admin user and client with:\n\n    tollgate bootstrap\n\n",
			publicURL, opsURL)
	}
	// SIGHUP reloads the TLS certificates (when there are any).
	var hup <-chan os.Signal
	if len(certs) > 0 && o.Hangups != nil {
		var stopHangups func()
		hup, stopHangups = o.Hangups()
		defer stopHangups()
	}
	if o.Ready != nil {
		o.Ready(publicLn.Addr().String(), opsLn.Addr().String())
	}

	var wg sync.WaitGroup
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.run(bgCtx, cfg)
	}()
	if a.cache != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.cache.Run(bgCtx)
		}()
	}
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

// NewHTTPServer returns a listener's server: the timeouts and header cap of
// the configuration (a client that sends its headers slower than
// ReadHeaderTimeout is cut off; larger headers are answered 431), and
// net/http's own error lines sent to logger.
func NewHTTPServer(cfg config.HTTP, h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          newHTTPErrorLog(logger),
	}
}

// withTLS makes srv serve TLS with cert when cert is not nil.
func withTLS(srv *http.Server, cert *certificate) *http.Server {
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

// newHTTPErrorLog sends net/http's own error lines (TLS handshakes, broken
// connections) to the structured logger.
func newHTTPErrorLog(logger *slog.Logger) *log.Logger {
	return slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
}
