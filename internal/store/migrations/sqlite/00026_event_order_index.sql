-- PostgreSQL only (an index on usage_events (account_id, at, id)): SQLite's
-- index on (account_id, at) already holds its rows in rowid (id) order
-- within each time. The file exists so that both stores share one schema
-- history.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
