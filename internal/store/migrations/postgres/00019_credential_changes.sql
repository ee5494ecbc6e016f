-- Credential changes (a password, a role, a deleted or rotated API client)
-- reach every process of the embedded store through this table: the CLI
-- writes a row in its transaction and the serving process polls it.
-- PostgreSQL uses LISTEN/NOTIFY instead and leaves the table empty.

-- +goose Up
CREATE TABLE credential_changes (
    id       BIGSERIAL PRIMARY KEY,
    payload  TEXT NOT NULL,
    at       BIGINT NOT NULL
);

-- +goose Down
DROP TABLE credential_changes;
