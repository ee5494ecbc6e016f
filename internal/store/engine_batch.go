package store

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/lcorp/licensing-controller/internal/engine"
)

// The set-based reads and writes of a batch of registrations: a handful of
// statements for the whole batch instead of a dozen per registration.

type poolUsageRow struct {
	PoolID string `gorm:"primaryKey"`
	Item   string `gorm:"primaryKey"`
	Used   int64
}

func (poolUsageRow) TableName() string { return "pool_usage" }

func (e engineStore) LeasesOfAgents(ctx context.Context, accountID int64, agentIDs []string) ([]engine.Lease, error) {
	var out []engine.Lease
	if len(agentIDs) == 0 {
		return out, nil
	}
	err := e.s.rawRows(ctx, "SELECT "+leaseColumns+" FROM leases WHERE account_id = ? AND agent_id IN "+valueRows(1, len(agentIDs)),
		append([]any{accountID}, anys(agentIDs)...), func(rows *sql.Rows) error {
			l, err := scanLease(rows)
			out = append(out, l)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("leases of %d agents: %w", len(agentIDs), translate(err))
	}
	return out, nil
}

func (e engineStore) Hosts(ctx context.Context, accountID int64, hostIDs []string) ([]engine.Host, error) {
	out := []engine.Host{}
	if len(hostIDs) == 0 {
		return out, nil
	}
	q, args := "SELECT account_id, host_id, name, vcpu, first_seen_at FROM hosts WHERE account_id = ? AND host_id "+e.in(len(hostIDs)),
		append([]any{accountID}, e.list(hostIDs)...)
	err := e.s.rawRows(ctx, q, args, func(rows *sql.Rows) error {
		var h engine.Host
		err := rows.Scan(&h.AccountID, &h.ID, &h.Name, &h.VCPU, &h.FirstSeenAt)
		h.FirstSeenAt = h.FirstSeenAt.UTC()
		out = append(out, h)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read %d hosts: %w", len(hostIDs), translate(err))
	}
	return out, nil
}

// SaveHosts upserts hosts in the order given (callers sort them, so that
// concurrent batches lock host rows in one order). The first-seen time of a
// known host is kept; its change time becomes now.
func (e engineStore) SaveHosts(ctx context.Context, hosts []engine.Host, now time.Time) error {
	if len(hosts) == 0 {
		return nil
	}
	err := chunks(len(hosts), func(from, to int) error {
		args := make([]any, 0, (to-from)*5+1)
		for _, h := range hosts[from:to] {
			args = append(args, h.AccountID, h.ID, h.Name, h.VCPU, h.FirstSeenAt)
		}
		// A row another transaction wrote since the batch read it keeps
		// what the batch does not know (as MergeHost would).
		_, err := e.s.rawExec(ctx, "INSERT INTO hosts (account_id, host_id, name, vcpu, first_seen_at) VALUES "+valueRows(to-from, 5)+
			` ON CONFLICT (account_id, host_id) DO UPDATE SET vcpu = COALESCE(excluded.vcpu, hosts.vcpu),
			name = CASE WHEN excluded.name IN ('', excluded.host_id) THEN hosts.name ELSE excluded.name END,
			changed_at = ?`, append(args, now)...)
		return err
	})
	if err != nil {
		return fmt.Errorf("save %d hosts: %w", len(hosts), translate(err))
	}
	return nil
}

// LockPools is LockPool for several pools in one statement each for the
// locks and the usage. Callers pass the pools sorted by id: pools are
// always locked in that order, so batches cannot deadlock each other.
func (e engineStore) LockPools(ctx context.Context, accountID int64, pools []engine.PoolKey) (map[string]map[string]int64, error) {
	out := make(map[string]map[string]int64, len(pools))
	if len(pools) == 0 {
		return out, nil
	}
	args := make([]any, 0, len(pools)*3)
	ids := make([]any, len(pools))
	for i, p := range pools {
		args = append(args, p.ID, accountID, p.Kind)
		ids[i] = p.ID
		out[p.ID] = map[string]int64{}
	}
	// Like LockPool: an upsert that always updates takes every row lock.
	_, err := e.s.rawExec(ctx, "INSERT INTO pools (id, account_id, kind) VALUES "+valueRows(len(pools), 3)+
		" ON CONFLICT (id) DO UPDATE SET kind = excluded.kind", args...)
	if err != nil {
		return nil, fmt.Errorf("lock %d pools: %w", len(pools), translate(err))
	}
	err = e.s.rawRows(ctx, "SELECT pool_id, item, used FROM pool_usage WHERE pool_id IN "+valueRows(1, len(ids)), ids, func(rows *sql.Rows) error {
		var u poolUsageRow
		err := rows.Scan(&u.PoolID, &u.Item, &u.Used)
		out[u.PoolID][u.Item] = u.Used
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("usage of %d pools: %w", len(pools), translate(err))
	}
	return out, nil
}

// AddUsages adds deltas per pool and item in one statement.
func (e engineStore) AddUsages(ctx context.Context, deltas map[string]map[string]int64) error {
	var args []any
	for _, pool := range slices.Sorted(maps.Keys(deltas)) {
		for _, item := range slices.Sorted(maps.Keys(deltas[pool])) {
			if d := deltas[pool][item]; d != 0 {
				args = append(args, pool, item, d)
			}
		}
	}
	if len(args) == 0 {
		return nil
	}
	_, err := e.s.rawExec(ctx, "INSERT INTO pool_usage (pool_id, item, used) VALUES "+valueRows(len(args)/3, 3)+poolUsageUpsert, args...)
	if err != nil {
		return fmt.Errorf("add usage of %d pool items: %w", len(args)/3, translate(err))
	}
	return nil
}

func (e engineStore) HostChargesOf(ctx context.Context, poolIDs, hostIDs []string) ([]engine.HostCharge, error) {
	var out []engine.HostCharge
	if len(poolIDs) == 0 || len(hostIDs) == 0 {
		return out, nil
	}
	// The hosts lead (index host_charges_host): a host has a charge in a
	// pool or two, while the pools × hosts of the primary key are a
	// probe each, and PostgreSQL scans the whole table rather than make them.
	q := "SELECT " + hostChargeColumns + " FROM host_charges WHERE host_id " + e.in(len(hostIDs)) + " AND pool_id " + e.in(len(poolIDs))
	err := e.s.rawRows(ctx, q, append(e.list(hostIDs), e.list(poolIDs)...), func(rows *sql.Rows) error {
		hc, err := scanHostCharge(rows)
		out = append(out, hc)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("charges of %d hosts: %w", len(hostIDs), translate(err))
	}
	return out, nil
}

// in is "= ANY(?)" of a text array on PostgreSQL, whatever the length
// (one statement, prepared once per connection), and "IN (?, …)" of n on
// SQLite; list is its arguments.
func (e engineStore) in(n int) string {
	if e.s.dialect == Postgres {
		return "= ANY(?)"
	}
	return "IN " + valueRows(1, n)
}

func (e engineStore) list(ids []string) []any {
	if e.s.dialect == Postgres {
		return []any{textArray(ids)}
	}
	return anys(ids)
}

// hostChargeColumns are the columns scanHostCharge reads.
const hostChargeColumns = "pool_id, host_id, account_id, package, units, fallback, charged_at"

func scanHostCharge(rows *sql.Rows) (engine.HostCharge, error) {
	var hc engine.HostCharge
	err := rows.Scan(&hc.PoolID, &hc.HostID, &hc.AccountID, &hc.Package, &hc.Units, &hc.Fallback, &hc.ChargedAt)
	hc.ChargedAt = hc.ChargedAt.UTC()
	return hc, err
}

// SaveHostCharges upserts host charges; at most one per pool and host.
func (e engineStore) SaveHostCharges(ctx context.Context, hcs []engine.HostCharge) error {
	if len(hcs) == 0 {
		return nil
	}
	const columns = 7
	err := chunks(len(hcs), func(from, to int) error {
		args := make([]any, 0, (to-from)*columns)
		for _, hc := range hcs[from:to] {
			args = append(args, hc.PoolID, hc.HostID, hc.AccountID, hc.Package, hc.Units, hc.Fallback, hc.ChargedAt)
		}
		_, err := e.s.rawExec(ctx, "INSERT INTO host_charges (pool_id, host_id, account_id, package, units, fallback, charged_at) VALUES "+
			valueRows(to-from, columns)+hostChargesUpsert, args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("save %d host charges: %w", len(hcs), translate(err))
	}
	return nil
}

func (e engineStore) InsertLeases(ctx context.Context, ls []engine.Lease) error {
	if len(ls) == 0 {
		return nil
	}
	const columns = 22 // leaseColumns
	err := chunks(len(ls), func(from, to int) error {
		args := make([]any, 0, (to-from)*columns)
		for _, l := range ls[from:to] {
			args = append(args, l.ID, l.AccountID, l.AgentID, l.AgentType, l.AgentVersion, l.PoolKind, l.PoolID, l.LicenseKey,
				l.Package, l.UnitsCharged, l.HostID, l.AppID, l.AppName, l.Node, l.Tier, l.ContainerID,
				l.GrantedAt, l.HeartbeatAt, l.ExpiresAt, l.RevokedCode, l.HostNameCopy, l.HostVCPUCopy)
		}
		_, err := e.s.rawExec(ctx, "INSERT INTO leases ("+leaseColumns+") VALUES "+valueRows(to-from, columns), args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("insert %d leases: %w", len(ls), translate(err))
	}
	return nil
}

// SeeApplications records applications and their latest names; at most
// one entry per application.
func (e engineStore) SeeApplications(ctx context.Context, accountID int64, apps []engine.Application) error {
	if len(apps) == 0 {
		return nil
	}
	err := chunks(len(apps), func(from, to int) error {
		args := make([]any, 0, (to-from)*3)
		for _, a := range apps[from:to] {
			args = append(args, accountID, a.ID, a.Name)
		}
		// An unchanged name writes nothing.
		_, err := e.s.rawExec(ctx, "INSERT INTO applications (account_id, app_id, name) VALUES "+valueRows(to-from, 3)+applicationsUpsert, args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("see %d applications: %w", len(apps), translate(err))
	}
	return nil
}

// What the upserts of a batch's tables do to a row that is there: the
// statements a table at a time and pgWriteBatchSQL share them.
const (
	hostChargesUpsert = ` ON CONFLICT (pool_id, host_id) DO UPDATE SET package = excluded.package,
		units = excluded.units, fallback = excluded.fallback, charged_at = excluded.charged_at`
	poolUsageUpsert    = " ON CONFLICT (pool_id, item) DO UPDATE SET used = pool_usage.used + excluded.used"
	applicationsUpsert = " ON CONFLICT (account_id, app_id) DO UPDATE SET name = excluded.name WHERE applications.name <> excluded.name"
	countersUpsert     = ` ON CONFLICT (account_id, month, shard) DO UPDATE SET
		request_count = registration_counters.request_count + excluded.request_count`
)

// pgWriteBatchSQL is WriteBatch on PostgreSQL: each write of the batch a
// data-modifying WITH over arrays (a row per element; empty arrays write
// nothing), in one statement whatever the batch holds: one round trip
// instead of up to six, and one statement text, prepared once per
// connection. The engine's tables have no foreign keys among themselves,
// and no row is written twice, so the sub-statements need not see each
// other's rows.
const pgWriteBatchSQL = `WITH hc AS (
		INSERT INTO host_charges (pool_id, host_id, account_id, package, units, fallback, charged_at)
		SELECT * FROM unnest(?::text[], ?::text[], ?::bigint[], ?::text[], ?::bigint[], ?::bool[], ?::timestamptz[])` +
	hostChargesUpsert + `),
	pu AS (
		INSERT INTO pool_usage (pool_id, item, used) SELECT * FROM unnest(?::text[], ?::text[], ?::bigint[])` + poolUsageUpsert + `),
	le AS (
		INSERT INTO leases (` + leaseColumns + `)
		SELECT * FROM unnest(?::text[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[],
			?::bigint[], ?::text[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[], ?::timestamptz[], ?::timestamptz[],
			?::timestamptz[], ?::text[], ?::text[], ?::bigint[])),
	ap AS (
		INSERT INTO applications (account_id, app_id, name) SELECT ?::bigint, a.id, a.name FROM unnest(?::bigint[], ?::text[]) AS a(id, name)` +
	applicationsUpsert + `),
	ev AS (
		INSERT INTO usage_events (at, account_id, kind, pool_kind, pool_id, package, units,
			agent_id, agent_type, agent_version, host_id, app_id, app_name, reason)
		SELECT * FROM unnest(?::timestamptz[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[], ?::bigint[],
			?::text[], ?::text[], ?::text[], ?::text[], ?::bigint[], ?::text[], ?::text[])),
	rc AS (
		INSERT INTO registration_counters (account_id, month, shard, request_count)
		SELECT ?::bigint, ?::text, ?::smallint, n FROM (SELECT ?::bigint AS n) r WHERE n > 0` + countersUpsert + `)
	SELECT 1`

func (e engineStore) WriteBatch(ctx context.Context, w engine.BatchWrites) error {
	if e.s.dialect != Postgres {
		return e.writeBatchInTurn(ctx, w)
	}
	var (
		hcPool, hcHost, hcPkg []string
		hcAccount, hcUnits    []int64
		hcFallback            []bool
		hcAt                  []time.Time
	)
	for _, hc := range w.Charges {
		hcPool, hcHost, hcAccount, hcPkg = append(hcPool, hc.PoolID), append(hcHost, hc.HostID), append(hcAccount, hc.AccountID), append(hcPkg, hc.Package)
		hcUnits, hcFallback, hcAt = append(hcUnits, hc.Units), append(hcFallback, hc.Fallback), append(hcAt, hc.ChargedAt)
	}
	var (
		puPool, puItem []string
		puDelta        []int64
	)
	for _, pool := range slices.Sorted(maps.Keys(w.Deltas)) {
		for _, item := range slices.Sorted(maps.Keys(w.Deltas[pool])) {
			if d := w.Deltas[pool][item]; d != 0 {
				puPool, puItem, puDelta = append(puPool, pool), append(puItem, item), append(puDelta, d)
			}
		}
	}
	n := len(w.Leases)
	var (
		lID, lAgent, lType, lKind, lPool, lKey, lPkg, lHost = make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		lAccount, lUnits                                            = make([]int64, n), make([]int64, n)
		lVersion, lAppName, lNode, lTier, lContainer, lRevoked, lHN = make([]*string, n), make([]*string, n),
			make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n)
		lApp, lVCPU               = make([]*int64, n), make([]*int64, n)
		lGranted, lBeat, lExpires = make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
	)
	for i, l := range w.Leases {
		lID[i], lAccount[i], lAgent[i], lType[i], lVersion[i], lKind[i], lPool[i], lKey[i] = l.ID, l.AccountID, l.AgentID, l.AgentType,
			l.AgentVersion, l.PoolKind, l.PoolID, l.LicenseKey
		lPkg[i], lUnits[i], lHost[i], lApp[i], lAppName[i], lNode[i], lTier[i], lContainer[i] = l.Package, l.UnitsCharged, l.HostID,
			l.AppID, l.AppName, l.Node, l.Tier, l.ContainerID
		lGranted[i], lBeat[i], lExpires[i], lRevoked[i], lHN[i], lVCPU[i] = l.GrantedAt, l.HeartbeatAt, l.ExpiresAt, l.RevokedCode,
			l.HostNameCopy, l.HostVCPUCopy
	}
	apID, apName := make([]int64, len(w.Apps)), make([]string, len(w.Apps))
	for i, a := range w.Apps {
		apID[i], apName[i] = a.ID, a.Name
	}
	m := len(w.Events)
	var (
		evAt                                                                 = make([]time.Time, m)
		evAccount, evUnits                                                   = make([]int64, m), make([]int64, m)
		evKind, evPoolKind, evPool, evPkg, evAgent, evType, evHost, evReason = make([]string, m), make([]string, m), make([]string, m),
			make([]string, m), make([]string, m), make([]string, m), make([]string, m), make([]string, m)
		evVersion, evAppName = make([]*string, m), make([]*string, m)
		evApp                = make([]*int64, m)
	)
	for i, ev := range w.Events {
		evAt[i], evAccount[i], evKind[i], evPoolKind[i], evPool[i], evPkg[i], evUnits[i] = ev.At, ev.AccountID, ev.Kind, ev.PoolKind,
			ev.PoolID, ev.Package, ev.Units
		evAgent[i], evType[i], evVersion[i], evHost[i], evApp[i], evAppName[i], evReason[i] = ev.AgentID, ev.AgentType, ev.AgentVersion,
			ev.HostID, ev.AppID, ev.AppName, ev.Reason
	}
	if len(hcPool)+len(puPool)+n+len(apID)+m == 0 && w.Requests <= 0 {
		return nil
	}
	_, err := e.s.rawExec(ctx, pgWriteBatchSQL,
		hcPool, hcHost, hcAccount, hcPkg, hcUnits, hcFallback, hcAt,
		puPool, puItem, puDelta,
		lID, lAccount, lAgent, lType, lVersion, lKind, lPool, lKey, lPkg, lUnits, lHost, lApp, lAppName, lNode, lTier, lContainer,
		lGranted, lBeat, lExpires, lRevoked, lHN, lVCPU,
		w.AccountID, apID, apName,
		evAt, evAccount, evKind, evPoolKind, evPool, evPkg, evUnits, evAgent, evType, evVersion, evHost, evApp, evAppName, evReason,
		w.AccountID, w.Month, w.Shard, w.Requests)
	if err != nil {
		return fmt.Errorf("write a batch of %d leases, %d charges, %d events: %w", n, len(hcPool), m, translate(err))
	}
	return nil
}

// writeBatchInTurn is WriteBatch a statement per table (SQLite).
func (e engineStore) writeBatchInTurn(ctx context.Context, w engine.BatchWrites) error {
	if err := e.SaveHostCharges(ctx, w.Charges); err != nil {
		return err
	}
	if err := e.AddUsages(ctx, w.Deltas); err != nil {
		return err
	}
	if err := e.InsertLeases(ctx, w.Leases); err != nil {
		return err
	}
	if err := e.SeeApplications(ctx, w.AccountID, w.Apps); err != nil {
		return err
	}
	if len(w.Events) > 0 {
		if err := e.AddEvents(ctx, w.Events); err != nil {
			return err
		}
	}
	if w.Requests > 0 {
		return e.CountRequests(ctx, w.AccountID, w.Month, w.Shard, w.Requests)
	}
	return nil
}
