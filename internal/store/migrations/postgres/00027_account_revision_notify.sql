-- Every change of an account's revision (a licence, allocation, rule or
-- webhook write; the account's removal) is announced on the channel
-- lc_account_revisions with the account's id. PostgreSQL delivers it to
-- every listening replica when the transaction commits, and each replica's
-- revision cache forgets the account (store/revisions.go): /info need not
-- read the revision on every call. A trigger rather than the writers
-- themselves, so that no writer (nor an operator's SQL) can miss it.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION lc_notify_account_revision() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('lc_account_revisions', OLD.id::text);
        RETURN OLD;
    END IF;
    PERFORM pg_notify('lc_account_revisions', NEW.id::text);
    RETURN NEW;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER accounts_revision_notify
    AFTER UPDATE OF revision OR DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION lc_notify_account_revision();

-- +goose Down
DROP TRIGGER accounts_revision_notify ON accounts;
DROP FUNCTION lc_notify_account_revision();
