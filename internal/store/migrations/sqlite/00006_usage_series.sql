-- Usage time series (API.md §6): samples of provisioned and used units per
-- account, pool and package, the registered agents per type, and hourly and
-- daily rollups of both.
--
-- Times are integer Unix seconds rather than timestamps: bucket arithmetic
-- ((at - dateFrom) / granularity) is then the same integer SQL on both
-- stores, and the rows stay small (a year of 5-minute samples is 105 120
-- rows per series).
-- Same version history as ../postgres; only the types differ.

-- +goose Up
-- One row per series: an account (pool_id '' = the account level) or a pool
-- (allocation or rule), and a package (or a rule's module).
CREATE TABLE usage_series (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  INTEGER NOT NULL,
    pool_id     TEXT NOT NULL,
    package     TEXT NOT NULL,
    UNIQUE (account_id, pool_id, package)
);

-- One row per sampling interval that was sampled: the sampler claims the
-- interval here first, in the transaction that writes its samples, so that
-- a second sampler (a restart, a leader hand-over) adds nothing.
CREATE TABLE usage_sample_times (
    at  INTEGER PRIMARY KEY
);

CREATE TABLE usage_samples (
    series_id    INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    provisioned  INTEGER NOT NULL,
    used         INTEGER NOT NULL,
    PRIMARY KEY (series_id, at)
);
CREATE INDEX usage_samples_at ON usage_samples (at);

-- Agents registered per type at a sample; types without agents have no row
-- (the read model counts them as 0).
CREATE TABLE usage_sample_agents (
    series_id   INTEGER NOT NULL,
    agent_type  TEXT NOT NULL,
    at          INTEGER NOT NULL,
    registered  INTEGER NOT NULL,
    PRIMARY KEY (series_id, at, agent_type)
);
CREATE INDEX usage_sample_agents_at ON usage_sample_agents (at);

-- Rollups: resolution 3600 (hourly) or 86400 (daily), bucket = the start of
-- the UTC hour or day. Sums and counts, not averages, so that buckets merge
-- exactly.
CREATE TABLE usage_rollups (
    resolution   INTEGER NOT NULL,
    series_id    INTEGER NOT NULL,
    bucket       INTEGER NOT NULL,
    prov_min     INTEGER NOT NULL,
    prov_max     INTEGER NOT NULL,
    prov_sum     INTEGER NOT NULL,
    used_min     INTEGER NOT NULL,
    used_max     INTEGER NOT NULL,
    used_sum     INTEGER NOT NULL,
    n            INTEGER NOT NULL,
    PRIMARY KEY (resolution, series_id, bucket)
);
CREATE INDEX usage_rollups_bucket ON usage_rollups (bucket);

-- n counts the samples at which the type had agents.
CREATE TABLE usage_agent_rollups (
    resolution  INTEGER NOT NULL,
    series_id   INTEGER NOT NULL,
    agent_type  TEXT NOT NULL,
    bucket      INTEGER NOT NULL,
    reg_min     INTEGER NOT NULL,
    reg_max     INTEGER NOT NULL,
    reg_sum     INTEGER NOT NULL,
    n           INTEGER NOT NULL,
    PRIMARY KEY (resolution, series_id, bucket, agent_type)
);
CREATE INDEX usage_agent_rollups_bucket ON usage_agent_rollups (bucket);

-- +goose Down
DROP TABLE usage_agent_rollups;
DROP TABLE usage_rollups;
DROP TABLE usage_sample_agents;
DROP TABLE usage_samples;
DROP TABLE usage_sample_times;
DROP TABLE usage_series;
