package store

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lcorp/licensing-controller/internal/licensing"
	"github.com/lcorp/licensing-controller/internal/pgtest"
)

// TestRuleKeyMigrationKeepsHistory: migration 11 rebuilds license_rules on
// SQLite; with foreign keys on, dropping the old table would have deleted
// every rule's history through ON DELETE CASCADE.
func TestRuleKeyMigrationKeepsHistory(t *testing.T) {
	ctx := context.Background()
	s := storeAt(t, Options{DataDir: t.TempDir()}, 10)
	for _, q := range []string{
		`INSERT INTO accounts (id, name, global_id, access_key, created_at) VALUES (1, 'a', 'g', 'k', CURRENT_TIMESTAMP)`,
		`INSERT INTO license_rules (id, account_id, version, name, enabled, access_key, constraints, entitlements, changed_by, changed_at, created_at)
		 VALUES ('r1', 1, 1, 'rule', true, 'key', '[]', '[]', 'me', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)`,
		`INSERT INTO license_rule_versions (rule_id, version, account_id, name, enabled, access_key, constraints, entitlements, changed_by, changed_at, created_at)
		 VALUES ('r1', 0, 1, 'rule', true, 'key', '[]', '[]', 'me', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)`,
	} {
		if err := s.db.Exec(q).Error; err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var rules, versions int64
	if err := s.db.Raw("SELECT COUNT(*) FROM license_rules").Scan(&rules).Error; err != nil {
		t.Fatal(err)
	}
	if err := s.db.Raw("SELECT COUNT(*) FROM license_rule_versions").Scan(&versions).Error; err != nil {
		t.Fatal(err)
	}
	if rules != 1 || versions != 1 {
		t.Errorf("after migration: %d rules, %d versions; want 1 and 1", rules, versions)
	}
	var fk int
	if err := s.db.Raw("PRAGMA foreign_keys").Scan(&fk).Error; err != nil || fk != 1 {
		t.Errorf("foreign keys after the migration: %d (%v), want on", fk, err)
	}
	// The same key is free in another account, taken in the same one.
	if err := s.db.Exec(`INSERT INTO accounts (id, name, global_id, access_key, created_at) VALUES (2, 'b', 'g2', 'k2', CURRENT_TIMESTAMP)`).Error; err != nil {
		t.Fatal(err)
	}
	ins := `INSERT INTO license_rules (id, account_id, version, name, enabled, access_key, constraints, entitlements, changed_by, changed_at, created_at)
		 VALUES (?, ?, 1, ?, true, 'key', '[]', '[]', 'me', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)`
	if err := s.db.Exec(ins, "r2", 2, "rule").Error; err != nil {
		t.Errorf("the same key in another account: %v", err)
	}
	if err := s.db.Exec(ins, "r3", 1, "other").Error; err == nil {
		t.Error("the same key twice in one account was accepted")
	}
}

// TestConstraintMigration: rules stored with flat filters (before
// migration 13) read back as one constraint per entity type with the same
// conditions, current versions and history alike, on both engines.
func TestConstraintMigration(t *testing.T) {
	for _, e := range []struct {
		name string
		opt  func(t *testing.T) Options
	}{
		{"sqlite", func(t *testing.T) Options { return Options{DataDir: t.TempDir()} }},
		{"postgres", func(t *testing.T) Options { return Options{URL: pgtest.URL(t)} }},
	} {
		t.Run(e.name, func(t *testing.T) {
			ctx := context.Background()
			s := storeAt(t, e.opt(t), 12)
			flat := `[{"Type":"APPLICATION","Operator":"STARTS_WITH","Value":"Sangrah-"},{"Type":"HOST","Operator":"EQUALS","Value":"h1"},` +
				`{"Type":"APPLICATION","Operator":"ID_EQUALS","Value":"18156"}]`
			for _, q := range []string{
				`INSERT INTO accounts (id, name, global_id, access_key, created_at) VALUES (1, 'a', 'g', 'k', CURRENT_TIMESTAMP)`,
				`INSERT INTO license_rules (id, account_id, version, name, enabled, access_key, constraints, entitlements, changed_by, changed_at, created_at)
				 VALUES ('r1', 1, 1, 'rule', true, 'key', '` + flat + `', '[]', 'me', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)`,
				`INSERT INTO license_rule_versions (rule_id, version, account_id, name, enabled, access_key, constraints, entitlements, changed_by, changed_at, created_at)
				 VALUES ('r1', 0, 1, 'rule', true, 'key', '` + flat + `', '[]', 'me', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)`,
			} {
				if err := s.db.Exec(q).Error; err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			if _, err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			want := []licensing.Constraint{
				{Type: "APPLICATION", Conditions: []licensing.Filter{{Type: "APPLICATION", Operator: "STARTS_WITH", Value: "Sangrah-"},
					{Type: "APPLICATION", Operator: "ID_EQUALS", Value: "18156"}}},
				{Type: "HOST", Conditions: []licensing.Filter{{Type: "HOST", Operator: "EQUALS", Value: "h1"}}},
			}
			r, err := s.Licensing().FindRule(ctx, 1, licensing.RuleLookup{ID: "r1"})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, r.Constraints); diff != "" {
				t.Errorf("current version (-want +got):\n%s", diff)
			}
			vs, err := s.Licensing().FindRuleVersions(ctx, 1, "r1")
			if err != nil || len(vs) != 1 {
				t.Fatalf("history: %v %v", vs, err)
			}
			if diff := cmp.Diff(want, vs[0].Constraints); diff != "" {
				t.Errorf("history (-want +got):\n%s", diff)
			}
		})
	}
}

// storeAt opens a store migrated up to version only, closed when the test
// ends.
func storeAt(t *testing.T, opt Options, version int64) *Store {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	p, err := s.provider()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, version); err != nil {
		t.Fatal(err)
	}
	return s
}
