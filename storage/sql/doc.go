// Package sql is Tollgate's relational storage backend: accounts, users,
// clients (credentials, API keys included) and the audit trail in
// PostgreSQL or SQLite through GORM, with transactions over all of them
// (Store.InTx).
//
// It owns the database schema and its versioned migrations (embedded SQL
// files, one per version and dialect, recorded in schema_migrations), the
// private row structs and their conversion to the storage types, and the
// translation of driver errors into the storage sentinels. Issued tokens are
// not stored here.
//
// Every query runs under Options.QueryTimeout, so an unreachable database
// answers with an error within a bounded time instead of hanging a request;
// inside InTx the timeout bounds the whole transaction.
package sql
