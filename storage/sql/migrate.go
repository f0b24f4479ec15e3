package sql

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
	"time"
)

// ErrSchemaTooNew is returned by Migrate and PendingMigrations when the
// database carries a migration this binary does not know: a newer Tollgate
// migrated it, and running an older one against it is unsafe.
var ErrSchemaTooNew = errors.New("database schema is newer than this binary")

// migrationsFS holds migrations/<dialect>/NNNN_name.sql: one file per
// version and dialect, versions increasing from 1. A version may be
// missing (reserved by a change not merged yet): a database migrated without
// it gets it once it appears, since each version is applied when it is not
// recorded. A released file is never edited; a change is a new version.
//
//go:embed migrations
var migrationsFS embed.FS

// migrationLockKey is the PostgreSQL advisory lock that serialises
// migrators ("tollgate" in ASCII), so instances starting together apply
// each migration once.
const migrationLockKey int64 = 0x746f6c6c67617465

var migrationFileName = regexp.MustCompile(`^([0-9]{4})_([a-z0-9_]+)\.sql$`)

type migration struct {
	version int64
	name    string // the file name without .sql, e.g. "0001_init"
	sql     string
}

func loadMigrations(d dialect) ([]migration, error) {
	return parseMigrations(migrationsFS, path.Join("migrations", d.String()))
}

func parseMigrations(fsys fs.FS, dir string) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var migs []migration
	for _, e := range entries { // ReadDir sorts by name, so by version
		m := migrationFileName.FindStringSubmatch(e.Name())
		if m == nil || e.IsDir() {
			return nil, fmt.Errorf("read migrations: unexpected file %s/%s", dir, e.Name())
		}
		version, _ := strconv.ParseInt(m[1], 10, 64) // four digits by the pattern
		if len(migs) == 0 && version != 1 {
			return nil, fmt.Errorf("read migrations: %s/%s has version %d, want 1", dir, e.Name(), version)
		}
		if len(migs) > 0 && version <= migs[len(migs)-1].version {
			return nil, fmt.Errorf("read migrations: %s/%s repeats version %d", dir, e.Name(), version)
		}
		body, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migrations: %w", err)
		}
		migs = append(migs, migration{version: version, name: m[1] + "_" + m[2], sql: string(body)})
	}
	if len(migs) == 0 {
		return nil, fmt.Errorf("read migrations: none in %s", dir)
	}
	return migs, nil
}

func (s *Store) createMigrationsTableSQL() string {
	if s.dialect == dialectPostgres {
		return `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    bigint PRIMARY KEY,
	name       text NOT NULL,
	applied_at timestamptz NOT NULL
)`
	}
	return `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at DATETIME NOT NULL
)`
}

func (s *Store) recordMigrationSQL() string {
	if s.dialect == dialectPostgres {
		return `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`
	}
	return `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`
}

// Migrate applies the pending migrations in order, each in its own
// transaction, and returns the names of those it applied. It refuses, with
// ErrSchemaTooNew, a database that carries a version this binary does not
// know. Concurrent migrators are safe: on PostgreSQL each transaction holds
// an advisory lock, on SQLite it holds the write lock, and each checks again
// under the lock that its migration is still pending.
func (s *Store) Migrate(ctx context.Context) (applied []string, err error) {
	if s.inTx() {
		return nil, errBoundToTx
	}
	err = s.migrationTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.createMigrationsTableSQL())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("migrate: create schema_migrations: %w", err)
	}

	for _, m := range s.migrations {
		var done bool
		err := s.migrationTx(ctx, func(tx *sql.Tx) error {
			versions, err := s.appliedVersions(ctx, tx)
			if err != nil {
				return err
			}
			if versions[m.version] {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, s.recordMigrationSQL(), m.version, m.name, dbTime(time.Now()))
			done = err == nil
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("migrate %s: %w", m.name, err)
		}
		if done {
			applied = append(applied, m.name)
			s.logger.InfoContext(ctx, "applied database migration", "migration", m.name, "dialect", s.dialect.String())
		}
	}
	return applied, nil
}

// migrationTx runs fn in a transaction that, on PostgreSQL, holds the
// migration advisory lock until it ends.
func (s *Store) migrationTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.sqlDB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if s.dialect == dialectPostgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockKey); err != nil {
			return fmt.Errorf("take migration lock: %w", err)
		}
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// PendingMigrations lists, in order, the migrations not yet applied. It
// does not write: a database never migrated has every migration pending.
// A database with a version this binary does not know answers
// ErrSchemaTooNew.
func (s *Store) PendingMigrations(ctx context.Context) ([]string, error) {
	if s.inTx() {
		return nil, errBoundToTx
	}
	ctx, cancel := s.queryContext(ctx)
	defer cancel()

	versions := map[int64]bool{}
	exists, err := s.migrationsTableExists(ctx)
	if err != nil {
		return nil, fmt.Errorf("pending migrations: %w", err)
	}
	if exists {
		versions, err = s.appliedVersions(ctx, s.sqlDB)
		if err != nil {
			return nil, fmt.Errorf("pending migrations: %w", err)
		}
	}
	var pending []string
	for _, m := range s.migrations {
		if !versions[m.version] {
			pending = append(pending, m.name)
		}
	}
	return pending, nil
}

func (s *Store) migrationsTableExists(ctx context.Context) (bool, error) {
	query := `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`
	if s.dialect == dialectPostgres {
		query = `SELECT COUNT(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = 'schema_migrations'`
	}
	var n int
	if err := s.sqlDB.QueryRowContext(ctx, query).Scan(&n); err != nil {
		return false, err
	}
	return n > 0, nil
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// appliedVersions reads schema_migrations and fails with ErrSchemaTooNew on
// a version this binary does not know.
func (s *Store) appliedVersions(ctx context.Context, q queryer) (map[int64]bool, error) {
	rows, err := q.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }() // rows.Err below reports what went wrong while reading
	versions := map[int64]bool{}
	latest := s.migrations[len(s.migrations)-1].version
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		if v > latest {
			return nil, fmt.Errorf("%w: it has migration version %d, this binary knows up to %d", ErrSchemaTooNew, v, latest)
		}
		versions[v] = true
	}
	return versions, rows.Err()
}
