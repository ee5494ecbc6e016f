-- From the pg-ceiling benchmark (the database's own rate for the licensing hot path): lc-loadgen runs it with pgbench on the service's PostgreSQL.
-- run before every measurement so runs start from the same state
UPDATE alloc SET used = 0;
DELETE FROM lease WHERE acquired_at > (SELECT min(acquired_at) + interval '1 second' FROM lease);
VACUUM ANALYZE alloc; VACUUM ANALYZE lease;
CHECKPOINT;
