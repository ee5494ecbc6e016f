-- The usage engine: leases, host charges, pool counters, events (issue: usage engine).

-- +goose Up
-- Bumped by every write that holds the account lock (allocations, licences,
-- rules): the engine caches an account's pools per revision.
ALTER TABLE accounts ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;

-- One row per pool (allocation or rule): the row every check-and-charge of
-- that pool locks.
CREATE TABLE pools (
    id          TEXT PRIMARY KEY,
    account_id  INTEGER NOT NULL,
    kind        TEXT NOT NULL
);

-- Units (allocations: per package) or licences (rules: per module) in use.
CREATE TABLE pool_usage (
    pool_id     TEXT NOT NULL,
    item        TEXT NOT NULL,
    used        INTEGER NOT NULL,
    PRIMARY KEY (pool_id, item)
);

-- Hosts the engine has seen: vCPU (null = unknown) and when first seen
-- (the fallback delay counts from it).
CREATE TABLE hosts (
    account_id     INTEGER NOT NULL,
    host_id        TEXT NOT NULL,
    name           TEXT NOT NULL,
    vcpu           INTEGER,
    first_seen_at  DATETIME NOT NULL,
    PRIMARY KEY (account_id, host_id)
);

CREATE TABLE applications (
    account_id  INTEGER NOT NULL,
    app_id      INTEGER NOT NULL,
    name        TEXT NOT NULL,
    PRIMARY KEY (account_id, app_id)
);

-- A host is charged once per allocation, in one package.
CREATE TABLE host_charges (
    pool_id     TEXT NOT NULL,
    host_id     TEXT NOT NULL,
    account_id  INTEGER NOT NULL,
    package     TEXT NOT NULL,
    units       INTEGER NOT NULL,
    fallback    BOOLEAN NOT NULL,
    charged_at  DATETIME NOT NULL,
    PRIMARY KEY (pool_id, host_id)
);

CREATE TABLE leases (
    id             TEXT PRIMARY KEY,
    account_id     INTEGER NOT NULL,
    agent_id       TEXT NOT NULL,
    agent_type     TEXT NOT NULL,
    agent_version  TEXT,
    pool_kind      TEXT NOT NULL,
    pool_id        TEXT NOT NULL,
    license_key    TEXT NOT NULL,
    package        TEXT NOT NULL,
    units_charged  INTEGER NOT NULL,
    host_id        TEXT NOT NULL,
    app_id         INTEGER,
    app_name       TEXT,
    node           TEXT,
    container_id   TEXT,
    granted_at     DATETIME NOT NULL,
    heartbeat_at   DATETIME NOT NULL,
    expires_at     DATETIME NOT NULL,
    revoked_code   TEXT,
    UNIQUE (account_id, agent_id)
);
CREATE INDEX leases_expires ON leases (expires_at);
CREATE INDEX leases_pool_host ON leases (pool_id, host_id);
CREATE INDEX leases_account_app ON leases (account_id, app_id);
CREATE INDEX leases_account_host ON leases (account_id, host_id);

-- Append-only: grants, changes, releases, expiries, pre-emptions, refusals.
CREATE TABLE usage_events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    at             DATETIME NOT NULL,
    account_id     INTEGER NOT NULL,
    kind           TEXT NOT NULL,
    pool_kind      TEXT,
    pool_id        TEXT,
    package        TEXT,
    units          INTEGER NOT NULL,
    agent_id       TEXT,
    agent_type     TEXT,
    agent_version  TEXT,
    host_id        TEXT,
    app_id         INTEGER,
    app_name       TEXT,
    reason         TEXT
);
CREATE INDEX usage_events_account_at ON usage_events (account_id, at);

-- +goose Down
DROP TABLE usage_events;
DROP TABLE leases;
DROP TABLE host_charges;
DROP TABLE applications;
DROP TABLE hosts;
DROP TABLE pool_usage;
DROP TABLE pools;
ALTER TABLE accounts DROP COLUMN revision;
