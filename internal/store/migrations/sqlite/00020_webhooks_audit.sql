-- Webhooks (API.md §14) and the audit trail (§15). Outbox messages and
-- audit entries are written in the transaction of the change that causes
-- them; the leader fans messages out into deliveries and sends those.

-- +goose Up
CREATE TABLE audit_log (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id     BIGINT NOT NULL,
    at             DATETIME NOT NULL,
    actor_kind     TEXT NOT NULL,
    actor_name     TEXT NOT NULL,
    actor_account  TEXT NOT NULL,
    action         TEXT NOT NULL,
    resource_type  TEXT NOT NULL,
    resource_id    TEXT NOT NULL,
    resource_name  TEXT NOT NULL,
    request_id     TEXT NOT NULL,
    before         TEXT,
    after          TEXT
);
CREATE INDEX audit_log_account ON audit_log (account_id, id);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE TABLE webhooks (
    id          TEXT PRIMARY KEY,
    account_id  BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    url         TEXT NOT NULL,
    events      TEXT NOT NULL,
    thresholds  TEXT NOT NULL,
    enabled     BOOLEAN NOT NULL,
    secret      TEXT NOT NULL,
    created_at  DATETIME NOT NULL,
    updated_at  DATETIME NOT NULL
);
CREATE INDEX webhooks_account ON webhooks (account_id);

CREATE TABLE webhook_outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  BIGINT NOT NULL,
    type        TEXT NOT NULL,
    at          DATETIME NOT NULL,
    data        TEXT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    webhook_id       TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    account_id       BIGINT NOT NULL,
    event_id         TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    body             TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         TEXT NOT NULL,
    next_attempt_at  DATETIME,
    give_up_at       DATETIME NOT NULL,
    created_at       DATETIME NOT NULL,
    updated_at       DATETIME NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries (webhook_id, created_at);
CREATE INDEX webhook_deliveries_updated ON webhook_deliveries (updated_at) WHERE status <> 'pending';

-- Thresholds that fired and have not re-armed, per endpoint, with the
-- limit they fired at (a new limit re-arms them).
CREATE TABLE webhook_fired (
    webhook_id   TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    scope        TEXT NOT NULL,
    package      TEXT NOT NULL,
    threshold    INTEGER NOT NULL,
    limit_units  BIGINT NOT NULL,
    PRIMARY KEY (webhook_id, scope, package, threshold)
);

-- Licence expiry notices sent (or passed), once per licence.
CREATE TABLE webhook_notices (
    account_id  BIGINT NOT NULL,
    license_id  TEXT NOT NULL,
    notice      TEXT NOT NULL,
    at          DATETIME NOT NULL,
    PRIMARY KEY (account_id, license_id, notice)
);

-- Refusal digests: how far each account's refusals were looked at, and
-- per pool and reason what is not yet sent.
CREATE TABLE webhook_digest_cursors (
    account_id  BIGINT PRIMARY KEY,
    through     DATETIME NOT NULL
);
CREATE TABLE webhook_digests (
    account_id  BIGINT NOT NULL,
    pool_id     TEXT NOT NULL,
    reason      TEXT NOT NULL,
    since       DATETIME NOT NULL,
    sent_at     DATETIME,
    pending     BOOLEAN NOT NULL,
    PRIMARY KEY (account_id, pool_id, reason)
);

-- +goose Down
DROP TABLE webhook_digests;
DROP TABLE webhook_digest_cursors;
DROP TABLE webhook_notices;
DROP TABLE webhook_fired;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_outbox;
DROP TABLE webhooks;
DROP TABLE audit_log;
