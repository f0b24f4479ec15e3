-- Federated credentials: a client trusts the tokens an external OpenID
-- Connect issuer signs for one subject (workload identity federation).
-- audiences is a JSON array of strings, claims a JSON object of string
-- values. They go with their client.
CREATE TABLE federated_credentials (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id  INTEGER NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    issuer     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    audiences  TEXT NOT NULL,
    claims     TEXT NOT NULL DEFAULT '{}',
    created_by INTEGER,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (client_id, name)
);
CREATE INDEX federated_credentials_client_id ON federated_credentials (client_id);
