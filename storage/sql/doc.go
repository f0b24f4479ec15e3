// Package sql is Tollgate's relational storage backend: accounts, users and
// clients (credentials) in PostgreSQL or SQLite through GORM.
//
// It owns the database schema and its versioned migrations (embedded SQL
// files, one per version and dialect, recorded in schema_migrations), the
// private row structs and their conversion to the storage types, and the
// translation of driver errors into the storage sentinels. Issued tokens are
// not stored here.
//
// Every query runs under Options.QueryTimeout, so an unreachable database
// answers with an error within a bounded time instead of hanging a request.
package sql
