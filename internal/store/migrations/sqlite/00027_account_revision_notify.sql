-- Every change of an account's revision (a licence, allocation, rule or
-- webhook write; the account's removal) leaves a row 'account:<id>' in
-- credential_changes, which the serving process polls (store/listen.go):
-- its revision cache then forgets the account (store/revisions.go), also
-- when another process on the same file made the change. PostgreSQL
-- announces the same with NOTIFY.

-- +goose Up
-- +goose StatementBegin
CREATE TRIGGER accounts_revision_change AFTER UPDATE OF revision ON accounts
BEGIN
    INSERT INTO credential_changes (payload, at) VALUES ('account:' || NEW.id, CAST(strftime('%s', 'now') AS INTEGER));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER accounts_removal_change AFTER DELETE ON accounts
BEGIN
    INSERT INTO credential_changes (payload, at) VALUES ('account:' || OLD.id, CAST(strftime('%s', 'now') AS INTEGER));
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER accounts_removal_change;
DROP TRIGGER accounts_revision_change;
