package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/lcorp/licensing-controller/internal/engine"
)

// On the embedded store the statements that take an account's leases by
// id look each id up through the primary key. Given the account and a list
// of ids, SQLite walked all of the account's leases through an account
// index instead: a batch heartbeat of 1 000 ids on 50 000 leases renewed
// 5 600 agents/s.
func TestSQLiteTakesLeasesByIDThroughThePrimaryKey(t *testing.T) {
	ctx := context.Background()
	s := openSQLite(t)
	now := time.Now().UTC()
	ls := make([]engine.Lease, 5000)
	for i := range ls {
		app := int64(i % 100)
		ls[i] = engine.Lease{ID: fmt.Sprintf("lease-%05d", i), AccountID: 1, AgentID: fmt.Sprintf("agent-%05d", i), AgentType: "APP_AGENT",
			PoolKind: engine.PoolAllocation, PoolID: "pool-1", LicenseKey: "key-1", Package: "PREMIUM", UnitsCharged: 1,
			HostID: fmt.Sprintf("host-%03d", i%500), AppID: &app, GrantedAt: now, HeartbeatAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	for part := range slices.Chunk(ls, 500) {
		if err := s.Engine().InsertLeases(ctx, part); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	for i := 0; i < len(ls); i += 25 {
		ids = append(ids, ls[i].ID)
	}

	// The plan of every statement on leases, taken right after it ran.
	type planned struct{ statement, plan string }
	var plans []planned
	explain := func(db *gorm.DB) {
		q := db.Statement.SQL.String()
		if db.Error != nil || !strings.Contains(q, "leases") {
			return
		}
		rows, err := db.Statement.ConnPool.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, db.Statement.Vars...)
		if err != nil {
			t.Errorf("explain %s: %v", q, err)
			return
		}
		defer rows.Close()
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Error(err)
				return
			}
			plan = append(plan, detail)
		}
		plans = append(plans, planned{q[:min(len(q), 120)], strings.Join(plan, "; ")})
	}
	for _, err := range []error{
		s.db.Callback().Query().After("gorm:query").Register("test:explain", explain),
		s.db.Callback().Update().After("gorm:update").Register("test:explain", explain),
		s.db.Callback().Raw().After("gorm:raw").Register("test:explain", explain),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}

	later := now.Add(time.Minute)
	err := s.Engine().InTx(ctx, func(tx engine.Store) error {
		renewed, err := tx.RenewLeases(ctx, 1, ids, later, later.Add(time.Hour))
		if err == nil && len(renewed) != len(ids) {
			err = fmt.Errorf("renewed %d of %d leases", len(renewed), len(ids))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	renewed, err := s.Engine().RenewLive(ctx, 1, ids, later, later.Add(time.Hour))
	if err != nil || len(renewed) != len(ids) {
		t.Fatalf("RenewLive: %d of %d leases, %v", len(renewed), len(ids), err)
	}
	if err := s.Engine().RevokeLeases(ctx, 1, ids[:10], "TEST"); err != nil {
		t.Fatal(err)
	}
	if revoked, err := s.Engine().RevokedLeases(ctx, 1, ids); err != nil || len(revoked) != 10 {
		t.Fatalf("RevokedLeases: %d leases, want 10, %v", len(revoked), err)
	}
	if len(plans) < 4 {
		t.Fatalf("%d statements on leases seen, want 4 at least: %v", len(plans), plans)
	}
	for _, p := range plans {
		if !strings.Contains(p.plan, "USING INDEX sqlite_autoindex_leases_1 (id=?)") || strings.Contains(p.plan, "leases_account") ||
			strings.Contains(p.plan, "leases_expires") {
			t.Errorf("%s…: plan %q, want the leases' primary key only", p.statement, p.plan)
		}
	}
}

// Every column of grouped usage on the embedded store has a declared type.
// The driver reads a text value without one as a time if it can
// (_texttotime), trying every format on each row: parsing host names as
// times was 11 % of a grouped usage's CPU.
func TestSQLiteGroupedUsageColumnsHaveDeclaredTypes(t *testing.T) {
	s := openSQLite(t)
	now := time.Now().UTC()
	rows, err := s.db.Raw(fmt.Sprintf(usageQuery, "AND l.app_id IN @keys"), sql.Named("since", now), sql.Named("account", 1),
		sql.Named("now", now), sql.Named("keys", []int64{1})).Rows()
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.ColumnTypes()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cols {
		if c.DatabaseTypeName() == "" {
			t.Errorf("column %s has no declared type", c.Name())
		}
	}
}

// openSQLite is a migrated embedded store in a temporary directory.
func openSQLite(t *testing.T) *Store {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}
