-- An allocation may be disabled (real AppDynamics allocations carry the
-- flag): it refuses new registrations and keeps its running leases.

-- +goose Up
ALTER TABLE allocations ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE allocations DROP COLUMN disabled;
