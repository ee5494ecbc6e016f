-- Refusals (analytics rejections, the webhook digests) are read by time
-- among all of an account's events, which are mostly grants and releases:
-- a 90-day window walked every event of the 90 days. Built concurrently,
-- so that registrations go on while it is made.

-- +goose NO TRANSACTION
-- +goose Up
-- A build that was interrupted left an invalid index behind: made again.
DROP INDEX CONCURRENTLY IF EXISTS usage_events_refused;
CREATE INDEX CONCURRENTLY usage_events_refused ON usage_events (account_id, at) WHERE kind = 'REFUSED';

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS usage_events_refused;
