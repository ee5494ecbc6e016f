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

// A batch's writes land as the statements one by one would write them (on
// PostgreSQL they are one statement): charges upserted, usage added,
// leases inserted with every column, applications renamed, events
// appended, requests counted; a batch with nothing to count counts nothing.
func TestWriteBatchWritesEveryPart(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		es := st.Engine()
		now := time.Now().UTC().Truncate(time.Microsecond)
		str := func(s string) *string { return &s }
		num := func(n int64) *int64 { return &n }
		full := engine.Lease{ID: "lease-1", AccountID: 1, AgentID: "agent-1", AgentType: "APP_AGENT", AgentVersion: str("23.4"),
			PoolKind: engine.PoolAllocation, PoolID: "pool-1", LicenseKey: "key-1", Package: "PREMIUM", UnitsCharged: 4,
			HostID: "host-1", AppID: num(7), AppName: str("seven"), Node: str("node"), Tier: str("tier"), ContainerID: str("c1"),
			GrantedAt: now, HeartbeatAt: now, ExpiresAt: now.Add(time.Hour), HostNameCopy: str("h one"), HostVCPUCopy: num(4)}
		bare := engine.Lease{ID: "lease-2", AccountID: 1, AgentID: "agent-2", AgentType: "MACHINE_AGENT",
			PoolKind: engine.PoolAllocation, PoolID: "pool-1", LicenseKey: "key-1", Package: "PREMIUM", HostID: "host-2",
			GrantedAt: now, HeartbeatAt: now, ExpiresAt: now.Add(time.Hour), RevokedCode: str("TEST")}
		w := engine.BatchWrites{AccountID: 1,
			Charges: []engine.HostCharge{{PoolID: "pool-1", HostID: "host-1", AccountID: 1, Package: "PREMIUM", Units: 4, ChargedAt: now},
				{PoolID: "pool-1", HostID: "host-2", AccountID: 1, Package: "PREMIUM", Units: 4, Fallback: true, ChargedAt: now}},
			Deltas: map[string]map[string]int64{"pool-1": {"PREMIUM": 8, "JAVA": 0}},
			Leases: []engine.Lease{full, bare},
			Apps:   []engine.Application{{ID: 7, Name: "seven"}},
			Events: []engine.Event{{At: now, AccountID: 1, Kind: "GRANTED", PoolKind: engine.PoolAllocation, PoolID: "pool-1",
				Package: "PREMIUM", Units: 4, AgentID: "agent-1", AgentType: "APP_AGENT", AgentVersion: str("23.4"), HostID: "host-1",
				AppID: num(7), AppName: str("seven")}, {At: now, AccountID: 1, Kind: "REFUSED", Reason: "NO_MORE_UNITS", AgentID: "agent-3"}},
			Month: "2026-12", Shard: 1, Requests: 2}
		if err := es.InTx(ctx, func(tx engine.Store) error { return tx.WriteBatch(ctx, w) }); err != nil {
			t.Fatal(err)
		}
		// A second batch: the upserts update, nothing is counted.
		w2 := engine.BatchWrites{AccountID: 1,
			Charges: []engine.HostCharge{{PoolID: "pool-1", HostID: "host-2", AccountID: 1, Package: "PREMIUM", Units: 8, ChargedAt: now}},
			Deltas:  map[string]map[string]int64{"pool-1": {"PREMIUM": 4}},
			Apps:    []engine.Application{{ID: 7, Name: "renamed"}},
			Month:   "2026-12", Shard: 1}
		if err := es.InTx(ctx, func(tx engine.Store) error { return tx.WriteBatch(ctx, w2) }); err != nil {
			t.Fatal(err)
		}
		for _, want := range []engine.Lease{full, bare} {
			got, err := es.FindLease(ctx, 1, want.ID)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("lease %s (-written +read):\n%s", want.ID, d)
			}
		}
		if hc, err := es.FindHostCharge(ctx, "pool-1", "host-2"); err != nil || hc.Units != 8 || hc.Fallback {
			t.Errorf("charge of host-2 after the second batch: %+v, %v; want 8 units, not fallback", hc, err)
		}
		db, err := st.DB()
		if err != nil {
			t.Fatal(err)
		}
		for q, want := range map[string]int64{
			"SELECT used FROM pool_usage WHERE pool_id = 'pool-1' AND item = 'PREMIUM'":                                12,
			"SELECT count(*) FROM pool_usage":                                                                          1,
			"SELECT request_count FROM registration_counters WHERE account_id = 1 AND month = '2026-12'":               2,
			"SELECT count(*) FROM usage_events WHERE account_id = 1":                                                   2,
			"SELECT count(*) FROM usage_events WHERE kind = 'REFUSED' AND reason = 'NO_MORE_UNITS' AND app_id IS NULL": 1,
			"SELECT count(*) FROM applications WHERE app_id = 7 AND name = 'renamed'":                                  1,
		} {
			var got int64
			if err := db.QueryRowContext(ctx, q).Scan(&got); err != nil || got != want {
				t.Errorf("%s: %d, %v; want %d", q, got, err, want)
			}
		}
	})
}
