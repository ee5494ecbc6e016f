package store_test

import (
	"context"
	"fmt"
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
				Node: &node, GrantedAt: now, HeartbeatAt: now, ExpiresAt: expires, HostNameCopy: &hostName, HostVCPUCopy: &vcpu}
		}
		for _, l := range []*engine.Lease{lease("live", &app, now.Add(time.Minute)), lease("expired", &app, now.Add(-time.Second)),
			lease("elsewhere", &other, now.Add(time.Minute))} {
			if err := st.Engine().InsertLease(ctx, l); err != nil {
				t.Fatal(err)
			}
		}
		want := []engine.UsageRow{{AgentType: "APP_AGENT", PoolKind: engine.PoolAllocation, PoolID: "pool-1", LicenseKey: "key-1",
			HostID: "h1", HostName: hostName, AppID: &app, AppName: &name, Node: &node, HostVCPU: &vcpu}}
		outside, err := rowsByApps(ctx, st.Engine(), []int64{app, 4242}, nil, now)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, outside); d != "" {
			t.Errorf("usage by application id (-want +got):\n%s", d)
		}
		err = st.Engine().InTx(ctx, func(tx engine.Store) error {
			inside, err := rowsByApps(ctx, tx, nil, []string{name}, now)
			if err != nil {
				return err
			}
			// By name both applications' live leases match.
			if len(inside) != 2 || cmp.Diff(want[0], inside[0]) != "" && cmp.Diff(want[0], inside[1]) != "" {
				t.Errorf("usage by name in a transaction: %+v", inside)
			}
			byID, err := rowsByApps(ctx, tx, []int64{app, 4242}, nil, now)
			if err != nil {
				return err
			}
			if d := cmp.Diff(want, byID); d != "" {
				t.Errorf("usage by application id in a transaction (-want +got):\n%s", d)
			}
			byHost, err := rowsByHosts(ctx, tx, []string{"h1"}, now)
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
// host changes (alone or in a batch), grouped usage shows the host's new
// values at once (for HostCopyWindow) and RefreshLeaseHosts brings the
// lease's copy up to date, so that it stays right after the window; it
// also fills the copies of leases that have none.
func TestUsageFollowsHostChanges(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Second)
		sixteen, thirtyTwo := int64(16), int64(32)
		lease := func(id, host string, app int64, name *string, vcpu *int64) {
			t.Helper()
			l := &engine.Lease{ID: id, AccountID: 1, AgentID: "agent-" + id, AgentType: "APP_AGENT", PoolKind: engine.PoolAllocation,
				PoolID: "pool-1", LicenseKey: "key-1", Package: "PREMIUM", UnitsCharged: 16, HostID: host, AppID: &app,
				GrantedAt: now, HeartbeatAt: now, ExpiresAt: now.Add(72 * time.Hour), HostNameCopy: name, HostVCPUCopy: vcpu}
			if err := st.Engine().InsertLease(ctx, l); err != nil {
				t.Fatal(err)
			}
		}
		// hostsOf answers grouped usage of app at a time: host id -> "name/vCPU".
		hostsOf := func(app int64, at time.Time) map[string]string {
			t.Helper()
			rows, err := rowsByApps(ctx, st.Engine(), []int64{app}, nil, at)
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]string{}
			for _, r := range rows {
				v := "?"
				if r.HostVCPU != nil {
					v = fmt.Sprint(*r.HostVCPU)
				}
				out[r.HostID] = r.HostName + "/" + v
			}
			return out
		}
		for _, h := range []string{"h1", "h2", "h3"} {
			if _, err := st.Engine().SeeHost(ctx, engine.Host{AccountID: 1, ID: h, Name: h + ".old", VCPU: &sixteen, FirstSeenAt: now}); err != nil {
				t.Fatal(err)
			}
		}
		oldName := func(h string) *string { n := h + ".old"; return &n }
		lease("l1", "h1", 1, oldName("h1"), &sixteen)
		lease("l2", "h2", 1, oldName("h2"), &sixteen)
		lease("l4", "h3", 1, nil, nil) // granted before copies were kept, or by an older replica

		changed := now.Add(time.Minute)
		// h1 changes alone, h2 in a batch; a batch that names h2 again
		// without a vCPU keeps its 32.
		if _, err := st.Engine().SeeHost(ctx, engine.Host{AccountID: 1, ID: "h1", Name: "h1.new", VCPU: &thirtyTwo, FirstSeenAt: changed}); err != nil {
			t.Fatal(err)
		}
		if err := st.Engine().SaveHosts(ctx, []engine.Host{{AccountID: 1, ID: "h2", Name: "h2.new", VCPU: &thirtyTwo, FirstSeenAt: now}}, changed); err != nil {
			t.Fatal(err)
		}
		if err := st.Engine().SaveHosts(ctx, []engine.Host{{AccountID: 1, ID: "h2", Name: "h2", FirstSeenAt: now}}, changed); err != nil {
			t.Fatal(err)
		}
		// A lease granted while h1 changed copied the old values.
		lease("l3", "h1", 2, oldName("h1"), &sixteen)

		want := map[string]string{"h1": "h1.new/32", "h2": "h2.new/32", "h3": "h3/?"}
		if got := hostsOf(1, changed); !cmp.Equal(got, want) {
			t.Errorf("right after the changes: %v, want %v", got, want)
		}
		if got := hostsOf(2, changed); got["h1"] != "h1.new/32" {
			t.Errorf("a lease that copied the old values, right after the change: %v", got)
		}
		later := changed.Add(store.HostCopyWindow + time.Hour)
		if got := hostsOf(1, later); got["h1"] != "h1.old/16" || got["h2"] != "h2.old/16" {
			t.Errorf("after the window, before a refresh, the copies show: %v", got)
		}
		n, err := st.RefreshLeaseHosts(ctx, changed.Add(-time.Second))
		if err != nil || n != 4 {
			t.Fatalf("refresh: %d leases, %v; want 4 (l1, l2, l3 changed, l4 filled)", n, err)
		}
		want["h3"] = "h3.old/16"
		if got := hostsOf(1, later); !cmp.Equal(got, want) {
			t.Errorf("after the window and a refresh: %v, want %v", got, want)
		}
		if got := hostsOf(2, later); got["h1"] != "h1.new/32" {
			t.Errorf("the lease that copied the old values, after a refresh: %v", got)
		}
		if n, err := st.RefreshLeaseHosts(ctx, time.Time{}); err != nil || n != 0 {
			t.Errorf("second refresh: %d leases, %v; want 0", n, err)
		}
	})
}

// rowsByApps and rowsByHosts collect what the store hands a sink.
func rowsByApps(ctx context.Context, s engine.Store, ids []int64, names []string, now time.Time) ([]engine.UsageRow, error) {
	var rs engine.UsageRows
	err := s.UsageByApps(ctx, 1, ids, names, now, &rs)
	return rs, err
}

func rowsByHosts(ctx context.Context, s engine.Store, hostIDs []string, now time.Time) ([]engine.UsageRow, error) {
	var rs engine.UsageRows
	err := s.UsageByHosts(ctx, 1, hostIDs, now, &rs)
	return rs, err
}
