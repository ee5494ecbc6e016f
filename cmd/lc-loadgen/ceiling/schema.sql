-- From the pg-ceiling benchmark (the database's own rate for the licensing hot path): lc-loadgen runs it with pgbench on the service's PostgreSQL.
-- throwaway schema shaped like the licensing hot path
DROP TABLE IF EXISTS lease; DROP TABLE IF EXISTS alloc;
CREATE TABLE alloc (
  id   integer PRIMARY KEY,
  used integer NOT NULL DEFAULT 0,
  lim  integer NOT NULL
);
CREATE TABLE lease (
  agent       uuid PRIMARY KEY,
  alloc_id    integer NOT NULL REFERENCES alloc(id),
  acquired_at timestamptz NOT NULL DEFAULT now(),
  last_seen   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lease_alloc_idx ON lease(alloc_id);
-- 100 allocations with a limit that is never reached (we measure the success path)
INSERT INTO alloc(id, used, lim) SELECT g, 0, 2000000000 FROM generate_series(1,100) g;
-- 100k existing agents (ids 1..100000) so heartbeats hit the UPDATE arm of the upsert
INSERT INTO lease(agent, alloc_id) SELECT md5(g::text)::uuid, 1 + g % 100 FROM generate_series(1,100000) g;
VACUUM ANALYZE alloc; VACUUM ANALYZE lease;
