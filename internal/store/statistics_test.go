package store_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lcorp/licensing-controller/internal/engine"
	"github.com/lcorp/licensing-controller/internal/fault"
	"github.com/lcorp/licensing-controller/internal/pgtest"
	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
)

// A table that grew since its statistics were taken is analysed once, and
// again only after it grows further.
func TestAnalyzeStaleFollowsGrowth(t *testing.T) {
	st := storetest.Open(t, store.Options{URL: pgtest.URL(t)})
	ctx := context.Background()
	addHosts := func(from, n int) {
		t.Helper()
		hosts := make([]engine.Host, n)
		for i := range hosts {
			hosts[i] = engine.Host{AccountID: 1, ID: fmt.Sprintf("host-%05d", from+i), Name: "h", FirstSeenAt: time.Now()}
		}
		if err := st.Engine().SaveHosts(ctx, hosts, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	// waitAnalyzed calls AnalyzeStale until it analyses hosts: the row
	// counts it reads reach PostgreSQL's statistics within a second or so.
	waitAnalyzed := func() {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			tables, err := st.AnalyzeStale(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(tables, "hosts") {
				return
			}
		}
		t.Fatal("hosts was not analysed after it grew")
	}
	addHosts(0, 1500)
	waitAnalyzed()
	if tables, err := st.AnalyzeStale(ctx); err != nil || slices.Contains(tables, "hosts") {
		t.Fatalf("hosts analysed again without having changed: %v %v", tables, err)
	}
	addHosts(1500, 3000)
	waitAnalyzed()
}

// Two transactions locking two pools in opposite orders deadlock;
// PostgreSQL aborts one, and the store reports it as transient (worth
// running again), not as an internal error.
func TestDeadlockIsTransient(t *testing.T) {
	st := storetest.Open(t, store.Options{URL: pgtest.URL(t)})
	ctx := context.Background()
	locked := make(chan struct{}, 2)
	both := make(chan struct{})
	lockBoth := func(first, second string) error {
		return st.Engine().InTx(ctx, func(tx engine.Store) error {
			if _, err := tx.LockPool(ctx, 1, engine.PoolAllocation, first); err != nil {
				return err
			}
			locked <- struct{}{}
			<-both
			_, err := tx.LockPool(ctx, 1, engine.PoolAllocation, second)
			return err
		})
	}
	errs := make(chan error, 2)
	go func() { errs <- lockBoth("pool-a", "pool-b") }()
	go func() { errs <- lockBoth("pool-b", "pool-a") }()
	<-locked
	<-locked
	close(both)
	e1, e2 := <-errs, <-errs
	if (e1 == nil) == (e2 == nil) {
		t.Fatalf("want exactly one transaction aborted, got %v and %v", e1, e2)
	}
	if err := cmp.Or(e1, e2); !errors.Is(err, fault.ErrTransient) {
		t.Errorf("deadlock reported as %v, want fault.ErrTransient", err)
	}
}

// Grouped usage on PostgreSQL reads the leases of each key through its
// index and the changed hosts and fallback charges once, whatever the
// statistics say. Right after an estate came up its statistics can
// describe the tables as nearly empty, and the planner then read every
// host of the account once per lease: the buffers read grew with leases ×
// hosts instead of with the leases.
func TestGroupedUsagePlanIgnoresStaleStatistics(t *testing.T) {
	st := storetest.Open(t, store.Options{URL: pgtest.URL(t)})
	ctx := context.Background()
	now := time.Now().UTC()
	const hosts, leases, apps = 1000, 10000, 200
	hs := make([]engine.Host, hosts)
	for i := range hs {
		hs[i] = engine.Host{AccountID: 1, ID: fmt.Sprintf("host-%05d", i), Name: "h", FirstSeenAt: now}
	}
	if err := st.Engine().SaveHosts(ctx, hs, now); err != nil {
		t.Fatal(err)
	}
	ls := make([]engine.Lease, leases)
	for i := range ls {
		app := int64(i % apps)
		ls[i] = engine.Lease{ID: fmt.Sprintf("lease-%05d", i), AccountID: 1, AgentID: fmt.Sprintf("agent-%05d", i), AgentType: "APP_AGENT",
			PoolKind: engine.PoolAllocation, PoolID: "pool-1", LicenseKey: "key-1", Package: "PREMIUM", UnitsCharged: 1,
			HostID: hs[i%hosts].ID, AppID: &app, GrantedAt: now, HeartbeatAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	for part := range slices.Chunk(ls, 500) {
		if err := st.Engine().InsertLeases(ctx, part); err != nil {
			t.Fatal(err)
		}
	}
	db, err := st.DB()
	if err != nil {
		t.Fatal(err)
	}
	// Statistics as an ANALYZE of the empty tables left them.
	for _, q := range []string{
		"ANALYZE leases", "ANALYZE hosts", "ANALYZE host_charges",
		"UPDATE pg_class SET reltuples = 0, relpages = 0 WHERE relname IN ('leases', 'hosts', 'host_charges') AND relnamespace = current_schema()::regnamespace",
		"DELETE FROM pg_statistic WHERE starelid IN ('leases'::regclass, 'hosts'::regclass, 'host_charges'::regclass)",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var keys []string // 100 applications: 5 000 leases on 500 hosts
	for app := 0; app < apps; app += 2 {
		keys = append(keys, strconv.Itoa(app))
	}
	var plan []struct {
		Plan struct {
			Rows    int64 `json:"Actual Rows"`
			Buffers int64 `json:"Shared Hit Blocks"`
		}
	}
	var raw []byte
	err = db.QueryRowContext(ctx, "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "+store.GroupedUsageSQL("app_id", "bigint"),
		"{"+strings.Join(keys, ",")+"}", now.Add(-store.HostCopyWindow), 1, now).Scan(&raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &plan); err != nil || len(plan) != 1 {
		t.Fatalf("plan %s: %v", raw, err)
	}
	p := plan[0].Plan
	if p.Rows != leases/2 {
		t.Fatalf("%d rows, want %d", p.Rows, leases/2)
	}
	// Reading the leases takes about a page per lease; a scan of the
	// account's hosts for each lease reads dozens more.
	if p.Buffers > 8*p.Rows {
		t.Errorf("%d buffers read for %d rows: the plan scans instead of looking up\n%s", p.Buffers, p.Rows, raw)
	}
}
