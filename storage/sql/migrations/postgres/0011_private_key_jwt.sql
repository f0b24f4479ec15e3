-- How a client authenticates (RFC 7591 names): with a secret (every existing
-- client) or with a JWT signed by one of its registered public keys
-- (private_key_jwt), given inline (jwks, a JWK Set's JSON) or by URL
-- (jwks_uri).
ALTER TABLE clients ADD COLUMN token_endpoint_auth_method TEXT NOT NULL DEFAULT 'client_secret_basic'
    CHECK (token_endpoint_auth_method IN ('client_secret_basic', 'client_secret_post', 'private_key_jwt'));
ALTER TABLE clients ADD COLUMN jwks TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN jwks_uri TEXT NOT NULL DEFAULT '';
