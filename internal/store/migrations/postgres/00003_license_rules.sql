-- Versioned licence rules and their history (issue: licence rules).

-- +goose Up
CREATE TABLE license_rules (
    id            TEXT PRIMARY KEY,
    account_id    BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    version       BIGINT NOT NULL,
    name          TEXT NOT NULL,
    description   TEXT,
    enabled       BOOLEAN NOT NULL,
    access_key    TEXT NOT NULL UNIQUE,
    constraints   TEXT NOT NULL,
    entitlements  TEXT NOT NULL,
    peak_usage    BIGINT,
    changed_by    TEXT NOT NULL,
    changed_at    TIMESTAMPTZ NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    UNIQUE (account_id, name)
);

-- Superseded versions; the current one lives in license_rules.
CREATE TABLE license_rule_versions (
    rule_id       TEXT NOT NULL REFERENCES license_rules (id) ON DELETE CASCADE,
    version       BIGINT NOT NULL,
    account_id    BIGINT NOT NULL,
    name          TEXT NOT NULL,
    description   TEXT,
    enabled       BOOLEAN NOT NULL,
    access_key    TEXT NOT NULL,
    constraints   TEXT NOT NULL,
    entitlements  TEXT NOT NULL,
    peak_usage    BIGINT,
    changed_by    TEXT NOT NULL,
    changed_at    TIMESTAMPTZ NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (rule_id, version)
);

-- +goose Down
DROP TABLE license_rule_versions;
DROP TABLE license_rules;
