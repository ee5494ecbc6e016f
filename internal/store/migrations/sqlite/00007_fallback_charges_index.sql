-- Grouped usage joins each lease to its host's charge only when that charge
-- is in fallback units. Without an index the planner scanned every charge
-- of every account to find the few fallback ones, on each query.

-- +goose Up
CREATE INDEX host_charges_fallback ON host_charges (pool_id, host_id) WHERE fallback;

-- +goose Down
DROP INDEX host_charges_fallback;
