-- Heartbeats rewrite expires_at on every lease many times a minute. Without
-- an index on it and with free room in each page, PostgreSQL renews a lease
-- in place (a HOT update) instead of writing new index entries; the reaper
-- scans the table once a second instead, which is cheap next to that.

-- +goose Up
DROP INDEX leases_expires;
ALTER TABLE leases SET (fillfactor = 70);

-- +goose Down
ALTER TABLE leases RESET (fillfactor);
CREATE INDEX leases_expires ON leases (expires_at);
