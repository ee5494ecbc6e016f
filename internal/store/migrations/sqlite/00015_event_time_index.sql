-- Event retention deletes the oldest events in batches: it finds them by
-- time across accounts.

-- +goose Up
CREATE INDEX IF NOT EXISTS usage_events_at ON usage_events (at);

-- +goose Down
DROP INDEX IF EXISTS usage_events_at;
