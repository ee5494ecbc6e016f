-- Licence documents and allocations (issue: licences and allocations).

-- +goose Up
CREATE TABLE licenses (
    id          TEXT PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    document    TEXT NOT NULL,
    builtin     BOOLEAN NOT NULL DEFAULT 0,
    payload     TEXT NOT NULL,
    created_at  DATETIME NOT NULL,
    updated_at  DATETIME NOT NULL
);
CREATE INDEX licenses_account_updated ON licenses (account_id, updated_at DESC);

CREATE TABLE allocations (
    id                      TEXT PRIMARY KEY,
    account_id              INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name                    TEXT NOT NULL,
    license_key             TEXT NOT NULL,
    fallback_mode_delay     BOOLEAN NOT NULL,
    machine_agent_priority  BOOLEAN NOT NULL,
    is_default              BOOLEAN NOT NULL DEFAULT 0,
    filters                 TEXT NOT NULL,
    limits                  TEXT NOT NULL,
    tags                    TEXT NOT NULL,
    created_at              DATETIME NOT NULL,
    updated_at              DATETIME NOT NULL,
    UNIQUE (account_id, name),
    UNIQUE (account_id, license_key)
);

-- +goose Down
DROP TABLE allocations;
DROP TABLE licenses;
