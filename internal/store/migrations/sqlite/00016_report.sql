-- The licence report (API.md §8): registration requests per account and
-- month, counted in the registration transactions (they outlive event
-- retention), and the instances that served recently.

-- +goose Up
CREATE TABLE registration_counters (
    account_id     BIGINT NOT NULL,
    month          TEXT NOT NULL,
    request_count  BIGINT NOT NULL,
    PRIMARY KEY (account_id, month)
);
CREATE TABLE instances (
    id       TEXT PRIMARY KEY,
    seen_at  BIGINT NOT NULL
);

-- +goose Down
DROP TABLE instances;
DROP TABLE registration_counters;
