-- Grouped usage shows each lease's host name and vCPU. Joining hosts for
-- them hashed every host of the account on each query (4-6 ms of 10 at
-- 10 000 hosts), so a lease keeps the values its host had when it was
-- granted. Hosts record when their name or vCPU last changed; a query takes
-- the values of hosts changed in the last day from hosts (a few rows), and
-- the leader brings the copies of those hosts' leases up to date. The
-- leader also fills, in batches, the copies of leases that have none (those
-- granted before this migration, or by a replica not yet upgraded), so that
-- this migration does not rewrite the table while it holds its lock.

-- +goose Up
ALTER TABLE leases ADD COLUMN host_name TEXT;
ALTER TABLE leases ADD COLUMN host_vcpu BIGINT;
ALTER TABLE hosts ADD COLUMN changed_at TIMESTAMPTZ;
CREATE INDEX hosts_changed ON hosts (changed_at) WHERE changed_at IS NOT NULL;
CREATE INDEX leases_without_host_copy ON leases (id) WHERE host_name IS NULL;

-- +goose Down
DROP INDEX leases_without_host_copy;
DROP INDEX hosts_changed;
ALTER TABLE hosts DROP COLUMN changed_at;
ALTER TABLE leases DROP COLUMN host_vcpu;
ALTER TABLE leases DROP COLUMN host_name;
