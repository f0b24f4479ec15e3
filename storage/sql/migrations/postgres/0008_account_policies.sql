-- Account policies: who may manage the account's credentials, and whether
-- creating one asks for the creator's password. NULL inherits from the
-- parent account; where no account on the way to the root sets a value,
-- the default is what Tollgate did before (anyone manages what they own,
-- no password asked), so existing accounts keep behaving as they did.
ALTER TABLE accounts ADD COLUMN require_password_for_new_keys BOOLEAN;
ALTER TABLE accounts ADD COLUMN keys_managed_by TEXT
    CHECK (keys_managed_by IS NULL OR keys_managed_by IN ('anyone', 'admins'));
