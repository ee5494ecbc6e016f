-- A rule's access_key is unique within its account only: another account's
-- keys are none of this one's business, and a global constraint told one
-- tenant that another used a key (ACCESS_KEY_TAKEN).

-- +goose Up
ALTER TABLE license_rules DROP CONSTRAINT license_rules_access_key_key;
CREATE UNIQUE INDEX license_rules_account_access_key ON license_rules (account_id, access_key);

-- +goose Down
DROP INDEX license_rules_account_access_key;
ALTER TABLE license_rules ADD CONSTRAINT license_rules_access_key_key UNIQUE (access_key);
