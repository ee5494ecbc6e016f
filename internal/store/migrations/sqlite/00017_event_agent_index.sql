-- Analytics of a window find the leases open at its start by each agent's
-- last lifecycle event before it, instead of reading every older event.

-- +goose Up
CREATE INDEX IF NOT EXISTS usage_events_account_agent_at ON usage_events (account_id, agent_id, at);

-- +goose Down
DROP INDEX IF EXISTS usage_events_account_agent_at;
