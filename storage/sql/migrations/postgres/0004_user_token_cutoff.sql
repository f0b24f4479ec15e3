-- Revoking a user's tokens without scanning the token store: a token of the
-- user issued at or before tokens_valid_after is inactive. Set when the
-- password is reset or changed and when the user is disabled; NULL revokes
-- nothing.
ALTER TABLE users ADD COLUMN tokens_valid_after timestamptz;
