-- Accounts, users, API clients and server secrets (issue: service foundation).
-- Same version history as ../postgres; only the types differ.

-- +goose Up
CREATE TABLE accounts (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    global_id   TEXT NOT NULL UNIQUE,
    access_key  TEXT NOT NULL UNIQUE,
    created_at  DATETIME NOT NULL
);

CREATE TABLE users (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id     INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    role           TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    created_at     DATETIME NOT NULL,
    updated_at     DATETIME NOT NULL,
    UNIQUE (account_id, name)
);

CREATE TABLE api_clients (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id              INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name                    TEXT NOT NULL,
    description             TEXT NOT NULL DEFAULT '',
    role                    TEXT NOT NULL,
    secret_hash             TEXT NOT NULL,
    token_lifetime_seconds  INTEGER NOT NULL,
    created_at              DATETIME NOT NULL,
    UNIQUE (account_id, name)
);

CREATE TABLE secrets (
    name   TEXT PRIMARY KEY,
    value  BLOB NOT NULL
);

-- +goose Down
DROP TABLE secrets;
DROP TABLE api_clients;
DROP TABLE users;
DROP TABLE accounts;
