-- Found by an outside security review.

-- Revoking an account subtree's tokens without scanning the token store, as
-- users.tokens_valid_after does for one user: a token of the account or of
-- a descendant, issued at or before the latest tokens_valid_after on the
-- way to the root, is inactive. Set when the account is disabled and when
-- it is enabled again, so that re-enabling revives no token, not even one
-- minted while it was disabled; NULL revokes nothing.
ALTER TABLE accounts ADD COLUMN tokens_valid_after timestamptz;

-- When a credential was last switched on: the unused sweep counts its
-- grace period from the latest of creation, last use and this, so that
-- enabling a credential the sweep disabled sticks; NULL when never
-- re-enabled.
ALTER TABLE clients ADD COLUMN enabled_at timestamptz;

-- Usernames are unique and signed in with regardless of letter case
-- (usernames are ASCII: lower() folds them the same in both databases).
-- Existing names that differ only by case: the oldest user keeps the name;
-- each later one is disabled, its tokens revoked, and renamed to
-- <lower-cased name>~<id> ('~' is never part of a valid username, so the
-- new name cannot be taken and cannot be signed in with), with an audit
-- event saying so. An admin renames and re-enables it after checking who it
-- is: the later of two look-alike names is the likelier impostor.
INSERT INTO audit_events (occurred_at, account_id, action, target_type, target_id, outcome, detail)
SELECT CURRENT_TIMESTAMP, u.account_id, 'user.case_collision', 'user', u.id, 'success',
    'username ' || u.username || ' differs only by case from user ' ||
        (SELECT min(o.id) FROM users o WHERE lower(o.username) = lower(u.username)) ||
        ': disabled and renamed to ' || lower(u.username) || '~' || u.id
FROM users u
WHERE EXISTS (SELECT 1 FROM users o WHERE lower(o.username) = lower(u.username) AND o.id < u.id);

UPDATE users SET
    status = 'disabled',
    tokens_valid_after = CURRENT_TIMESTAMP,
    username = lower(username) || '~' || id,
    version = version + 1
WHERE EXISTS (SELECT 1 FROM users o WHERE lower(o.username) = lower(users.username) AND o.id < users.id);

CREATE UNIQUE INDEX users_username_folded_idx ON users (lower(username));
