-- PostgreSQL only (room for HOT updates of heartbeats). The file exists so
-- that both stores share one schema history.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
