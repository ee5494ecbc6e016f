package store_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
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
