-- The leases open at the start of every rolled-up day still within the
-- event retention, each day's set in one row (encoded by the store: a
-- string table and one short record per lease). Only the last three days'
-- sets were kept before, one row per lease: a window starting inside an
-- older day looked for each agent's last event before it, one index probe
-- per agent (seconds on a large estate). The old sets are not carried
-- over; the next rollup starts a new run of saved days.

-- +goose Up
CREATE TABLE analytics_open_sets (
    account_id  BIGINT NOT NULL,
    day         BIGINT NOT NULL,
    leases      BLOB NOT NULL,
    PRIMARY KEY (account_id, day)
);
DROP TABLE analytics_open;
UPDATE analytics_state SET open_first = -1;

-- +goose Down
DROP TABLE analytics_open_sets;
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
UPDATE analytics_state SET open_first = -1;
