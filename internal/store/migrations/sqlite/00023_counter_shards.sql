-- Registration requests were counted in one row per account and month;
-- each registration queue of an account now counts in a row of its own
-- (see the PostgreSQL migration), and the report sums them.

-- +goose Up
CREATE TABLE registration_counters_sharded (
    account_id     BIGINT NOT NULL,
    month          TEXT NOT NULL,
    shard          INTEGER NOT NULL DEFAULT 0,
    request_count  BIGINT NOT NULL,
    PRIMARY KEY (account_id, month, shard)
);
INSERT INTO registration_counters_sharded (account_id, month, shard, request_count)
    SELECT account_id, month, 0, request_count FROM registration_counters;
DROP TABLE registration_counters;
ALTER TABLE registration_counters_sharded RENAME TO registration_counters;

-- +goose Down
CREATE TABLE registration_counters_one (
    account_id     BIGINT NOT NULL,
    month          TEXT NOT NULL,
    request_count  BIGINT NOT NULL,
    PRIMARY KEY (account_id, month)
);
INSERT INTO registration_counters_one (account_id, month, request_count)
    SELECT account_id, month, SUM(request_count) FROM registration_counters GROUP BY account_id, month;
DROP TABLE registration_counters;
ALTER TABLE registration_counters_one RENAME TO registration_counters;
