-- Registration requests were counted in one row per account and month, so
-- that the batches of an account's two registration queues (which lock
-- disjoint pools and would otherwise run side by side) queued on that one
-- row lock until the other committed. Each queue now counts in a row of
-- its own; the report sums them.

-- +goose Up
ALTER TABLE registration_counters ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE registration_counters DROP CONSTRAINT registration_counters_pkey;
ALTER TABLE registration_counters ADD PRIMARY KEY (account_id, month, shard);

-- +goose Down
CREATE TABLE registration_counters_one AS
    SELECT account_id, month, SUM(request_count)::BIGINT AS request_count
    FROM registration_counters GROUP BY account_id, month;
DROP TABLE registration_counters;
ALTER TABLE registration_counters_one RENAME TO registration_counters;
ALTER TABLE registration_counters ALTER COLUMN account_id SET NOT NULL,
    ALTER COLUMN month SET NOT NULL, ALTER COLUMN request_count SET NOT NULL;
ALTER TABLE registration_counters ADD PRIMARY KEY (account_id, month);
