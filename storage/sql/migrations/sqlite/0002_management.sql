-- Management: optimistic-locking versions, API keys on the clients table,
-- secret rotation with an overlap window, and the audit trail.

ALTER TABLE accounts ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE users    ADD COLUMN version INTEGER NOT NULL DEFAULT 1;

-- An API key is a client presented differently (kind = 'key'). The
-- previous_* columns keep the secret replaced by the last rotation working
-- until previous_retire_at.
ALTER TABLE clients ADD COLUMN version              INTEGER NOT NULL DEFAULT 1;
ALTER TABLE clients ADD COLUMN kind                 TEXT NOT NULL DEFAULT 'client' CHECK (kind IN ('client', 'key'));
ALTER TABLE clients ADD COLUMN is_default           BOOLEAN NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1));
ALTER TABLE clients ADD COLUMN secret_hint          TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN access_rights        TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN previous_secret_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN previous_generation  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN previous_retire_at   DATETIME;

-- A user has at most one default key.
CREATE UNIQUE INDEX clients_owner_default_idx ON clients (owner_id) WHERE is_default;

-- Lists are ordered by id within a parent, account or owner; these replace
-- the single-column indexes of 0001.
DROP INDEX accounts_parent_id_idx;
CREATE INDEX accounts_parent_id_idx ON accounts (parent_id, id);
DROP INDEX users_account_id_idx;
CREATE INDEX users_account_id_idx ON users (account_id, id);
DROP INDEX clients_account_id_idx;
CREATE INDEX clients_account_id_idx ON clients (account_id, id);
DROP INDEX clients_owner_id_idx;
CREATE INDEX clients_owner_id_idx ON clients (owner_id, id);
-- DisableStale scans the active clients.
CREATE INDEX clients_status_last_used_at_idx ON clients (status, last_used_at);

-- The audit trail has no foreign keys: an event outlives the account, user
-- or client it describes. 0 stands for "none" in the actor and target ids.
CREATE TABLE audit_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at     DATETIME NOT NULL,
    account_id      INTEGER NOT NULL,
    actor_user_id   INTEGER NOT NULL DEFAULT 0,
    actor_client_id INTEGER NOT NULL DEFAULT 0,
    action          TEXT NOT NULL,
    target_type     TEXT NOT NULL DEFAULT '',
    target_id       INTEGER NOT NULL DEFAULT 0,
    remote_addr     TEXT NOT NULL DEFAULT '',
    outcome         TEXT NOT NULL CHECK (outcome IN ('success', 'failure')),
    detail          TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_account_id_idx ON audit_events (account_id, id);
