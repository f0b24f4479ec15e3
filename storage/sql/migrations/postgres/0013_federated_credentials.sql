-- Federated credentials: a client trusts the tokens an external OpenID
-- Connect issuer signs for one subject (workload identity federation).
-- audiences is a JSON array of strings, claims a JSON object of string
-- values. They go with their client.
CREATE TABLE federated_credentials (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id  bigint NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    name       text NOT NULL,
    issuer     text NOT NULL,
    subject    text NOT NULL,
    audiences  text NOT NULL,
    claims     text NOT NULL DEFAULT '{}',
    created_by bigint,
    created_at timestamptz NOT NULL,
    UNIQUE (client_id, name)
);
CREATE INDEX federated_credentials_client_id ON federated_credentials (client_id);
