-- Per credential: a quota of calls per UTC day or month (NULL: none) and
-- the networks it may be used from (space-separated canonical prefixes;
-- empty: anywhere).
ALTER TABLE clients ADD COLUMN quota_limit BIGINT
    CHECK (quota_limit IS NULL OR quota_limit >= 1);
ALTER TABLE clients ADD COLUMN quota_period TEXT
    CHECK (quota_period IS NULL OR quota_period IN ('day', 'month'));
ALTER TABLE clients ADD COLUMN allowed_cidrs TEXT NOT NULL DEFAULT '';
-- Per account: a budget for the sum of its subtree's traffic (per-second
-- limits per rate class, as clients.rate_limits, and a quota), and what
-- happens to a credential reported as leaked (NULL inherits; the default
-- is to disable it).
ALTER TABLE accounts ADD COLUMN budget_rate_limits TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN budget_quota_limit BIGINT
    CHECK (budget_quota_limit IS NULL OR budget_quota_limit >= 1);
ALTER TABLE accounts ADD COLUMN budget_quota_period TEXT
    CHECK (budget_quota_period IS NULL OR budget_quota_period IN ('day', 'month'));
ALTER TABLE accounts ADD COLUMN leaked_key_action TEXT
    CHECK (leaked_key_action IS NULL OR leaked_key_action IN ('disable', 'notify'));
