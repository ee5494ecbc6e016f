-- Each rolled-up day keeps, per pool and agent type, how many distinct
-- hosts and applications had a lease: a one-day window answers its unique
-- counts from its row instead of counting the presence rows (tens of
-- thousands on a large estate). Days rolled up before have -1 and are
-- counted from the presence rows as before.

-- +goose Up
ALTER TABLE analytics_days ADD COLUMN hosts BIGINT NOT NULL DEFAULT -1;
ALTER TABLE analytics_days ADD COLUMN apps BIGINT NOT NULL DEFAULT -1;

-- +goose Down
ALTER TABLE analytics_days DROP COLUMN apps;
ALTER TABLE analytics_days DROP COLUMN hosts;
