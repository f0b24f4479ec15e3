package sql

import (
	"context"
	"errors"

	"gorm.io/gorm"

	"github.com/tollgate/tollgate/storage"
)

// errBoundToTx answers the calls that make no sense on the Store InTx hands
// to fn: they would use, or on SQLite wait for, a connection of their own.
var errBoundToTx = errors.New("not available on a store bound to a transaction")

// inTx reports whether s is the Store InTx hands to its fn.
func (s *Store) inTx() bool { return !s.txDeadline.IsZero() }

// InTx runs fn in one transaction, bounded as a whole by the query timeout
// (or ctx, if it ends sooner). tx is a Store bound to the transaction: every
// method of it runs there, the transactions of UpdateClient and friends
// become savepoints, and a nested InTx is a savepoint too. fn must use tx,
// not s, for its work: on SQLite, whose one connection the transaction
// holds, a call of s would wait for it until the timeout. tx must not be
// used after fn returns, nor from other goroutines.
//
// When fn returns an error, everything is rolled back and the error is
// returned unchanged; a failing commit answers a wrapped error.
func (s *Store) InTx(ctx context.Context, fn func(tx storage.Store) error) error {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()
	deadline, _ := ctx.Deadline() // queryContext always sets one

	var fnErr error
	err := s.db.WithContext(ctx).Transaction(func(gtx *gorm.DB) error {
		bound := *s
		bound.db, bound.txDeadline = gtx, deadline
		fnErr = fn(&bound)
		return fnErr
	})
	if fnErr != nil {
		return fnErr
	}
	return mapError("transaction", err)
}

// write runs the statements of one call that may fail on a constraint.
// Inside InTx they run in a savepoint: on PostgreSQL a failed statement
// aborts the whole transaction, and fn must be able to handle, say, an
// ErrAlreadyExists and carry on, as it can on SQLite. Outside InTx a single
// statement needs no transaction.
func (s *Store) write(ctx context.Context, fn func(db *gorm.DB) error) error {
	db := s.db.WithContext(ctx)
	if s.inTx() {
		return db.Transaction(fn)
	}
	return fn(db)
}
