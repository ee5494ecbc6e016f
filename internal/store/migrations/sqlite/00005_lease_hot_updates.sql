-- PostgreSQL only (HOT updates of heartbeats); SQLite keeps its index on
-- expires_at. The file exists so that both stores share one schema history.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
