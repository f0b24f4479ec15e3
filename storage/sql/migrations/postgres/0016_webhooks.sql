-- Webhooks: an account's subscriptions to lifecycle events, and the outbox
-- of their deliveries. secret_sealed is the signing secret encrypted under
-- the key-encryption key. A delivery row is written in the transaction of
-- the change it tells of; (webhook_id, event_id) is unique so that an
-- event reported twice (a quota threshold seen by several instances) is
-- delivered once.
CREATE TABLE webhooks (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id      bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    url             text NOT NULL,
    events          text NOT NULL,
    description     text NOT NULL DEFAULT '',
    include_subtree boolean NOT NULL DEFAULT true,
    enabled         boolean NOT NULL DEFAULT true,
    secret_sealed   bytea NOT NULL,
    created_by      bigint,
    version         bigint NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX webhooks_account_id ON webhooks (account_id);
CREATE TABLE webhook_deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id      bigint NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id        text NOT NULL,
    event_type      text NOT NULL,
    payload         text NOT NULL,
    status          text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    last_status     integer NOT NULL DEFAULT 0,
    last_error      text NOT NULL DEFAULT '',
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
