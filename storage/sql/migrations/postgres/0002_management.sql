-- Management: optimistic-locking versions, API keys on the clients table,
-- secret rotation with an overlap window, and the audit trail.

ALTER TABLE accounts ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE users    ADD COLUMN version bigint NOT NULL DEFAULT 1;

-- An API key is a client presented differently (kind = 'key'). The
-- previous_* columns keep the secret replaced by the last rotation working
-- until previous_retire_at.
ALTER TABLE clients
    ADD COLUMN version              bigint NOT NULL DEFAULT 1,
    ADD COLUMN kind                 text NOT NULL DEFAULT 'client' CHECK (kind IN ('client', 'key')),
    ADD COLUMN is_default           boolean NOT NULL DEFAULT false,
    ADD COLUMN secret_hint          text NOT NULL DEFAULT '',
    ADD COLUMN access_rights        text NOT NULL DEFAULT '',
    ADD COLUMN previous_secret_hash text NOT NULL DEFAULT '',
    ADD COLUMN previous_generation  bigint NOT NULL DEFAULT 0,
    ADD COLUMN previous_retire_at   timestamptz;

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
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at     timestamptz NOT NULL,
    account_id      bigint NOT NULL,
    actor_user_id   bigint NOT NULL DEFAULT 0,
    actor_client_id bigint NOT NULL DEFAULT 0,
    action          text NOT NULL,
    target_type     text NOT NULL DEFAULT '',
    target_id       bigint NOT NULL DEFAULT 0,
    remote_addr     text NOT NULL DEFAULT '',
    outcome         text NOT NULL CHECK (outcome IN ('success', 'failure')),
    detail          text NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_account_id_idx ON audit_events (account_id, id);
