package sql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
	otelgorm "gorm.io/plugin/opentelemetry/tracing"

	"github.com/tollgate/tollgate/storage"
)

var (
	_ storage.Store      = (*Store)(nil)
	_ storage.Transactor = (*Store)(nil)
	_ storage.Pinger     = (*Store)(nil)
)

// Defaults applied by Open to zero Options fields.
const (
	DefaultQueryTimeout    = 2 * time.Second
	DefaultConnectTimeout  = 2 * time.Second
	DefaultConnMaxLifetime = 30 * time.Minute
	DefaultConnMaxIdleTime = 5 * time.Minute
)

// DefaultMaxOpenConns answers the PostgreSQL pool limit when
// Options.MaxOpenConns is zero: 4 connections per GOMAXPROCS, at least 8.
// A connection is held for a query's round trip, mostly spent waiting on
// the network and the server, so a few per CPU keep the CPUs busy; the
// limit bounds what one instance takes of the server's max_connections.
func DefaultMaxOpenConns() int { return max(8, 4*runtime.GOMAXPROCS(0)) }

// DefaultMaxIdleConns answers the idle connections kept when
// Options.MaxIdleConns is zero: half of the open limit, at least 2.
func DefaultMaxIdleConns(maxOpen int) int { return max(2, maxOpen/2) }

// sqliteBusyTimeout is how long a SQLite writer waits for another process
// (tollgate migrate next to a running server) to release the database.
const sqliteBusyTimeout = 5 * time.Second

// Options configure Open.
type Options struct {
	// URL is a postgres:// or postgresql:// URL for PostgreSQL; anything
	// else is the path of a SQLite database file, created when missing.
	// A PostgreSQL URL without connect_timeout (and no PGCONNECT_TIMEOUT in
	// the environment) gets DefaultConnectTimeout.
	URL string
	// Pool settings for PostgreSQL; zero means DefaultMaxOpenConns,
	// DefaultMaxIdleConns, DefaultConnMaxLifetime and DefaultConnMaxIdleTime,
	// and a negative duration means no limit. MaxIdleConns is capped at
	// MaxOpenConns. SQLite always uses a single connection, see Open.
	MaxOpenConns    int
	MaxIdleConns    int
	ConnMaxLifetime time.Duration
	ConnMaxIdleTime time.Duration
	// QueryTimeout bounds every call of the store (a whole transaction for
	// UpdateClient, and everything fn does for InTx); zero means
	// DefaultQueryTimeout. Migrate is bounded
	// only by its context, as a migration may rewrite large tables.
	QueryTimeout time.Duration
	// Logger receives the migrations applied; nil discards.
	Logger *slog.Logger
	// Trace records a span per statement on the global OpenTelemetry
	// tracer provider (GORM's OpenTelemetry plugin), as a child of the
	// span in the call's context: the statement with its placeholders,
	// never the values bound to them (secret hashes, user names).
	Trace bool
}

type dialect int

const (
	dialectPostgres dialect = iota + 1
	dialectSQLite
)

func (d dialect) String() string {
	if d == dialectPostgres {
		return "postgres"
	}
	return "sqlite"
}

// Store keeps accounts, users, clients and the audit trail in PostgreSQL or
// SQLite. It is safe for concurrent use, except a Store that InTx hands to
// its fn: that one is bound to the transaction and serves fn alone.
type Store struct {
	db           *gorm.DB
	sqlDB        *sql.DB
	dialect      dialect
	queryTimeout time.Duration
	logger       *slog.Logger
	migrations   []migration
	// txDeadline is set on a Store bound to a transaction by InTx: every
	// call inside it shares the deadline of the whole transaction.
	txDeadline time.Time
}

// Open connects to the database named by opts.URL and checks that it
// answers. It does not migrate; see Migrate and PendingMigrations.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.QueryTimeout < 0 {
		return nil, fmt.Errorf("open database: negative query timeout %s", opts.QueryTimeout)
	}
	if opts.QueryTimeout == 0 {
		opts.QueryTimeout = DefaultQueryTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}

	var (
		d     dialect
		sqlDB *sql.DB
		gdial gorm.Dialector
		err   error
	)
	if isPostgresURL(opts.URL) {
		d = dialectPostgres
		sqlDB, err = openPostgres(opts)
		if err != nil {
			return nil, err
		}
		gdial = postgres.New(postgres.Config{Conn: sqlDB})
	} else {
		d = dialectSQLite
		sqlDB, err = openSQLite(opts.URL)
		if err != nil {
			return nil, err
		}
		gdial = sqlite.Dialector{Conn: sqlDB}
	}

	migs, err := loadMigrations(d)
	if err != nil {
		_ = sqlDB.Close() // the error below is the one to report
		return nil, err
	}
	db, err := gorm.Open(gdial, &gorm.Config{
		// GORM's logger prints SQL with its values, secret hashes included.
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		DisableAutomaticPing:   true,
	})
	if err != nil {
		_ = sqlDB.Close() // as above
		return nil, fmt.Errorf("open %s database: %w", d, err)
	}
	if opts.Trace {
		err := db.Use(otelgorm.NewPlugin(otelgorm.WithoutQueryVariables(), otelgorm.WithoutMetrics()))
		if err != nil {
			_ = sqlDB.Close() // as above
			return nil, fmt.Errorf("open %s database: tracing: %w", d, err)
		}
	}
	s := &Store{
		db:           db,
		sqlDB:        sqlDB,
		dialect:      d,
		queryTimeout: opts.QueryTimeout,
		logger:       opts.Logger,
		migrations:   migs,
	}
	if err := s.Ping(ctx); err != nil {
		_ = sqlDB.Close() // as above
		return nil, fmt.Errorf("open %s database: %w", d, err)
	}
	return s, nil
}

