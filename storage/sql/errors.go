package sql

import (
	"database/sql"
	"errors"
	"fmt"

	gosqlite "github.com/glebarez/go-sqlite"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/tollgate/tollgate/storage"
)

// PostgreSQL SQLSTATE codes, https://www.postgresql.org/docs/current/errcodes-appendix.html.
const (
	pgUniqueViolation     = "23505"
	pgForeignKeyViolation = "23503"
)

// mapError is the one place where driver errors become storage sentinels:
//
//   - no row: storage.ErrNotFound;
//   - unique violation (a taken username, a second default key of one
//     owner): storage.ErrAlreadyExists;
//   - foreign key violation (a referenced account or user does not exist):
//     storage.ErrConflict, a fault of the request, not an outage.
//
// Anything else is wrapped with op for context. The sentinels do not carry
// the driver error: its detail may quote the values of the row.
func mapError(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gorm.ErrRecordNotFound), errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %w", op, storage.ErrNotFound)
	case isUniqueViolation(err):
		return fmt.Errorf("%s: %w", op, storage.ErrAlreadyExists)
	case isForeignKeyViolation(err):
		return fmt.Errorf("%s: referenced row missing: %w", op, storage.ErrConflict)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func isUniqueViolation(err error) bool {
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		return pgErr.Code == pgUniqueViolation
	}
	if sqliteErr, ok := errors.AsType[*gosqlite.Error](err); ok {
		code := sqliteErr.Code()
		return code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

func isForeignKeyViolation(err error) bool {
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		return pgErr.Code == pgForeignKeyViolation
	}
	if sqliteErr, ok := errors.AsType[*gosqlite.Error](err); ok {
		return sqliteErr.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	return false
}
