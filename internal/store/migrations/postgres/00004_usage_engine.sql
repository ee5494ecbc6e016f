-- The usage engine: leases, host charges, pool counters, events (issue: usage engine).

-- +goose Up
-- Bumped by every write that holds the account lock (allocations, licences,
-- rules): the engine caches an account's pools per revision.
ALTER TABLE accounts ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;

-- One row per pool (allocation or rule): the row every check-and-charge of
-- that pool locks.
CREATE TABLE pools (
    id          TEXT PRIMARY KEY,
    account_id  BIGINT NOT NULL,
    kind        TEXT NOT NULL
);

-- Units (allocations: per package) or licences (rules: per module) in use.
CREATE TABLE pool_usage (
    pool_id     TEXT NOT NULL,
    item        TEXT NOT NULL,
    used        BIGINT NOT NULL,
    PRIMARY KEY (pool_id, item)
);

-- Hosts the engine has seen: vCPU (null = unknown) and when first seen
-- (the fallback delay counts from it).
CREATE TABLE hosts (
    account_id     BIGINT NOT NULL,
    host_id        TEXT NOT NULL,
    name           TEXT NOT NULL,
    vcpu           BIGINT,
    first_seen_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account_id, host_id)
);

CREATE TABLE applications (
    account_id  BIGINT NOT NULL,
    app_id      BIGINT NOT NULL,
    name        TEXT NOT NULL,
    PRIMARY KEY (account_id, app_id)
);

-- A host is charged once per allocation, in one package.
CREATE TABLE host_charges (
    pool_id     TEXT NOT NULL,
    host_id     TEXT NOT NULL,
    account_id  BIGINT NOT NULL,
    package     TEXT NOT NULL,
    units       BIGINT NOT NULL,
    fallback    BOOLEAN NOT NULL,
    charged_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (pool_id, host_id)
);

CREATE TABLE leases (
    id             TEXT PRIMARY KEY,
    account_id     BIGINT NOT NULL,
    agent_id       TEXT NOT NULL,
    agent_type     TEXT NOT NULL,
    agent_version  TEXT,
    pool_kind      TEXT NOT NULL,
    pool_id        TEXT NOT NULL,
    license_key    TEXT NOT NULL,
    package        TEXT NOT NULL,
    units_charged  BIGINT NOT NULL,
    host_id        TEXT NOT NULL,
    app_id         BIGINT,
    app_name       TEXT,
    node           TEXT,
    container_id   TEXT,
    granted_at     TIMESTAMPTZ NOT NULL,
    heartbeat_at   TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    revoked_code   TEXT,
    UNIQUE (account_id, agent_id)
);
CREATE INDEX leases_expires ON leases (expires_at);
CREATE INDEX leases_pool_host ON leases (pool_id, host_id);
CREATE INDEX leases_account_app ON leases (account_id, app_id);
CREATE INDEX leases_account_host ON leases (account_id, host_id);

-- Append-only: grants, changes, releases, expiries, pre-emptions, refusals.
CREATE TABLE usage_events (
    id             BIGSERIAL PRIMARY KEY,
    at             TIMESTAMPTZ NOT NULL,
    account_id     BIGINT NOT NULL,
    kind           TEXT NOT NULL,
    pool_kind      TEXT,
    pool_id        TEXT,
    package        TEXT,
    units          BIGINT NOT NULL,
    agent_id       TEXT,
    agent_type     TEXT,
    agent_version  TEXT,
    host_id        TEXT,
    app_id         BIGINT,
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
