-- Accounts, users and clients (credentials). Times are DATETIME text that the
-- store writes in UTC with microsecond precision ("2006-01-02
-- 15:04:05.999999+00:00"); with one offset everywhere, comparing them as text
-- follows time order. AUTOINCREMENT never reuses an id, so a deleted client's
-- id can never be handed to a new one.

CREATE TABLE accounts (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    parent_id  INTEGER REFERENCES accounts (id),
    name       TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL,
    CHECK (parent_id <> id)
);
CREATE INDEX accounts_parent_id_idx ON accounts (parent_id);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id    INTEGER NOT NULL REFERENCES accounts (id),
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    status        TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    created_at    DATETIME NOT NULL,
    updated_at    DATETIME NOT NULL
);
CREATE INDEX users_account_id_idx ON users (account_id);

-- grant_types and scopes are space-separated lists, the OAuth 2.0 wire
-- format of scope (RFC 6749 section 3.3): a token never contains a space.
CREATE TABLE clients (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id             INTEGER NOT NULL REFERENCES accounts (id),
    owner_id               INTEGER REFERENCES users (id),
    name                   TEXT NOT NULL,
    description            TEXT NOT NULL DEFAULT '',
    secret_hash            TEXT NOT NULL,
    grant_types            TEXT NOT NULL DEFAULT '',
    scopes                 TEXT NOT NULL DEFAULT '',
    may_introspect         BOOLEAN NOT NULL DEFAULT 0 CHECK (may_introspect IN (0, 1)),
    token_lifetime_seconds INTEGER NOT NULL DEFAULT 0 CHECK (token_lifetime_seconds >= 0),
    status                 TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    generation             INTEGER NOT NULL DEFAULT 0,
    expires_at             DATETIME,
    last_used_at           DATETIME,
    created_by             INTEGER REFERENCES users (id),
    created_at             DATETIME NOT NULL,
    updated_at             DATETIME NOT NULL
);
CREATE INDEX clients_account_id_idx ON clients (account_id);
CREATE INDEX clients_owner_id_idx ON clients (owner_id);
CREATE INDEX clients_created_by_idx ON clients (created_by);
