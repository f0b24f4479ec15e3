-- Token reuse, per client and off by default: a client_credentials request
-- for the same scopes while the client's token still has most of its life
-- left gets that token back instead of a new one.
ALTER TABLE clients ADD COLUMN reuse_tokens boolean NOT NULL DEFAULT false;
