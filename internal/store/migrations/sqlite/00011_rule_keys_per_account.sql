-- A rule's access_key is unique within its account only: another account's
-- keys are none of this one's business, and a global constraint told one
-- tenant that another used a key (ACCESS_KEY_TAKEN). SQLite cannot drop a
-- column's UNIQUE constraint: the table is rebuilt, with foreign keys off
-- so that dropping the old table does not cascade to the rule versions.

-- +goose NO TRANSACTION
-- +goose Up
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE license_rules_new (
    id            TEXT PRIMARY KEY,
    account_id    INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    version       INTEGER NOT NULL,
    name          TEXT NOT NULL,
    description   TEXT,
    enabled       BOOLEAN NOT NULL,
    access_key    TEXT NOT NULL,
    constraints   TEXT NOT NULL,
    entitlements  TEXT NOT NULL,
    peak_usage    INTEGER,
    changed_by    TEXT NOT NULL,
    changed_at    DATETIME NOT NULL,
    created_at    DATETIME NOT NULL,
    UNIQUE (account_id, name),
    UNIQUE (account_id, access_key)
);
INSERT INTO license_rules_new SELECT id, account_id, version, name, description, enabled, access_key,
    constraints, entitlements, peak_usage, changed_by, changed_at, created_at FROM license_rules;
DROP TABLE license_rules;
ALTER TABLE license_rules_new RENAME TO license_rules;
COMMIT;
PRAGMA foreign_keys = ON;

-- +goose Down
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE license_rules_old (
    id            TEXT PRIMARY KEY,
    account_id    INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    version       INTEGER NOT NULL,
    name          TEXT NOT NULL,
    description   TEXT,
    enabled       BOOLEAN NOT NULL,
    access_key    TEXT NOT NULL UNIQUE,
    constraints   TEXT NOT NULL,
    entitlements  TEXT NOT NULL,
    peak_usage    INTEGER,
    changed_by    TEXT NOT NULL,
    changed_at    DATETIME NOT NULL,
    created_at    DATETIME NOT NULL,
    UNIQUE (account_id, name)
);
INSERT INTO license_rules_old SELECT * FROM license_rules;
DROP TABLE license_rules;
ALTER TABLE license_rules_old RENAME TO license_rules;
COMMIT;
PRAGMA foreign_keys = ON;
