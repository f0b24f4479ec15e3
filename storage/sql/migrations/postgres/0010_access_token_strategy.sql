-- The format of a client's access tokens: opaque (what every existing client
-- keeps) or jwt (RFC 9068, signed with the keys of signing_keys).
ALTER TABLE clients ADD COLUMN access_token_strategy TEXT NOT NULL DEFAULT 'opaque'
    CHECK (access_token_strategy IN ('opaque', 'jwt'));
