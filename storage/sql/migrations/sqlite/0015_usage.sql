-- Usage counts rolled up from the per-minute counters: one row per bucket
-- (ts: its start, unix seconds, UTC), credential, rate class and outcome.
-- root_id is the root account of the credential's tree, account_id the
-- credential's account when the row was written (an account's usage is the
-- rows of its subtree's accounts, deleted credentials included).
CREATE TABLE usage_minutes (
    ts BIGINT NOT NULL,
    credential_id BIGINT NOT NULL,
    rate_class TEXT NOT NULL,
    outcome TEXT NOT NULL,
    root_id BIGINT NOT NULL,
    account_id BIGINT NOT NULL,
    count BIGINT NOT NULL CHECK (count >= 0),
    PRIMARY KEY (ts, credential_id, rate_class, outcome)
);
CREATE INDEX usage_minutes_credential ON usage_minutes (credential_id, ts);
CREATE INDEX usage_minutes_account ON usage_minutes (account_id, ts);
CREATE TABLE usage_hours (
    ts BIGINT NOT NULL,
    credential_id BIGINT NOT NULL,
    rate_class TEXT NOT NULL,
    outcome TEXT NOT NULL,
    root_id BIGINT NOT NULL,
    account_id BIGINT NOT NULL,
    count BIGINT NOT NULL CHECK (count >= 0),
    PRIMARY KEY (ts, credential_id, rate_class, outcome)
);
CREATE INDEX usage_hours_credential ON usage_hours (credential_id, ts);
CREATE INDEX usage_hours_account ON usage_hours (account_id, ts);
CREATE TABLE usage_days (
    ts BIGINT NOT NULL,
    credential_id BIGINT NOT NULL,
    rate_class TEXT NOT NULL,
    outcome TEXT NOT NULL,
    root_id BIGINT NOT NULL,
    account_id BIGINT NOT NULL,
    count BIGINT NOT NULL CHECK (count >= 0),
    PRIMARY KEY (ts, credential_id, rate_class, outcome)
);
CREATE INDEX usage_days_credential ON usage_days (credential_id, ts);
CREATE INDEX usage_days_account ON usage_days (account_id, ts);
-- The roll-up's progress: the last minute (unix seconds) whose rows are all
-- in usage_minutes, moved in the same transaction as that minute's rows.
CREATE TABLE usage_rollup (
    name TEXT PRIMARY KEY,
    minute BIGINT NOT NULL
);
