// Command resourceserver is an example platform API protected by Tollgate
// through pkg/guard. Every route states the scopes it needs and its rate
// class; the guard asks Tollgate's check endpoint and hands the caller's
// identity to the handler.
//
//	TOLLGATE_CHECK_URL=http://localhost:8080/auth/check go run ./docs/examples/resourceserver
//	curl -H "X-API-Key: $KEY" localhost:9000/v1/events
//
// Environment: TOLLGATE_CHECK_URL (default http://localhost:8080/auth/check)
// and LISTEN_ADDR (default :9000).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tollgate/tollgate/pkg/guard"
)

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	if err := run(logger); err != nil {
		logger.Error("resource server stopped", "err", err)
		os.Exit(1)
	}
}

func run(logger *slog.Logger) error {
	checkURL := envOr("TOLLGATE_CHECK_URL", "http://localhost:8080/auth/check")
	addr := envOr("LISTEN_ADDR", ":9000")

	g := guard.New(guard.Options{
		CheckURL: checkURL,
		// Routes marked NoRateLimit reuse an allowed answer this long; a
		// revoked key still passes them for at most this long.
		CacheTTL: 2 * time.Second,
		Logger:   logger,
	})

	mux := http.NewServeMux()
	// Unprotected.
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	// Scope "events", limited in the "default" class (3/s per key by
	// default).
	mux.Handle("GET /v1/events", g.Require([]string{"events"}, "", http.HandlerFunc(listEvents)))
	// Scope "events", limited in the "reports" class (1/s per key).
	mux.Handle("GET /v1/reports", g.Require([]string{"events"}, "reports", http.HandlerFunc(report)))
	// Acting on an account named in the path: Tollgate answers 403 unless
	// it is the key's account or one of its sub-accounts.
	mux.Handle("GET /v1/accounts/{account}/events", g.Protect(http.HandlerFunc(listEvents),
		guard.Scopes("events"),
		guard.AccountFrom(func(r *http.Request) string { return r.PathValue("account") })))
	// Who am I: cheap, not rate limited, identity cached for CacheTTL.
	mux.Handle("GET /v1/me", g.Protect(http.HandlerFunc(me), guard.NoRateLimit()))

	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() {
		logger.Info("listening", "addr", addr, "check_url", checkURL)
		errc <- srv.ListenAndServe()
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func listEvents(w http.ResponseWriter, r *http.Request) {
	id, _ := guard.IdentityFrom(r.Context())
	account := r.PathValue("account")
	if account == "" {
		account = "own"
	}
	writeJSON(w, map[string]any{"account": account, "client_id": id.ClientID, "events": []string{}})
}

func report(w http.ResponseWriter, r *http.Request) {
	id, _ := guard.IdentityFrom(r.Context())
	writeJSON(w, map[string]any{"account_id": id.AccountID, "report": "empty"})
}

func me(w http.ResponseWriter, r *http.Request) {
	id, _ := guard.IdentityFrom(r.Context())
	writeJSON(w, id)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
