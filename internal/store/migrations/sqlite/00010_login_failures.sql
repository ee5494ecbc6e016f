-- Failed logins, shared by every replica (API.md §0): one row per subject
-- (a principal at one client address, or an address), counted in a fixed
-- window that starts at the first failure. Rows whose window has passed
-- are pruned as failures are recorded.

-- +goose Up
CREATE TABLE login_failures (
    subject       TEXT PRIMARY KEY,
    window_start  BIGINT NOT NULL,
    failures      BIGINT NOT NULL
);
CREATE INDEX login_failures_window ON login_failures (window_start);

-- +goose Down
DROP TABLE login_failures;
