-- Clients whose access tokens must be bound to a DPoP key (RFC 9449 §5.2's
-- dpop_bound_access_tokens): every existing client keeps Bearer tokens.
ALTER TABLE clients ADD COLUMN dpop_bound_access_tokens boolean NOT NULL DEFAULT false;