func isPostgresURL(u string) bool {
	return strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://")
}

func openPostgres(opts Options) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(opts.URL)
	if err != nil {
		// pgx's message may quote the URL, password included.
		return nil, errors.New("open postgres database: invalid url")
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	db := stdlib.OpenDB(*cfg)
	p := opts.pool()
	db.SetMaxOpenConns(p.MaxOpenConns)
	db.SetMaxIdleConns(p.MaxIdleConns)
	db.SetConnMaxLifetime(p.ConnMaxLifetime)
	db.SetConnMaxIdleTime(p.ConnMaxIdleTime)
	return db, nil
}

// pool answers the pool settings of o with the defaults filled in, and
// durations of no limit as database/sql has them (0).
func (o Options) pool() Options {
	p := o
	if p.MaxOpenConns <= 0 {
		p.MaxOpenConns = DefaultMaxOpenConns()
	}
	if p.MaxIdleConns <= 0 {
		p.MaxIdleConns = DefaultMaxIdleConns(p.MaxOpenConns)
	}
	p.MaxIdleConns = min(p.MaxIdleConns, p.MaxOpenConns)
	p.ConnMaxLifetime = durationOr(p.ConnMaxLifetime, DefaultConnMaxLifetime)
	p.ConnMaxIdleTime = durationOr(p.ConnMaxIdleTime, DefaultConnMaxIdleTime)
	return p
}

// durationOr answers def for zero, 0 (no limit) for a negative d, else d.
func durationOr(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

// openSQLite opens the database file at path with one connection: SQLite
// allows one writer at a time, and a single connection makes the writers of
// this process queue in database/sql (bounded by the query timeout) rather
// than fail with "database is locked". busy_timeout covers other processes;
// _txlock=immediate takes the write lock at BEGIN, so a transaction that
// reads before it writes cannot fail to upgrade its lock.
func openSQLite(path string) (*sql.DB, error) {
	if path == "" {
		return nil, errors.New("open sqlite database: empty path")
	}
	if strings.Contains(path, "://") {
		return nil, fmt.Errorf("open database: unsupported url scheme in %q", redactURL(path))
	}
	if strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("open sqlite database %q: path must not contain '?'", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open sqlite database: %w", err)
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open(sqlite.DriverName, path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite database %q: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	return db, nil
}

// redactURL drops user info from u for error messages.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(invalid url)"
	}
	return p.Redacted()
}

// Close closes the database connections.
func (s *Store) Close() error {
	if s.inTx() {
		return errBoundToTx
	}
	if err := s.sqlDB.Close(); err != nil {
		return fmt.Errorf("close %s database: %w", s.dialect, err)
	}
	return nil
}

// Ping reports whether the database answers within the query timeout.
// Stats returns the statistics of the connection pool, for the metrics.
func (s *Store) Stats() sql.DBStats { return s.sqlDB.Stats() }

func (s *Store) Ping(ctx context.Context) error {
	if s.inTx() {
		return errBoundToTx
	}
	ctx, cancel := s.queryContext(ctx)
	defer cancel()
	if err := s.sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s database: %w", s.dialect, err)
	}
	return nil
}

// queryContext bounds one call of the store by the query timeout or, inside
// InTx, by the deadline of the whole transaction: the timeout does not
// restart with every call fn makes.
func (s *Store) queryContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.inTx() {
		return context.WithDeadline(ctx, s.txDeadline)
	}
	return context.WithTimeout(ctx, s.queryTimeout)
}

// dbTime is how times are written: UTC with the microsecond precision both
// PostgreSQL and the SQLite text format keep.
func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func nullTime(t time.Time) sql.NullTime {
	if t.IsZero() {
		return sql.NullTime{}
	}
	return sql.NullTime{Time: dbTime(t), Valid: true}
}

func fromNullTime(t sql.NullTime) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

// nullID stores the optional references (parent, owner, creator) whose
// absence the storage types spell 0.
func nullID(id int64) sql.NullInt64 {
	if id == 0 {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: id, Valid: true}
}

func fromNullID(id sql.NullInt64) int64 {
	if !id.Valid {
		return 0
	}
	return id.Int64
}
