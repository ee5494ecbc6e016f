-- Event retention deletes the oldest events in batches: it finds them by
-- time across accounts. Built concurrently, so that a large event table
-- keeps taking registrations while the index is made.

-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY IF NOT EXISTS usage_events_at ON usage_events (at);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS usage_events_at;
