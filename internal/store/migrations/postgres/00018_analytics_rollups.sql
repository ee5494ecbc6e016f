-- Usage analytics (API.md §7) read whole UTC days from rollups the leader
-- keeps, and sweep raw events only at the window's partial edges.
-- Days are counted since 1970-01-01 (UTC); times are Unix nanoseconds.

-- +goose Up
-- Days of an account before through_day are rolled up; analytics_open
-- holds the leases open at the start of open_day (through_day when it is
-- current). Every reopen (a late expiry) moves gen, so that a day built
-- meanwhile is not saved.
CREATE TABLE analytics_state (
    account_id   BIGINT PRIMARY KEY,
    through_day  BIGINT NOT NULL,
    open_day     BIGINT NOT NULL,
    gen          BIGINT NOT NULL
);
-- The leases open at the start of the account's open_day: each one's last
-- grant or package change before it, so that a window starting then need
-- not look for them among the events.
CREATE TABLE analytics_open (
    account_id     BIGINT NOT NULL,
    agent_id       TEXT NOT NULL,
    since          BIGINT NOT NULL,
    pool_id        TEXT NOT NULL,
    package        TEXT NOT NULL,
    agent_type     TEXT NOT NULL,
    agent_version  TEXT,
    host_id        TEXT NOT NULL,
    app_id         BIGINT,
    app_name       TEXT,
    PRIMARY KEY (account_id, agent_id)
);
-- Per day and agent type, for all pools (pool_id '') and for each pool:
-- lease seconds, the highest concurrency, its first time and the packages
-- then, and the packages used (';'-joined).
CREATE TABLE analytics_days (
    account_id     BIGINT NOT NULL,
    day            BIGINT NOT NULL,
    pool_id        TEXT NOT NULL,
    agent_type     TEXT NOT NULL,
    seconds        BIGINT NOT NULL,
    peak           BIGINT NOT NULL,
    peak_at        BIGINT NOT NULL,
    peak_packages  TEXT NOT NULL,
    packages       TEXT NOT NULL,
    PRIMARY KEY (account_id, pool_id, day, agent_type)
);
-- The hosts (kind 'h') and applications (kind 'a') of each agent type and
-- pool, one bit per day in blocks of 64 days (block = day / 64).
CREATE TABLE analytics_presence (
    account_id  BIGINT NOT NULL,
    pool_id     TEXT NOT NULL,
    block       BIGINT NOT NULL,
    agent_type  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    item        TEXT NOT NULL,
    bits        BIGINT NOT NULL,
    PRIMARY KEY (account_id, pool_id, block, agent_type, kind, item)
);
CREATE INDEX analytics_presence_account_block ON analytics_presence (account_id, block);
-- Per day, pool, agent type and version, host and application: lease
-- seconds and packages.
CREATE TABLE analytics_leases (
    account_id     BIGINT NOT NULL,
    day            BIGINT NOT NULL,
    pool_id        TEXT NOT NULL,
    agent_type     TEXT NOT NULL,
    agent_version  TEXT NOT NULL,
    host_id        TEXT NOT NULL,
    app_key        TEXT NOT NULL,
    app_id         BIGINT,
    app_name       TEXT,
    seconds        BIGINT NOT NULL,
    packages       TEXT NOT NULL,
    PRIMARY KEY (account_id, day, pool_id, agent_type, agent_version, host_id, app_key)
);

-- +goose Down
DROP TABLE analytics_leases;
DROP TABLE analytics_presence;
DROP TABLE analytics_days;
DROP TABLE analytics_open;
DROP TABLE analytics_state;
