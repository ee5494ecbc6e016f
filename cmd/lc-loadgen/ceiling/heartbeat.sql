-- From the pg-ceiling benchmark (the database's own rate for the licensing hot path): lc-loadgen runs it with pgbench on the service's PostgreSQL.
-- (b) heartbeat: the upsert alone (autocommit), against 100k existing agents
\set aid random(1, 100)
\set agent random(1, 100000)
INSERT INTO lease(agent, alloc_id, acquired_at, last_seen) VALUES (md5(:agent::text)::uuid, :aid, now(), now()) ON CONFLICT (agent) DO UPDATE SET last_seen = now();
