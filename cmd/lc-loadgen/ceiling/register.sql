-- From the pg-ceiling benchmark (the database's own rate for the licensing hot path): lc-loadgen runs it with pgbench on the service's PostgreSQL.
-- (a) lease registration: conditional counter increment + lease upsert, one transaction
\set aid random(1, 100)
\set agent random(100001, 100000000)
BEGIN;
UPDATE alloc SET used = used + 1 WHERE id = :aid AND used + 1 <= lim RETURNING used;
INSERT INTO lease(agent, alloc_id, acquired_at, last_seen) VALUES (md5(:agent::text)::uuid, :aid, now(), now()) ON CONFLICT (agent) DO UPDATE SET last_seen = now();
COMMIT;
