-- Why a credential is disabled: 'manual' (someone switched it off),
-- 'unused' or 'expired' (the sweeper), 'user' (its owner was disabled);
-- '' while it is active.
ALTER TABLE clients ADD COLUMN disabled_reason text NOT NULL DEFAULT '';

-- Credentials disabled before the column existed get the reason of the
-- last audit event that changed their status (every one of them is
-- audited); one with no such event was switched off by someone.
UPDATE clients SET disabled_reason = 'manual' WHERE status = 'disabled';
UPDATE clients SET disabled_reason = CASE
        WHEN e.action IN ('client.auto_disable', 'key.auto_disable') AND e.detail LIKE 'expired at %' THEN 'expired'
        WHEN e.action IN ('client.auto_disable', 'key.auto_disable') THEN 'unused'
        WHEN e.action IN ('client.disable', 'key.disable') THEN 'user'
        ELSE 'manual'
    END
FROM audit_events e
WHERE clients.status = 'disabled'
    AND e.id = (SELECT max(a.id) FROM audit_events a
        WHERE a.account_id = clients.account_id AND a.target_id = clients.id AND a.target_type = clients.kind
            AND a.outcome = 'success'
            AND (a.action IN ('client.auto_disable', 'key.auto_disable', 'client.disable', 'key.disable')
                OR (a.action IN ('client.update', 'key.update') AND a.detail LIKE '%status%')));
