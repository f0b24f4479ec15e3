-- Signing keys of JWT access tokens, shared by every instance. The private
-- key is stored sealed (AES-256-GCM under the key-encryption key, the key id
-- as associated data); active_at is unique so that instances rotating at the
-- same moment make one key, not two.
CREATE TABLE signing_keys (
    id         TEXT PRIMARY KEY,
    algorithm  TEXT NOT NULL CHECK (algorithm IN ('ES256', 'RS256', 'EdDSA')),
    sealed     BLOB NOT NULL,
    created_at DATETIME NOT NULL,
    active_at  DATETIME NOT NULL UNIQUE
);
