-- Each rolled-up day keeps, per pool and agent type, how many distinct
-- hosts and applications had a lease: a one-day window answers its unique
-- counts from its row instead of counting the presence rows (tens of
-- thousands on a large estate). Days rolled up before have -1 and are
-- counted from the presence rows as before.
--
-- Every day's rollup sets a bit in each presence row of the hosts seen
-- that day; with room left on each page those updates are HOT and the
-- old versions are pruned as pages are read, so the table does not fill
-- with dead rows while a long history is first rolled up.

-- +goose Up
ALTER TABLE analytics_days ADD COLUMN hosts BIGINT NOT NULL DEFAULT -1;
ALTER TABLE analytics_days ADD COLUMN apps BIGINT NOT NULL DEFAULT -1;
ALTER TABLE analytics_presence SET (fillfactor = 50);

-- +goose Down
ALTER TABLE analytics_presence RESET (fillfactor);
ALTER TABLE analytics_days DROP COLUMN apps;
ALTER TABLE analytics_days DROP COLUMN hosts;
