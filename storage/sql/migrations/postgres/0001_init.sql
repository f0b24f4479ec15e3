-- Accounts, users and clients (credentials). Times are timestamptz, written
-- by the store in UTC with microsecond precision. Identity columns never
-- reuse a value, so a deleted client's id can never be handed to a new one.

CREATE TABLE accounts (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    parent_id  bigint REFERENCES accounts (id),
    name       text NOT NULL,
    status     text NOT NULL CHECK (status IN ('active', 'disabled')),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CHECK (parent_id <> id)
);
CREATE INDEX accounts_parent_id_idx ON accounts (parent_id);

CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id    bigint NOT NULL REFERENCES accounts (id),
    username      text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('admin', 'member')),
    status        text NOT NULL CHECK (status IN ('active', 'disabled')),
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX users_account_id_idx ON users (account_id);

-- grant_types and scopes are space-separated lists, the OAuth 2.0 wire
-- format of scope (RFC 6749 section 3.3): a token never contains a space.
CREATE TABLE clients (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id             bigint NOT NULL REFERENCES accounts (id),
    owner_id               bigint REFERENCES users (id),
    name                   text NOT NULL,
    description            text NOT NULL DEFAULT '',
    secret_hash            text NOT NULL,
    grant_types            text NOT NULL DEFAULT '',
    scopes                 text NOT NULL DEFAULT '',
    may_introspect         boolean NOT NULL DEFAULT false,
    token_lifetime_seconds bigint NOT NULL DEFAULT 0 CHECK (token_lifetime_seconds >= 0),
    status                 text NOT NULL CHECK (status IN ('active', 'disabled')),
    generation             bigint NOT NULL DEFAULT 0,
    expires_at             timestamptz,
    last_used_at           timestamptz,
    created_by             bigint REFERENCES users (id),
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL
);
CREATE INDEX clients_account_id_idx ON clients (account_id);
CREATE INDEX clients_owner_id_idx ON clients (owner_id);
CREATE INDEX clients_created_by_idx ON clients (created_by);
