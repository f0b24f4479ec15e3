package app_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/internal/app"
	"github.com/tollgate/tollgate/storage/sql/sqltest"
)

func testKeys() config.Keys {
	return config.Keys{
		TokenSecret:      []byte("0123456789abcdef0123456789abcdef-token"),
		PepperID:         "1",
		Pepper:           []byte("0123456789abcdef0123456789abcdef-pepper"),
		KeyEncryptionKey: []byte("0123456789abcdef0123456789abcdef"),
	}
}

// embedded is the embedded default on a temporary data directory, listening
// on free ports.
func embedded(t *testing.T) config.Config {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Database.URL = filepath.Join(cfg.DataDir, "tollgate.db")
	cfg.HTTP.Addr, cfg.Ops.Addr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Issuer = "http://127.0.0.1" // config.Load derives one; JWT access tokens name it
	return cfg
}

// TestRunServesUntilCancelled: Open builds the application on the embedded
// default, Run serves both listeners once Ready is called, and returns nil
// once its context is cancelled; Close then closes the stores.
func TestRunServesUntilCancelled(t *testing.T) {
	cfg := embedded(t)
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	a, err := app.Open(t.Context(), cfg, app.Options{Keys: testKeys(), Logger: logger, Version: "test"})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	ready := make(chan [2]string, 1)
	var notice strings.Builder
	done := make(chan error, 1)
	go func() {
		done <- a.Run(ctx, app.RunOptions{Ready: func(public, ops string) { ready <- [2]string{public, ops} }, Notice: &notice})
	}()
	var addrs [2]string
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatalf("Run returned before it was ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Run never became ready")
	}
	for _, u := range []string{"http://" + addrs[0] + "/.well-known/oauth-authorization-server", "http://" + addrs[1] + "/readyz"} {
		res, err := http.Get(u)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status %d, want 200", u, res.StatusCode)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel: %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	if !strings.Contains(notice.String(), "tollgate bootstrap") {
		t.Errorf("the embedded default's notice = %q, want the bootstrap hint", notice.String())
	}
	if err := a.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestRunRefusesATakenAddress: a listener that cannot listen is Run's
// error, at once.
func TestRunRefusesATakenAddress(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := embedded(t)
	cfg.HTTP.Addr = taken.Addr().String()
	a, err := app.Open(t.Context(), cfg, app.Options{Keys: testKeys(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	err = a.Run(t.Context(), app.RunOptions{Ready: func(string, string) { t.Error("Ready called on a taken address") }})
	if err == nil || !strings.Contains(err.Error(), "listen on "+cfg.HTTP.Addr) {
		t.Errorf("Run on a taken address: %v, want a listen error", err)
	}
}

// TestNewRefusesRetiredPepperAsCurrent: a retired pepper id that is the
// current one is a configuration error, not a silent overwrite.
func TestNewRefusesRetiredPepperAsCurrent(t *testing.T) {
	keys := testKeys()
	keys.RetiredPeppers = map[string][]byte{"1": []byte("0123456789abcdef0123456789abcdef-retired")}
	if _, err := app.NewHasher(keys); err == nil || !strings.Contains(err.Error(), "is the current pepper id") {
		t.Errorf("NewHasher: %v, want the retired pepper id refused", err)
	}
}

// TestOpenDatabaseRefusesPendingMigrations: production serves only a
// migrated database unless asked to migrate.
func TestOpenDatabaseRefusesPendingMigrations(t *testing.T) {
	cfg := config.Default()
	cfg.Database.URL = sqltest.Postgres(t)
	logger := slog.New(slog.DiscardHandler)
	if _, err := app.OpenDatabase(t.Context(), cfg, false, logger); err == nil || !strings.Contains(err.Error(), "pending migrations") {
		t.Fatalf("OpenDatabase without migrate: %v, want pending migrations refused", err)
	}
	db, applied, err := app.OpenAndMigrate(t.Context(), cfg, true, logger)
	if err != nil {
		t.Fatalf("OpenAndMigrate: %v", err)
	}
	defer db.Close()
	if len(applied) == 0 {
		t.Error("OpenAndMigrate applied nothing on an empty database")
	}
}
