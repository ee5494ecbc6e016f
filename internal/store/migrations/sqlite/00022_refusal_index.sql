-- Refusals (analytics rejections, the webhook digests) are read by time
-- among all of an account's events, which are mostly grants and releases.

-- +goose Up
CREATE INDEX IF NOT EXISTS usage_events_refused ON usage_events (account_id, at) WHERE kind = 'REFUSED';

-- +goose Down
DROP INDEX IF EXISTS usage_events_refused;
