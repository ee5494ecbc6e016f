package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/lcorp/licensing-controller/internal/engine"
)

// The set-based reads and writes of a batch of registrations: a handful of
// statements for the whole batch instead of a dozen per registration.

type poolRow struct {
	ID        string `gorm:"primaryKey"`
	AccountID int64
	Kind      string
}

func (poolRow) TableName() string { return "pools" }

type poolUsageRow struct {
	PoolID string `gorm:"primaryKey"`
	Item   string `gorm:"primaryKey"`
	Used   int64
}

func (poolUsageRow) TableName() string { return "pool_usage" }

type applicationRow struct {
	AccountID int64 `gorm:"primaryKey"`
	AppID     int64 `gorm:"primaryKey"`
	Name      string
}

func (applicationRow) TableName() string { return "applications" }

func (e engineStore) LeasesOfAgents(ctx context.Context, accountID int64, agentIDs []string) ([]engine.Lease, error) {
	var rows []leaseRow
	if err := e.s.conn(ctx).Where("account_id = ? AND agent_id IN ?", accountID, agentIDs).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("leases of %d agents: %w", len(agentIDs), translate(err))
	}
	return leasesFromRows(rows), nil
}

func (e engineStore) Hosts(ctx context.Context, accountID int64, hostIDs []string) ([]engine.Host, error) {
	var rows []hostRow
	if err := e.s.conn(ctx).Where("account_id = ? AND host_id IN ?", accountID, hostIDs).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("read %d hosts: %w", len(hostIDs), translate(err))
	}
	out := make([]engine.Host, len(rows))
	for i, r := range rows {
		out[i] = hostFromRow(r)
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
	rows := make([]hostRow, len(hosts))
	for i, h := range hosts {
		rows[i] = hostRow{AccountID: h.AccountID, HostID: h.ID, Name: h.Name, VCPU: h.VCPU, FirstSeenAt: h.FirstSeenAt}
	}
	err := e.s.conn(ctx).Clauses(clause.OnConflict{
		Columns: []clause.Column{{Name: "account_id"}, {Name: "host_id"}},
		// A row another transaction wrote since the batch read it keeps
		// what the batch does not know (as MergeHost would).
		DoUpdates: clause.Assignments(map[string]any{
			"vcpu":       gorm.Expr("COALESCE(excluded.vcpu, hosts.vcpu)"),
			"name":       gorm.Expr("CASE WHEN excluded.name IN ('', excluded.host_id) THEN hosts.name ELSE excluded.name END"),
			"changed_at": now,
		}),
	}).Create(&rows).Error
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
	rows := make([]poolRow, len(pools))
	ids := make([]string, len(pools))
	for i, p := range pools {
		rows[i] = poolRow{ID: p.ID, AccountID: accountID, Kind: p.Kind}
		ids[i] = p.ID
		out[p.ID] = map[string]int64{}
	}
	db := e.s.conn(ctx)
	// Like LockPool: an upsert that always updates takes every row lock.
	err := db.Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "id"}},
		DoUpdates: clause.AssignmentColumns([]string{"kind"}),
	}).Create(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("lock %d pools: %w", len(pools), translate(err))
	}
	var usage []poolUsageRow
	if err := db.Where("pool_id IN ?", ids).Find(&usage).Error; err != nil {
		return nil, fmt.Errorf("usage of %d pools: %w", len(pools), translate(err))
	}
	for _, u := range usage {
		out[u.PoolID][u.Item] = u.Used
	}
	return out, nil
}

// AddUsages adds deltas per pool and item in one statement.
func (e engineStore) AddUsages(ctx context.Context, deltas map[string]map[string]int64) error {
	var rows []poolUsageRow
	for _, pool := range slices.Sorted(maps.Keys(deltas)) {
		for _, item := range slices.Sorted(maps.Keys(deltas[pool])) {
			if d := deltas[pool][item]; d != 0 {
				rows = append(rows, poolUsageRow{PoolID: pool, Item: item, Used: d})
			}
		}
	}
	if len(rows) == 0 {
		return nil
	}
	err := e.s.conn(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "pool_id"}, {Name: "item"}},
		DoUpdates: clause.Assignments(map[string]any{"used": gorm.Expr("pool_usage.used + excluded.used")}),
	}).Create(&rows).Error
	if err != nil {
		return fmt.Errorf("add usage of %d pool items: %w", len(rows), translate(err))
	}
	return nil
}

func (e engineStore) HostChargesOf(ctx context.Context, poolIDs, hostIDs []string) ([]engine.HostCharge, error) {
	var rows []hostChargeRow
	if len(poolIDs) == 0 || len(hostIDs) == 0 {
		return nil, nil
	}
	// Both lists: the primary key (pool_id, host_id) answers it.
	if err := e.s.conn(ctx).Where("pool_id IN ? AND host_id IN ?", poolIDs, hostIDs).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("charges of %d hosts: %w", len(hostIDs), translate(err))
	}
	out := make([]engine.HostCharge, len(rows))
	for i, r := range rows {
		out[i] = engine.HostCharge(r)
		out[i].ChargedAt = out[i].ChargedAt.UTC()
	}
	return out, nil
}

// SaveHostCharges upserts host charges; at most one per pool and host.
func (e engineStore) SaveHostCharges(ctx context.Context, hcs []engine.HostCharge) error {
	if len(hcs) == 0 {
		return nil
	}
	rows := make([]hostChargeRow, len(hcs))
	for i, hc := range hcs {
		rows[i] = hostChargeRow(hc)
	}
	err := e.s.conn(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "pool_id"}, {Name: "host_id"}},
		DoUpdates: clause.AssignmentColumns([]string{"package", "units", "fallback", "charged_at"}),
	}).Create(&rows).Error
	if err != nil {
		return fmt.Errorf("save %d host charges: %w", len(hcs), translate(err))
	}
	return nil
}

func (e engineStore) InsertLeases(ctx context.Context, ls []engine.Lease) error {
	if len(ls) == 0 {
		return nil
	}
	rows := make([]leaseRow, len(ls))
	for i, l := range ls {
		rows[i] = leaseRow(l)
	}
	if err := e.s.conn(ctx).Create(&rows).Error; err != nil {
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
	rows := make([]applicationRow, len(apps))
	for i, a := range apps {
		rows[i] = applicationRow{AccountID: accountID, AppID: a.ID, Name: a.Name}
	}
	err := e.s.conn(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "account_id"}, {Name: "app_id"}},
		DoUpdates: clause.AssignmentColumns([]string{"name"}),
		// An unchanged name writes nothing.
		Where: clause.Where{Exprs: []clause.Expression{clause.Expr{SQL: "applications.name <> excluded.name"}}},
	}).Create(&rows).Error
	if err != nil {
		return fmt.Errorf("see %d applications: %w", len(apps), translate(err))
	}
	return nil
}
