-- A registration may name the agent's tier (AppDynamics inventory: the
-- applications' tiers and nodes are built from the live leases).

-- +goose Up
ALTER TABLE leases ADD COLUMN tier TEXT;

-- +goose Down
ALTER TABLE leases DROP COLUMN tier;
