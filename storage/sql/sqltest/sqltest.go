// Package sqltest gives tests a database of their own for storage/sql: a
// fresh PostgreSQL database per test, dropped when the test ends, or a
// SQLite file in the test's temporary directory. It returns URLs only, so
// any package's tests can import it.
package sqltest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultPostgresURL is the PostgreSQL server the tests use unless
// TOLLGATE_TEST_POSTGRES_URL names another. Its database only serves to
// create and drop the per-test ones.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// adminTimeout bounds connecting to the server and creating or dropping a
// database.
const adminTimeout = 10 * time.Second

// Postgres creates an empty database for t on the test PostgreSQL server,
// drops it (closing its connections) when t ends, and returns its URL.
//
// When the server cannot be reached the test is skipped, unless CI=true in
// the environment: CI must run the PostgreSQL suites, never skip them.
func Postgres(t *testing.T) string {
	t.Helper()

	serverURL := os.Getenv("TOLLGATE_TEST_POSTGRES_URL")
	if serverURL == "" {
		serverURL = DefaultPostgresURL
	}
	ctx, cancel := context.WithTimeout(t.Context(), adminTimeout)
	defer cancel()
	admin, err := connect(ctx, serverURL)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("postgres at %s unreachable (CI=true, not skipping): %v", redact(serverURL), err)
		}
		t.Skipf("postgres at %s unreachable, skipping: %v", redact(serverURL), err)
	}
	defer func() { _ = admin.Close(ctx) }() // an admin connection for one statement

	name := "tollgate_test_" + strings.ToLower(rand.Text()[:16])
	// A database name cannot be a query parameter; name is ours and safe.
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create test database %s: %v", name, err)
	}
	t.Cleanup(func() { dropDatabase(t, serverURL, name) })

	u, err := url.Parse(serverURL)
	if err != nil {
		t.Fatalf("parse TOLLGATE_TEST_POSTGRES_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

func connect(ctx context.Context, serverURL string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(serverURL)
	if err != nil {
		return nil, fmt.Errorf("parse url: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 2 * time.Second
	}
	return pgx.ConnectConfig(ctx, cfg)
}

// dropDatabase runs in t.Cleanup, after t.Context is cancelled.
func dropDatabase(t *testing.T, serverURL, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	admin, err := connect(ctx, serverURL)
	if err != nil {
		t.Errorf("drop test database %s: %v", name, err)
		return
	}
	defer func() { _ = admin.Close(ctx) }() // as above
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		t.Errorf("drop test database %s: %v", name, err)
	}
}

func redact(serverURL string) string {
	u, err := url.Parse(serverURL)
	if err != nil {
		return "(invalid url)"
	}
	return u.Redacted()
}

// SQLite returns the path of a database file, not yet created, in t's
// temporary directory.
func SQLite(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "tollgate.db")
}
