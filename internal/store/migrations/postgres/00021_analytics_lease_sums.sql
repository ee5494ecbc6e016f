-- Lease usage over long windows: analytics_leases held each day's seconds,
-- so that a 90-day window summed 90 rows per host, application and agent
-- type. It now holds running sums: the seconds and the days with a lease
-- of each package from the start of the day's 32-day epoch (day / 32)
-- through the day, and every row of a day is carried to the next day of
-- its epoch. A window then reads, per epoch it touches, the row of its last
-- day minus that of the day before its first: at most two rows per epoch.
-- The rows are per package, so that the packages of a window are those
-- whose day count grew in it.
--
-- The old rows cannot be split by package: the rollups are cleared, and
-- the leader rolls every day of the kept events up again.

-- +goose Up
DROP TABLE analytics_leases;
-- One row per pool, agent type and version, host, application and package
-- of an account: the rows of analytics_leases refer to it by id, so that
-- a window sums and groups narrow rows. Names are those of the newest day.
CREATE TABLE analytics_lease_keys (
    id             BIGSERIAL PRIMARY KEY,
    account_id     BIGINT NOT NULL,
    pool_id        TEXT NOT NULL,
    agent_type     TEXT NOT NULL,
    agent_version  TEXT NOT NULL,
    host_id        TEXT NOT NULL,
    app_key        TEXT NOT NULL,
    package        TEXT NOT NULL,
    app_id         BIGINT,
    app_name       TEXT,
    UNIQUE (account_id, pool_id, agent_type, agent_version, host_id, app_key, package)
);
CREATE TABLE analytics_leases (
    account_id  BIGINT NOT NULL,
    day         BIGINT NOT NULL,
    key_id      BIGINT NOT NULL,
    seconds     BIGINT NOT NULL,
    days        BIGINT NOT NULL,
    -- the day's own seconds, and 1 when it had a lease: a one-day window
    -- reads them, with no sums to take apart
    day_seconds BIGINT NOT NULL,
    day_used    BIGINT NOT NULL,
    PRIMARY KEY (account_id, day, key_id)
);
-- The leases open at the start of each of the last few days rolled up
-- (open_first through open_day), not only of the last: a window that
-- starts inside one of them replays that day's events from its start
-- instead of looking for each agent's last event before the window.
DROP TABLE analytics_open;
CREATE TABLE analytics_open (
    account_id     BIGINT NOT NULL,
    day            BIGINT NOT NULL,
    agent_id       TEXT NOT NULL,
    since          BIGINT NOT NULL,
    pool_id        TEXT NOT NULL,
    package        TEXT NOT NULL,
    agent_type     TEXT NOT NULL,
    agent_version  TEXT,
    host_id        TEXT NOT NULL,
    app_id         BIGINT,
    app_name       TEXT,
    PRIMARY KEY (account_id, day, agent_id)
);
ALTER TABLE analytics_state ADD COLUMN open_first BIGINT NOT NULL DEFAULT -1;
DELETE FROM analytics_days;
DELETE FROM analytics_presence;
DELETE FROM analytics_state;

-- +goose Down
DROP TABLE analytics_leases;
DROP TABLE analytics_lease_keys;
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
DROP TABLE analytics_open;
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
ALTER TABLE analytics_state DROP COLUMN open_first;
DELETE FROM analytics_days;
DELETE FROM analytics_presence;
DELETE FROM analytics_state;
