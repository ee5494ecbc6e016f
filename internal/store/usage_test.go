package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lcorp/licensing-controller/internal/engine"
	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
)

// Grouped usage reads the live leases of the named applications with their
// host, the same inside a transaction as outside (PostgreSQL reads through
// pgx outside one, through database/sql inside).
func TestUsageRowsInAndOutOfTransactions(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Second)
		vcpu, app, other, name, node, hostName := int64(16), int64(18156), int64(18157), "OrderFulfillment", "node-1", "ip-10-0-0-1"
		if _, err := st.Engine().SeeHost(ctx, engine.Host{AccountID: 1, ID: "h1", Name: hostName, VCPU: &vcpu, FirstSeenAt: now}); err != nil {
			t.Fatal(err)
		}
		lease := func(id string, app *int64, expires time.Time) *engine.Lease {
			return &engine.Lease{ID: id, AccountID: 1, AgentID: "agent-" + id, AgentType: "APP_AGENT", PoolKind: engine.PoolAllocation,
				PoolID: "pool-1", LicenseKey: "key-1", Package: "PREMIUM", UnitsCharged: 16, HostID: "h1", AppID: app, AppName: &name,
				Node: &node, GrantedAt: now, HeartbeatAt: now, ExpiresAt: expires, HostName: &hostName, HostVCPU: &vcpu}
		}
		for _, l := range []*engine.Lease{lease("live", &app, now.Add(time.Minute)), lease("expired", &app, now.Add(-time.Second)),
			lease("elsewhere", &other, now.Add(time.Minute))} {
			if err := st.Engine().InsertLease(ctx, l); err != nil {
				t.Fatal(err)
			}
		}
		want := []engine.UsageRow{{AgentType: "APP_AGENT", PoolKind: engine.PoolAllocation, PoolID: "pool-1", LicenseKey: "key-1",
			HostID: "h1", HostName: hostName, AppID: &app, AppName: &name, Node: &node, HostVCPU: &vcpu}}
		outside, err := st.Engine().UsageByApps(ctx, 1, []int64{app, 4242}, nil, now)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, outside); d != "" {
			t.Errorf("usage by application id (-want +got):\n%s", d)
		}
		err = st.Engine().InTx(ctx, func(tx engine.Store) error {
			inside, err := tx.UsageByApps(ctx, 1, nil, []string{name}, now)
			if err != nil {
				return err
			}
			// By name both applications' live leases match.
			if len(inside) != 2 || cmp.Diff(want[0], inside[0]) != "" && cmp.Diff(want[0], inside[1]) != "" {
				t.Errorf("usage by name in a transaction: %+v", inside)
			}
			byHost, err := tx.UsageByHosts(ctx, 1, []string{"h1"}, now)
			if len(byHost) != 2 {
				t.Errorf("usage by host in a transaction: %d rows, want 2", len(byHost))
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// A lease keeps its host's name and vCPU as its grant saw them. When the
// host changes, grouped usage shows the host's new values at once (for
// HostCopyWindow) and RefreshLeaseHosts brings the lease's copy up to
// date, so that it stays right after the window.
func TestUsageFollowsHostChanges(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Second)
		sixteen, app, name := int64(16), int64(1), "ip-10-0-0-1"
		if _, err := st.Engine().SeeHost(ctx, engine.Host{AccountID: 1, ID: "h1", Name: name, VCPU: &sixteen, FirstSeenAt: now}); err != nil {
			t.Fatal(err)
		}
		l := &engine.Lease{ID: "l1", AccountID: 1, AgentID: "a1", AgentType: "APP_AGENT", PoolKind: engine.PoolAllocation,
			PoolID: "pool-1", LicenseKey: "key-1", Package: "PREMIUM", UnitsCharged: 16, HostID: "h1", AppID: &app,
			GrantedAt: now, HeartbeatAt: now, ExpiresAt: now.Add(48 * time.Hour), HostName: &name, HostVCPU: &sixteen}
		if err := st.Engine().InsertLease(ctx, l); err != nil {
			t.Fatal(err)
		}
		host := func(at time.Time) (string, int64) {
			t.Helper()
			rows, err := st.Engine().UsageByApps(ctx, 1, []int64{app}, nil, at)
			if err != nil || len(rows) != 1 || rows[0].HostVCPU == nil {
				t.Fatalf("usage at %v: %+v %v", at, rows, err)
			}
			return rows[0].HostName, *rows[0].HostVCPU
		}
		thirtyTwo, changed := int64(32), now.Add(time.Minute)
		if _, err := st.Engine().SeeHost(ctx, engine.Host{AccountID: 1, ID: "h1", Name: "db-1", VCPU: &thirtyTwo, FirstSeenAt: changed}); err != nil {
			t.Fatal(err)
		}
		if n, v := host(changed); n != "db-1" || v != 32 {
			t.Errorf("right after the change: host %s with %d vCPU, want db-1 with 32", n, v)
		}
		later := changed.Add(store.HostCopyWindow + time.Hour)
		if n, v := host(later); n != name || v != 16 {
			t.Errorf("after the window, before a refresh: host %s with %d vCPU, want the lease's copy (%s, 16)", n, v, name)
		}
		if n, err := st.RefreshLeaseHosts(ctx, changed.Add(-time.Second)); err != nil || n != 1 {
			t.Fatalf("refresh: %d leases, %v; want 1", n, err)
		}
		if n, v := host(later); n != "db-1" || v != 32 {
			t.Errorf("after the window and a refresh: host %s with %d vCPU, want db-1 with 32", n, v)
		}
		if n, err := st.RefreshLeaseHosts(ctx, changed.Add(-time.Second)); err != nil || n != 0 {
			t.Errorf("second refresh: %d leases, %v; want 0", n, err)
		}
	})
}
