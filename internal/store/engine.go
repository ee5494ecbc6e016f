package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"gorm.io/gorm"

	"github.com/lcorp/licensing-controller/internal/engine"
	"github.com/lcorp/licensing-controller/internal/licensing"
	"github.com/lcorp/licensing-controller/internal/usage"
)

type leaseRow struct {
	ID           string `gorm:"primaryKey"`
	AccountID    int64
	AgentID      string
	AgentType    string
	AgentVersion *string
	PoolKind     string
	PoolID       string
	LicenseKey   string
	Package      string
	UnitsCharged int64
	HostID       string
	AppID        *int64
	AppName      *string
	Node         *string
	Tier         *string
	ContainerID  *string
	GrantedAt    time.Time
	HeartbeatAt  time.Time
	ExpiresAt    time.Time
	RevokedCode  *string
	HostNameCopy *string `gorm:"column:host_name"`
	HostVCPUCopy *int64  `gorm:"column:host_vcpu"`
}

func (leaseRow) TableName() string { return "leases" }

type hostChargeRow struct {
	PoolID    string `gorm:"primaryKey"`
	HostID    string `gorm:"primaryKey"`
	AccountID int64
	Package   string
	Units     int64
	Fallback  bool
	ChargedAt time.Time
}

func (hostChargeRow) TableName() string { return "host_charges" }

// textArray is ids as one PostgreSQL text[] parameter, encoded by pgx; a
// slice would be expanded by gorm into a list of parameters.
func textArray(ids []string) pgtype.Array[string] {
	return pgtype.Array[string]{Elements: ids, Dims: []pgtype.ArrayDimension{{Length: int32(len(ids)), LowerBound: 1}}, Valid: true}
}

// engineStore adapts Store to engine.Store.
type engineStore struct{ s *Store }

var _ engine.Store = engineStore{}

// Engine returns the store of the usage engine.
func (s *Store) Engine() engine.Store { return engineStore{s} }

func (e engineStore) InTx(ctx context.Context, fn func(engine.Store) error) error {
	return e.s.InTx(ctx, func(tx *Store) error { return fn(engineStore{tx}) })
}

func (e engineStore) Licensing() licensing.Store { return licensingStore(e) }

func (e engineStore) AccountRevision(ctx context.Context, accountID int64) (int64, error) {
	q := "SELECT revision FROM accounts WHERE id = ?"
	if e.s.dialect == Postgres {
		q += " FOR SHARE"
	}
	rev, err := rawOne(ctx, e.s, q, []any{accountID}, func(rows *sql.Rows) (rev int64, err error) {
		return rev, rows.Scan(&rev)
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return 0, fmt.Errorf("account %d: %w", accountID, translate(err))
	}
	if err != nil {
		return 0, fmt.Errorf("account %d revision: %w", accountID, translate(err))
	}
	return rev, nil
}

func (e engineStore) LockPool(ctx context.Context, accountID int64, kind, poolID string) (map[string]int64, error) {
	// On PostgreSQL an upsert that always updates: it takes the row lock
	// whether or not the row existed, in one statement. SQLite's write
	// transactions (BEGIN IMMEDIATE) hold the whole database already: the
	// row only has to exist, and rewriting it would cost a page per write.
	upsert := "INSERT INTO pools (id, account_id, kind) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET kind = excluded.kind"
	if e.s.dialect == SQLite {
		upsert = "INSERT INTO pools (id, account_id, kind) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING"
	}
	if _, err := e.s.rawExec(ctx, upsert, poolID, accountID, kind); err != nil {
		return nil, fmt.Errorf("lock pool %s: %w", poolID, translate(err))
	}
	out := map[string]int64{}
	err := e.s.rawRows(ctx, "SELECT item, used FROM pool_usage WHERE pool_id = ?", []any{poolID}, func(rows *sql.Rows) error {
		var (
			item string
			used int64
		)
		err := rows.Scan(&item, &used)
		out[item] = used
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pool %s usage: %w", poolID, translate(err))
	}
	return out, nil
}

func (e engineStore) AddUsage(ctx context.Context, poolID string, deltas map[string]int64) error {
	return e.AddUsages(ctx, map[string]map[string]int64{poolID: deltas})
}

// SeeHost reads first: most registrations name a host that is known and
// unchanged, and then nothing is written (no lock on a hot row).
func (e engineStore) SeeHost(ctx context.Context, h engine.Host) (engine.Host, error) {
	stored, err := e.Hosts(ctx, h.AccountID, []string{h.ID})
	if err == nil && len(stored) == 0 {
		_, err = e.s.rawExec(ctx, `INSERT INTO hosts (account_id, host_id, name, vcpu, first_seen_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (account_id, host_id) DO NOTHING`, h.AccountID, h.ID, h.Name, h.VCPU, h.FirstSeenAt)
		if err == nil {
			stored, err = e.Hosts(ctx, h.AccountID, []string{h.ID})
		}
		if err == nil && len(stored) == 0 {
			err = gorm.ErrRecordNotFound
		}
	}
	if err != nil {
		return engine.Host{}, fmt.Errorf("see host %s: %w", h.ID, translate(err))
	}
	merged, changed := engine.MergeHost(stored[0], true, h)
	if changed {
		// Written as the batch writes hosts (what it changes, not the
		// row read above: a concurrent change of the other value is kept).
		if err := e.SaveHosts(ctx, []engine.Host{h}, h.FirstSeenAt); err != nil {
			return engine.Host{}, fmt.Errorf("update host %s: %w", h.ID, err)
		}
	}
	return merged, nil
}

func (e engineStore) SeeApplication(ctx context.Context, accountID int64, app engine.Application) error {
	return e.SeeApplications(ctx, accountID, []engine.Application{app})
}

func (e engineStore) FindHostCharge(ctx context.Context, poolID, hostID string) (engine.HostCharge, error) {
	hc, err := rawOne(ctx, e.s, "SELECT "+hostChargeColumns+" FROM host_charges WHERE pool_id = ? AND host_id = ?",
		[]any{poolID, hostID}, scanHostCharge)
	if err != nil {
		return engine.HostCharge{}, fmt.Errorf("host %s charge in %s: %w", hostID, poolID, translate(err))
	}
	return hc, nil
}

func (e engineStore) SaveHostCharge(ctx context.Context, hc engine.HostCharge) error {
	return e.SaveHostCharges(ctx, []engine.HostCharge{hc})
}

func (e engineStore) DeleteHostCharge(ctx context.Context, poolID, hostID string) error {
	if _, err := e.s.rawExec(ctx, "DELETE FROM host_charges WHERE pool_id = ? AND host_id = ?", poolID, hostID); err != nil {
		return fmt.Errorf("delete host %s charge: %w", hostID, translate(err))
	}
	return nil
}

func (e engineStore) SerialWrites() bool { return e.s.dialect == SQLite }

func (e engineStore) ReleaseHostCharge(ctx context.Context, poolID, hostID string) (engine.HostCharge, bool, error) {
	hc := engine.HostCharge{PoolID: poolID, HostID: hostID}
	found := false
	err := e.s.rawRows(ctx, `DELETE FROM host_charges WHERE pool_id = ? AND host_id = ? AND NOT EXISTS (
		SELECT 1 FROM leases WHERE pool_id = ? AND host_id = ? AND revoked_code IS NULL)
		RETURNING account_id, package, units, fallback`, []any{poolID, hostID, poolID, hostID}, func(rows *sql.Rows) error {
		found = true
		return rows.Scan(&hc.AccountID, &hc.Package, &hc.Units, &hc.Fallback)
	})
	if err != nil {
		return engine.HostCharge{}, false, fmt.Errorf("release host %s charge in %s: %w", hostID, poolID, translate(err))
	}
	return hc, found, nil
}

func (e engineStore) PreemptibleHosts(ctx context.Context, poolID string) ([]engine.HostCharge, error) {
	var rows []hostChargeRow
	err := e.s.conn(ctx).Raw(`SELECT hc.* FROM host_charges hc WHERE hc.pool_id = ? AND EXISTS (
		SELECT 1 FROM leases l WHERE l.pool_id = hc.pool_id AND l.host_id = hc.host_id AND l.revoked_code IS NULL
		AND l.agent_type NOT IN ?) ORDER BY hc.charged_at DESC, hc.host_id`,
		poolID, []string{engine.MachineAgent, engine.SIMMachineAgent, engine.NetVizAgent}).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("pre-emptible hosts of %s: %w", poolID, translate(err))
	}
	out := make([]engine.HostCharge, len(rows))
	for i, r := range rows {
		out[i] = engine.HostCharge(r)
	}
	return out, nil
}

func leaseFromRow(r leaseRow) engine.Lease {
	l := engine.Lease(r)
	l.GrantedAt, l.HeartbeatAt, l.ExpiresAt = l.GrantedAt.UTC(), l.HeartbeatAt.UTC(), l.ExpiresAt.UTC()
	return l
}

func leasesFromRows(rows []leaseRow) []engine.Lease {
	out := make([]engine.Lease, len(rows))
	for i, r := range rows {
		out[i] = leaseFromRow(r)
	}
	return out
}

func (e engineStore) InsertLease(ctx context.Context, l *engine.Lease) error {
	return e.InsertLeases(ctx, []engine.Lease{*l})
}

// leaseColumns are a lease's columns in the order scanLease scans them.
const leaseColumns = `id, account_id, agent_id, agent_type, agent_version, pool_kind, pool_id, license_key, package,
	units_charged, host_id, app_id, app_name, node, tier, container_id, granted_at, heartbeat_at, expires_at,
	revoked_code, host_name, host_vcpu`

func scanLease(rows *sql.Rows) (engine.Lease, error) {
	var r leaseRow
	err := rows.Scan(&r.ID, &r.AccountID, &r.AgentID, &r.AgentType, &r.AgentVersion, &r.PoolKind, &r.PoolID, &r.LicenseKey,
		&r.Package, &r.UnitsCharged, &r.HostID, &r.AppID, &r.AppName, &r.Node, &r.Tier, &r.ContainerID,
		&r.GrantedAt, &r.HeartbeatAt, &r.ExpiresAt, &r.RevokedCode, &r.HostNameCopy, &r.HostVCPUCopy)
	return leaseFromRow(r), err
}

func (e engineStore) FindLease(ctx context.Context, accountID int64, id string) (engine.Lease, error) {
	l, err := rawOne(ctx, e.s, "SELECT "+leaseColumns+" FROM leases WHERE account_id = ? AND id = ?", []any{accountID, id}, scanLease)
	if err != nil {
		return engine.Lease{}, fmt.Errorf("find lease %s: %w", id, translate(err))
	}
	return l, nil
}

func (e engineStore) FindLeaseByAgent(ctx context.Context, accountID int64, agentID string) (engine.Lease, error) {
	var r leaseRow
	if err := e.s.conn(ctx).Where("account_id = ? AND agent_id = ?", accountID, agentID).Take(&r).Error; err != nil {
		return engine.Lease{}, fmt.Errorf("find lease of agent %s: %w", agentID, translate(err))
	}
	return leaseFromRow(r), nil
}

func (e engineStore) HostLeases(ctx context.Context, poolID, hostID string) ([]engine.Lease, error) {
	var rows []leaseRow
	err := e.s.conn(ctx).Where("pool_id = ? AND host_id = ? AND revoked_code IS NULL", poolID, hostID).
		Order("granted_at, id").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("leases of host %s: %w", hostID, translate(err))
	}
	return leasesFromRows(rows), nil
}

func (e engineStore) HostHolds(ctx context.Context, poolID, hostID, pkg string) (bool, error) {
	q := e.s.conn(ctx).Model(&leaseRow{}).Select("1").
		Where("pool_id = ? AND host_id = ? AND revoked_code IS NULL", poolID, hostID)
	if pkg != "" {
		q = q.Where("package = ?", pkg)
	}
	var found []int
	if err := q.Limit(1).Find(&found).Error; err != nil {
		return false, fmt.Errorf("leases of host %s: %w", hostID, translate(err))
	}
	return len(found) > 0, nil
}

func (e engineStore) RenewLease(ctx context.Context, accountID int64, id string, now, expires time.Time) error {
	res := e.s.conn(ctx).Model(&leaseRow{}).Where("account_id = ? AND id = ?", accountID, id).
		Updates(map[string]any{"heartbeat_at": now, "expires_at": expires})
	return affectedOne(res, "renew lease "+id)
}

// pgRenewSQL is RenewLive's statement on PostgreSQL, with pgx's
// placeholders: now, expires, account, lease ids, now. Each id is looked
// up through the primary key whatever the statistics say (see
// RenewLeases): the account and expiry tests are kept out of index
// matching and, in the same implicit transaction, sequential scans are off.
const pgRenewSQL = `WITH u AS (UPDATE leases SET heartbeat_at = $1, expires_at = $2
		WHERE id = ANY($4::text[]) AND account_id + 0 = $3 AND revoked_code IS NULL AND expires_at + interval '0 seconds' > $5
		RETURNING id, pool_kind, pool_id, host_id, package)
	SELECT u.id, u.pool_kind, u.pool_id, u.host_id, u.package, hc.package, hc.units, hc.fallback
	FROM u LEFT JOIN host_charges hc ON hc.pool_id = u.pool_id AND hc.host_id = u.host_id`

// pgRenewSettings are RenewLive's plan settings on PostgreSQL, for its
// implicit transaction only: the store plans every statement afresh
// (PgxConfig), which was two thirds of PostgreSQL's CPU per heartbeat, and
// this one's plan is primary-key lookups whatever the tables' sizes, so the
// connection's generic plan serves it.
const pgRenewSettings = "SELECT set_config('plan_cache_mode', 'auto', true), set_config('enable_seqscan', 'off', true)"

func (e engineStore) RenewLive(ctx context.Context, accountID int64, ids []string, now, expires time.Time) ([]engine.Renewed, error) {
	type renewed struct {
		ID, PoolKind, PoolID, HostID, Package string
		HcPackage                             *string
		HcUnits                               *int64
		HcFallback                            *bool
	}
	var rows []renewed
	args := []any{now, expires, accountID, textArray(ids), now}
	scan := func(row interface{ Scan(...any) error }) error {
		var r renewed
		if err := row.Scan(&r.ID, &r.PoolKind, &r.PoolID, &r.HostID, &r.Package, &r.HcPackage, &r.HcUnits, &r.HcFallback); err != nil {
			return err
		}
		rows = append(rows, r)
		return nil
	}
	var err error
	sqlDB, pooled := e.s.pooled()
	switch {
	case e.s.dialect == Postgres && pooled:
		// One round trip on pgx itself (GORM's and database/sql's
		// reflection were a seventh of a heartbeat's CPU).
		err = onPgx(ctx, sqlDB, func(c *pgx.Conn) error {
			b := &pgx.Batch{}
			b.Queue(pgRenewSettings)
			b.Queue(pgRenewSQL, args...).Query(func(rs pgx.Rows) error {
				for rs.Next() {
					if err := scan(rs); err != nil {
						return err
					}
				}
				return rs.Err()
			})
			return c.SendBatch(ctx, b).Close()
		})
	case e.s.dialect == Postgres: // in a transaction
		var rs *sql.Rows
		if rs, err = e.s.db.Statement.ConnPool.QueryContext(ctx, pgRenewSQL, args...); err == nil {
			for err == nil && rs.Next() {
				err = scan(rs)
			}
			err = cmp.Or(err, rs.Err(), rs.Close())
		}
	default:
		// SQLite has no writes in WITH, but its RETURNING takes scalar
		// subqueries: one statement too, in its own implicit transaction.
		// Its leases are looked up by id (sqliteByIDs).
		hc := func(col string) string {
			return "(SELECT hc." + col + " FROM host_charges hc WHERE hc.pool_id = leases.pool_id AND hc.host_id = leases.host_id) AS hc_" + col
		}
		err = e.s.conn(ctx).Raw(`UPDATE leases SET heartbeat_at = ?, expires_at = ?
			WHERE `+sqliteByIDs+` AND revoked_code IS NULL AND +expires_at > ?
			RETURNING id, pool_kind, pool_id, host_id, package, `+hc("package")+", "+hc("units")+", "+hc("fallback"),
			now, expires, accountID, ids, now).Find(&rows).Error
	}
	if err != nil {
		return nil, fmt.Errorf("renew %d leases: %w", len(ids), translate(err))
	}
	out := make([]engine.Renewed, len(rows))
	for i, r := range rows {
		out[i].Lease = engine.Lease{ID: r.ID, AccountID: accountID, PoolKind: r.PoolKind, PoolID: r.PoolID, HostID: r.HostID,
			Package: r.Package, HeartbeatAt: now, ExpiresAt: expires}
		if r.HcUnits != nil {
			hc := &engine.HostCharge{PoolID: r.PoolID, HostID: r.HostID, AccountID: accountID, Units: *r.HcUnits,
				Fallback: r.HcFallback != nil && *r.HcFallback}
			if r.HcPackage != nil {
				hc.Package = *r.HcPackage
			}
			out[i].Charge = hc
		}
	}
	return out, nil
}

// sqliteByIDs selects an account's leases by their ids (arguments: the
// account, the ids) on SQLite, each looked up through the primary key:
// given "account_id = ? AND id IN (…)", SQLite walks all of the account's
// leases through an account index and tests each against the list (16
// heartbeats at once: 836/s instead of 10 000/s; a batch heartbeat of 1 000
// ids on 50 000 leases: 5 600 agents/s). The unary + keeps account_id and,
// where a statement tests it, expires_at out of index matching: they still
// filter every row found.
const sqliteByIDs = "+account_id = ? AND id IN ?"

// RenewLeases renews the live leases among ids. Call it in a transaction.
func (e engineStore) RenewLeases(ctx context.Context, accountID int64, ids []string, now, expires time.Time) ([]string, error) {
	var renewed []string
	q, args := "UPDATE leases SET heartbeat_at = ?, expires_at = ? WHERE "+sqliteByIDs+
		" AND revoked_code IS NULL AND +expires_at > ? RETURNING id", []any{now, expires, accountID, ids, now}
	if e.s.dialect == Postgres {
		// The ids as one array, each looked up through the primary key,
		// whatever the planner believes of the table. Right after a burst
		// of registrations the leases were never analysed: it then took the
		// account's handful of rows from an account index and compared
		// each with every id (1.7 s per 1 000 ids on 10 000 leases), and
		// with the default costs it hashes the whole table once a batch
		// holds a few hundred ids. So the other conditions are kept out of
		// index matching (account_id + 0, expires_at + 0 s: they still
		// filter every row) and sequential scans are off until the
		// transaction ends: the only plan left is the primary key's.
		err := e.s.conn(ctx).Exec("SELECT set_config('enable_seqscan', 'off', true)").Error
		if err != nil {
			return nil, fmt.Errorf("renew %d leases: %w", len(ids), translate(err))
		}
		q = "UPDATE leases l SET heartbeat_at = ?, expires_at = ? WHERE l.id = ANY(?::text[]) " +
			"AND l.account_id + 0 = ? AND l.revoked_code IS NULL AND l.expires_at + interval '0 seconds' > ? RETURNING l.id"
		args = []any{now, expires, textArray(ids), accountID, now}
	}
	err := e.s.conn(ctx).Raw(q, args...).Find(&renewed).Error
	if err != nil {
		return nil, fmt.Errorf("renew %d leases: %w", len(ids), translate(err))
	}
	return renewed, nil
}

// byIDs is sqliteByIDs on SQLite; PostgreSQL plans it well as it is.
func (e engineStore) byIDs() string {
	if e.s.dialect == Postgres {
		return "account_id = ? AND id IN ?"
	}
	return sqliteByIDs
}

func (e engineStore) RevokedLeases(ctx context.Context, accountID int64, ids []string) ([]engine.Lease, error) {
	var rows []leaseRow
	err := e.s.conn(ctx).Where(e.byIDs()+" AND revoked_code IS NOT NULL", accountID, ids).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("revoked leases: %w", translate(err))
	}
	return leasesFromRows(rows), nil
}

func (e engineStore) RevokeLeases(ctx context.Context, accountID int64, ids []string, code string) error {
	if len(ids) == 0 {
		return nil
	}
	err := e.s.conn(ctx).Model(&leaseRow{}).Where(e.byIDs(), accountID, ids).Update("revoked_code", code).Error
	if err != nil {
		return fmt.Errorf("revoke %d leases: %w", len(ids), translate(err))
	}
	return nil
}

func (e engineStore) DeleteLease(ctx context.Context, accountID int64, id string) error {
	res, err := e.s.rawExec(ctx, "DELETE FROM leases WHERE account_id = ? AND id = ?", accountID, id)
	return affectedRow(res, err, "delete lease "+id)
}

func (e engineStore) ExpiredLeases(ctx context.Context, now time.Time, limit int) ([]engine.Lease, error) {
	var rows []leaseRow
	if err := e.s.conn(ctx).Where("expires_at <= ?", now).Order("expires_at").Limit(limit).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("expired leases: %w", translate(err))
	}
	return leasesFromRows(rows), nil
}

func (e engineStore) NextExpiry(ctx context.Context, now time.Time) (time.Time, error) {
	var rows []leaseRow
	if err := e.s.conn(ctx).Select("expires_at").Where("expires_at > ?", now).Order("expires_at").Limit(1).Find(&rows).Error; err != nil {
		return time.Time{}, fmt.Errorf("next lease expiry: %w", translate(err))
	}
	if len(rows) == 0 {
		return time.Time{}, nil
	}
	return rows[0].ExpiresAt.UTC(), nil
}

func (e engineStore) Leases(ctx context.Context, q engine.LeaseQuery) ([]engine.Lease, error) {
	db := e.s.conn(ctx).Where("account_id = ? AND revoked_code IS NULL AND expires_at > ?", q.AccountID, q.Now)
	if q.Host != "" {
		db = db.Where("host_id = ?", q.Host)
	}
	if q.AppID != nil {
		db = db.Where("app_id = ?", *q.AppID)
	}
	if q.AgentType != "" {
		db = db.Where("agent_type = ?", q.AgentType)
	}
	if q.LicenseKey != "" {
		db = db.Where("license_key = ?", q.LicenseKey)
	}
	var rows []leaseRow
	if err := db.Order("granted_at, id").Offset(q.Offset).Limit(q.Limit).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list leases: %w", translate(err))
	}
	return leasesFromRows(rows), nil
}

func (e engineStore) CountLiveLeases(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := e.s.conn(ctx).Model(&leaseRow{}).Where("revoked_code IS NULL AND expires_at > ?", now).Count(&n).Error
	if err != nil {
		return 0, fmt.Errorf("count leases: %w", translate(err))
	}
	return n, nil
}

func (e engineStore) SetPeakUsage(ctx context.Context, ruleID string, n int64) error {
	err := e.s.conn(ctx).Exec("UPDATE license_rules SET peak_usage = ? WHERE id = ? AND (peak_usage IS NULL OR peak_usage < ?)",
		n, ruleID, n).Error
	if err != nil {
		return fmt.Errorf("peak usage of rule %s: %w", ruleID, translate(err))
	}
	return nil
}

func (e engineStore) AddEvents(ctx context.Context, evs []engine.Event) error {
	if len(evs) == 0 {
		return nil
	}
	const columns = 14
	err := chunks(len(evs), func(from, to int) error {
		args := make([]any, 0, (to-from)*columns)
		for _, ev := range evs[from:to] {
			args = append(args, ev.At, ev.AccountID, ev.Kind, ev.PoolKind, ev.PoolID, ev.Package, ev.Units, ev.AgentID,
				ev.AgentType, ev.AgentVersion, ev.HostID, ev.AppID, ev.AppName, ev.Reason)
		}
		_, err := e.s.rawExec(ctx, `INSERT INTO usage_events (at, account_id, kind, pool_kind, pool_id, package, units,
			agent_id, agent_type, agent_version, host_id, app_id, app_name, reason) VALUES `+valueRows(to-from, columns), args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("append %d usage events: %w", len(evs), translate(err))
	}
	return nil
}

// HostCopyWindow is how long after a host's name or vCPU changed grouped
// usage reads them from the host rather than from its leases' copies. A
// lease granted while its host changed can have copied the old values;
// RefreshLeaseHosts, run by the leader every few seconds, brings the
// copies of hosts changed within the window up to date long before it
// ends.
const HostCopyWindow = 24 * time.Hour

// usageColumns are the columns of a grouped-usage row: a live lease with
// its host's name and vCPU (the lease's copy, or the host's own when it
// changed within HostCopyWindow) and, where the host is charged fallback
// units in the lease's allocation, that charge.
const usageColumns = `l.agent_type, l.agent_version, l.pool_kind, l.pool_id, l.license_key, l.host_id,
	l.app_id, l.app_name, l.node, l.container_id,
	COALESCE(CASE WHEN h.host_id IS NULL THEN l.host_name ELSE h.name END, l.host_id),
	CASE WHEN h.host_id IS NULL THEN l.host_vcpu ELSE h.vcpu END,
	hc.package, hc.units`

// sqliteUsageColumns are usageColumns with the host's name and vCPU as
// the columns they are taken from: the lease's copies, the changed host's
// id, name and vCPU (sqliteUsage picks). An expression's text has no
// declared type, and the driver (_texttotime) tries every time format on
// each such value: 11 % of a grouped usage's CPU went to parsing host
// names as times.
const sqliteUsageColumns = `l.agent_type, l.agent_version, l.pool_kind, l.pool_id, l.license_key, l.host_id,
	l.app_id, l.app_name, l.node, l.container_id, l.host_name, l.host_vcpu, h.host_id, h.name, h.vcpu,
	hc.package, hc.units`

// usageQuery is grouped usage on the embedded store; the %s filters the
// leases by their column. As on PostgreSQL, the hosts changed within the
// window and the fallback charges (both few) are read once each, through
// their partial indexes, and joined to the leases by automatic indexes:
// looked up lease by lease they were two index searches and two table
// reads per lease, a third of the query.
const usageQuery = `SELECT ` + sqliteUsageColumns + `
	FROM leases l
	LEFT JOIN (SELECT host_id, name, vcpu FROM hosts INDEXED BY hosts_changed
		WHERE changed_at > @since AND account_id = @account LIMIT -1) h ON h.host_id = l.host_id
	LEFT JOIN (SELECT pool_id, host_id, package, units FROM host_charges INDEXED BY host_charges_fallback
		WHERE fallback AND account_id = @account LIMIT -1) hc ON hc.pool_id = l.pool_id AND hc.host_id = l.host_id
	WHERE l.account_id = @account AND l.revoked_code IS NULL AND l.expires_at > @now %s`

// pgUsageLookups joins the leases on PostgreSQL to the account's hosts
// that changed within the window and to its fallback charges, each read
// once (both are few: a host changes rarely, a fallback charge lasts until
// units free up). As subqueries with OFFSET 0 neither can be planned as a
// lookup repeated for each lease: the planner used to choose that from
// statistics, and right after an estate came up (leases counted when the
// table was nearly empty, so an account's rows looked few) it scanned
// every host of the account once per lease, 255 ms instead of 6 ms for
// 4 500 leases of 100 applications on a 10 000-agent estate. (A primary-key
// lookup per lease is as safe but costs 4 ms more at 100 000 agents.)
const pgUsageLookups = `
	LEFT JOIN (SELECT h.host_id, h.name, h.vcpu FROM hosts h
		WHERE h.account_id = $3 AND h.changed_at > $2 OFFSET 0) h ON h.host_id = l.host_id
	LEFT JOIN (SELECT hc.pool_id, hc.host_id, hc.package, hc.units FROM host_charges hc
		WHERE hc.account_id = $3 AND hc.fallback OFFSET 0) hc ON hc.pool_id = l.pool_id AND hc.host_id = l.host_id`

// groupedBy is the column grouped usage by column groups the rows by: the
// rows reach the grouping in its order (engine.Store.UsageByApps), read so
// through an index or, by application name, sorted.
func groupedBy(column string) string {
	if column == "host_id" {
		return column
	}
	return "app_id"
}

// GroupedUsageSQL is the PostgreSQL query of grouped usage by column
// (app_id, app_name or host_id, of pgType): its arguments are the keys (an
// array), the start of the host copy window, the account and now. The
// benchmark times it alone too. The leases of an indexed column (app_id,
// host_id: an index on the account and the column) are read key by key
// through that index, whatever the statistics say, and so reach the
// grouping key by key; app_name has no index, and its keys are joined to
// one scan of the account's leases, sorted by application.
func GroupedUsageSQL(column, pgType string) string {
	live := "l.account_id = $3 AND l.revoked_code IS NULL AND l.expires_at > $4"
	if column == "app_name" {
		return "SELECT " + usageColumns + " FROM leases l JOIN unnest($1::" + pgType + "[]) AS k(v) ON l." + column + " = k.v" +
			pgUsageLookups + " WHERE " + live + " ORDER BY l." + groupedBy(column)
	}
	return "SELECT " + usageColumns + " FROM unnest($1::" + pgType + "[]) AS k(v)" +
		" CROSS JOIN LATERAL (SELECT * FROM leases l WHERE l." + column + " = k.v AND " + live + " OFFSET 0) l" +
		pgUsageLookups
}

// usage hands the live leases whose column (app_id, app_name or host_id)
// holds one of keys to sink, from one set-based query. Grouped usage reads
// thousands of rows per request, so on PostgreSQL (outside a transaction)
// the rows are decoded from pgx's wire values (database/sql's conversions
// cost a third of the query; see usageDecoder) and the keys are one array joined to the leases, so
// that the plan does not depend on how many there are. The rows reach sink
// as they arrive: it groups one key's rows while the database reads the
// next key's.
func (e engineStore) usage(ctx context.Context, accountID int64, now time.Time, column, pgType string, keys any, sink engine.UsageSink) error {
	if e.s.dialect != Postgres {
		return e.sqliteUsage(ctx, accountID, now, column, keys, sink)
	}
	if _, pooled := e.s.pooled(); pooled && e.s.dialect == Postgres {
		q := GroupedUsageSQL(column, pgType)
		err := e.s.withPgx(ctx, func(c *pgx.Conn) error {
			sink.Start() // a retry starts afresh
			rows, err := c.Query(ctx, q, keys, now.Add(-HostCopyWindow), accountID, now)
			if err != nil {
				return err
			}
			defer rows.Close()
			var r engine.UsageRow
			d := newUsageDecoder()
			for rows.Next() {
				if err := d.scan(rows, &r); err != nil {
					return err
				}
				if err := sink.Row(&r); err != nil {
					return err
				}
			}
			return rows.Err()
		})
		if err != nil {
			return fmt.Errorf("grouped usage: %w", translate(err))
		}
		return nil
	}
	var q *gorm.DB
	switch names, text := keys.([]string); {
	case text: // in a transaction: the same plan as outside one
		q = e.s.conn(ctx).Raw(GroupedUsageSQL(column, pgType), textArray(names), now.Add(-HostCopyWindow), accountID, now)
	default:
		q = e.s.conn(ctx).Raw(GroupedUsageSQL(column, pgType), keys, now.Add(-HostCopyWindow), accountID, now)
	}
	rows, err := q.Rows()
	if err != nil {
		return fmt.Errorf("grouped usage: %w", translate(err))
	}
	defer rows.Close()
	sink.Start()
	for rows.Next() {
		var (
			r     engine.UsageRow
			pkg   sql.NullString
			units sql.NullInt64
		)
		if err := rows.Scan(&r.AgentType, &r.AgentVersion, &r.PoolKind, &r.PoolID, &r.LicenseKey, &r.HostID,
			&r.AppID, &r.AppName, &r.Node, &r.ContainerID, &r.HostName, &r.HostVCPU, &pkg, &units); err != nil {
			return fmt.Errorf("grouped usage row: %w", translate(err))
		}
		r.HostPackage, r.HostUnits, r.HostFallback = pkg.String, units.Int64, pkg.Valid
		if err := sink.Row(&r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("grouped usage rows: %w", translate(err))
	}
	return nil
}

// sqliteUsage is usage on the embedded store.
func (e engineStore) sqliteUsage(ctx context.Context, accountID int64, now time.Time, column string, keys any, sink engine.UsageSink) error {
	rows, err := e.s.conn(ctx).Raw(fmt.Sprintf(usageQuery, "AND l."+column+" IN @keys ORDER BY l."+groupedBy(column)),
		sql.Named("since", now.Add(-HostCopyWindow)), sql.Named("account", accountID), sql.Named("now", now), sql.Named("keys", keys)).Rows()
	if err != nil {
		return fmt.Errorf("grouped usage: %w", translate(err))
	}
	defer rows.Close()
	sink.Start()
	var (
		r                       engine.UsageRow
		copyName, changed, name *string
		copyVCPU, vcpu          *int64
		pkg                     sql.NullString
		units                   sql.NullInt64
	)
	for rows.Next() {
		if err := rows.Scan(&r.AgentType, &r.AgentVersion, &r.PoolKind, &r.PoolID, &r.LicenseKey, &r.HostID,
			&r.AppID, &r.AppName, &r.Node, &r.ContainerID, &copyName, &copyVCPU, &changed, &name, &vcpu, &pkg, &units); err != nil {
			return fmt.Errorf("grouped usage row: %w", translate(err))
		}
		if changed == nil { // the lease's copy
			name, vcpu = copyName, copyVCPU
		}
		r.HostName, r.HostVCPU = r.HostID, vcpu
		if name != nil {
			r.HostName = *name
		}
		r.HostPackage, r.HostUnits, r.HostFallback = pkg.String, units.Int64, pkg.Valid
		if err := sink.Row(&r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("grouped usage rows: %w", translate(err))
	}
	return nil
}

func (e engineStore) UsageByApps(ctx context.Context, accountID int64, ids []int64, names []string, now time.Time, sink engine.UsageSink) error {
	if len(ids) > 0 {
		return e.usage(ctx, accountID, now, "app_id", "bigint", ids, sink)
	}
	return e.usage(ctx, accountID, now, "app_name", "text", names, sink)
}

func (e engineStore) UsageByHosts(ctx context.Context, accountID int64, hostIDs []string, now time.Time, sink engine.UsageSink) error {
	return e.usage(ctx, accountID, now, "host_id", "text", hostIDs, sink)
}

// refreshBatch bounds the leases one statement of RefreshLeaseHosts
// rewrites, so that a mass change of hosts does not lock many leases at
// once.
const refreshBatch = 1000

// RefreshLeaseHosts brings the host copies of leases up to date: those of
// hosts changed since since, and those of leases that have none. It
// returns how many leases it changed. Leases locked by another transaction
// (a heartbeat) are left for the next call, so that it never waits for, or
// deadlocks with, the engine's writes.
func (s *Store) RefreshLeaseHosts(ctx context.Context, since time.Time) (int64, error) {
	const update = `UPDATE leases SET
		host_name = (SELECT h.name FROM hosts h WHERE h.account_id = leases.account_id AND h.host_id = leases.host_id),
		host_vcpu = (SELECT h.vcpu FROM hosts h WHERE h.account_id = leases.account_id AND h.host_id = leases.host_id)
		WHERE id IN (SELECT l.id FROM leases l JOIN hosts h ON h.account_id = l.account_id AND h.host_id = l.host_id
			WHERE %s%s)`
	lock := fmt.Sprintf(" LIMIT %d", refreshBatch)
	if s.dialect == Postgres {
		lock = fmt.Sprintf(" ORDER BY l.id LIMIT %d FOR UPDATE OF l SKIP LOCKED", refreshBatch)
	}
	var total int64
	for _, step := range []struct {
		where string
		args  []any
	}{
		{"h.changed_at > ? AND (l.host_name IS DISTINCT FROM h.name OR l.host_vcpu IS DISTINCT FROM h.vcpu)", []any{since}},
		{"l.host_name IS NULL", nil},
	} {
		for range 100 { // at most 100 000 leases a call
			res := s.conn(ctx).Exec(fmt.Sprintf(update, step.where, lock), step.args...)
			if res.Error != nil {
				return total, fmt.Errorf("refresh host copies of leases: %w", translate(res.Error))
			}
			total += res.RowsAffected
			if res.RowsAffected < refreshBatch {
				break
			}
		}
	}
	return total, nil
}

// KeepLeaseHosts runs RefreshLeaseHosts every interval until ctx ends. Run
// it on the leader only. Its first call looks at every host ever changed,
// so that copies left stale while no leader ran are found; later calls at
// the hosts changed since shortly before the previous successful call.
func (s *Store) KeepLeaseHosts(ctx context.Context, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var since time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now().UTC()
		n, err := s.RefreshLeaseHosts(ctx, since)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("lease host copies", "error", err)
			continue
		case n > 0:
			log.Debug("brought lease host copies up to date", "leases", n)
		}
		since = start.Add(-time.Minute)
	}
}

func (e engineStore) Applications(ctx context.Context, accountID int64) ([]engine.Application, error) {
	var rows []struct {
		AppID int64
		Name  string
	}
	err := e.s.conn(ctx).Raw("SELECT app_id, name FROM applications WHERE account_id = ? ORDER BY app_id", accountID).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("applications: %w", translate(err))
	}
	out := make([]engine.Application, len(rows))
	for i, r := range rows {
		out[i] = engine.Application{ID: r.AppID, Name: r.Name}
	}
	return out, nil
}

func (e engineStore) AllPoolUsage(ctx context.Context) ([]engine.PoolUsage, error) {
	return e.poolUsage(ctx, 0)
}

// poolUsage is the units in use of every pool of the account (0: of all
// accounts).
func (e engineStore) poolUsage(ctx context.Context, accountID int64) ([]engine.PoolUsage, error) {
	q := "SELECT u.pool_id, p.account_id, p.kind, u.item, u.used FROM pool_usage u JOIN pools p ON p.id = u.pool_id"
	var args []any
	if accountID != 0 {
		q += " WHERE p.account_id = ?"
		args = append(args, accountID)
	}
	var rows []engine.PoolUsage
	err := e.s.conn(ctx).Raw(q+" ORDER BY p.account_id, u.pool_id, u.item", args...).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("pool usage: %w", translate(err))
	}
	return rows, nil
}

// PruneEvents deletes usage events older than before, at most batch per
// statement (each its own short transaction, so registrations never wait
// long), and returns how many went. A lease open at the cut keeps the
// event that opened it (its grant or last package change: the agent's last
// lifecycle event before the cut), live or ended since: analytics, and a
// rollup rebuilt after a reopen, find the lease from it.
func (e engineStore) PruneEvents(ctx context.Context, before time.Time, batch int) (int64, error) {
	q := fmt.Sprintf(`DELETE FROM usage_events WHERE id IN (SELECT ev.id FROM usage_events ev WHERE ev.at < ?
		AND NOT (ev.kind IN ('GRANTED', 'CHANGED') AND NOT EXISTS (SELECT 1 FROM usage_events x
			WHERE x.account_id = ev.account_id AND x.agent_id = ev.agent_id AND x.kind IN `+lifecycleKinds+`
			AND x.at < ? AND (x.at > ev.at OR (x.at = ev.at AND x.id > ev.id))))
		ORDER BY ev.at LIMIT %d)`, batch)
	var total int64
	for {
		res := e.s.conn(ctx).Exec(q, before, before)
		if res.Error != nil {
			return total, fmt.Errorf("prune usage events: %w", translate(res.Error))
		}
		total += res.RowsAffected
		if res.RowsAffected < int64(batch) {
			break
		}
	}
	// A saved set of open leases is of use only with the events from its
	// day's start on.
	cut := usage.DayOf(before)
	if usage.DayStart(cut).Before(before) {
		cut++
	}
	err := e.s.InTx(ctx, func(tx *Store) error {
		if err := tx.conn(ctx).Exec("UPDATE analytics_state SET open_first = ? WHERE open_first >= 0 AND open_first < ?", cut, cut).Error; err != nil {
			return err
		}
		// The replays replicas keep of the days cut are read again.
		if total > 0 {
			if err := tx.conn(ctx).Exec("UPDATE analytics_state SET gen = gen + 1").Error; err != nil {
				return err
			}
		}
		return tx.conn(ctx).Exec("DELETE FROM analytics_open_sets WHERE day < ?", cut).Error
	})
	if err != nil {
		return total, fmt.Errorf("prune open leases of analytics: %w", translate(err))
	}
	return total, nil
}

// AnalyticsEvents reads the account's events before `before` (lease
// lifecycle events, or refusals from `from` on when refusals is set),
// optionally of some pools only, in the order they happened. Host names
// come from the hosts table.
const lifecycleKinds = "('GRANTED', 'CHANGED', 'RELEASED', 'EXPIRED', 'PREEMPTED')"

const analyticsColumns = `ev.at, ev.kind, COALESCE(ev.pool_id, ''), COALESCE(ev.package, ''), ev.units,
		COALESCE(ev.agent_id, ''), COALESCE(ev.agent_type, ''), ev.agent_version, COALESCE(ev.host_id, ''),
		COALESCE(h.name, ev.host_id, ''), ev.app_id, ev.app_name, COALESCE(ev.reason, '')`

func (e engineStore) AnalyticsEvents(ctx context.Context, q usage.EventQuery) ([]usage.EventRow, error) {
	var out []usage.EventRow
	err := e.EachAnalyticsEvent(ctx, q, func() { out = out[:0] }, func(r *usage.EventRow) { out = append(out, *r) })
	return out, err
}

func (e engineStore) EachAnalyticsEvent(ctx context.Context, q usage.EventQuery, reset func(), each func(*usage.EventRow)) error {
	if q.PoolIDs != nil && len(q.PoolIDs) == 0 {
		return nil
	}
	where := []string{"ev.account_id = ?", "ev.at < ?"}
	args := []any{q.AccountID, q.Before}
	switch {
	case q.Refusals:
		where = append(where, "ev.kind = 'REFUSED'", "ev.at >= ?")
		args = append(args, q.From)
	case q.OpenAt:
		// The leases open at From: each candidate agent's last lifecycle
		// event before From, when that is a grant or a package change.
		// Candidates are the agents live now and granted before From, and
		// those whose lease ended (or changed) since From.
		args = []any{q.AccountID, q.From, q.AccountID, q.From, q.AccountID, q.From}
		where = []string{"ev.kind IN ('GRANTED', 'CHANGED')"}
		if q.PoolIDs != nil {
			where = append(where, "ev.pool_id IN ?")
			args = append(args, q.PoolIDs)
		}
		cand := `WITH cand AS (
			SELECT agent_id FROM leases WHERE account_id = ? AND granted_at < ?
			UNION SELECT agent_id FROM usage_events WHERE account_id = ? AND at >= ? AND kind IN ('CHANGED', 'RELEASED', 'EXPIRED', 'PREEMPTED'))`
		if q.AgentIDs != nil { // these agents only
			cand = `WITH cand AS (SELECT DISTINCT agent_id FROM usage_events WHERE account_id = ? AND agent_id IN ?)`
			args = append([]any{q.AccountID, q.AgentIDs}, args[4:]...)
		}
		last := `SELECT x.id FROM usage_events x WHERE x.account_id = ? AND x.agent_id = cand.agent_id
				AND x.at < ? AND x.kind IN ` + lifecycleKinds + ` ORDER BY x.at DESC, x.id DESC LIMIT 1`
		// PostgreSQL: one backward index probe per candidate (LATERAL);
		// SQLite has no LATERAL but plans the correlated subquery so.
		from := `cand JOIN usage_events ev ON ev.id = (` + last + `)`
		if e.s.dialect == Postgres {
			from = `cand CROSS JOIN LATERAL (` + last + `) l JOIN usage_events ev ON ev.id = l.id`
		}
		return e.analyticsRows(ctx, reset, each, cand+` SELECT `+analyticsColumns+` FROM `+from+`
			LEFT JOIN hosts h ON h.account_id = ev.account_id AND h.host_id = ev.host_id
			WHERE `+strings.Join(where, " AND ")+` ORDER BY ev.at, ev.id`, args...)
	default:
		where = append(where, "ev.kind IN "+lifecycleKinds)
		if !q.From.IsZero() {
			where = append(where, "ev.at >= ?")
			args = append(args, q.From)
		}
	}
	if q.PoolIDs != nil {
		where = append(where, "ev.pool_id IN ?")
		args = append(args, q.PoolIDs)
	}
	// Refusals in time order only, as their index holds them: sorting
	// 100,000s of them by id within equal times costs a third of the read,
	// and their answer does not depend on it.
	order := "ev.at, ev.id"
	if q.Refusals {
		order = "ev.at"
	}
	return e.analyticsRows(ctx, reset, each, `SELECT `+analyticsColumns+`
		FROM usage_events ev LEFT JOIN hosts h ON h.account_id = ev.account_id AND h.host_id = ev.host_id
		WHERE `+strings.Join(where, " AND ")+` ORDER BY `+order, args...)
}

// eachRow runs a read and calls row with each row's scanner. On a pooled
// PostgreSQL store the rows are scanned by pgx itself: database/sql's
// conversions of tens of thousands of rows cost as much as the query. A
// read run again (a lost connection) calls reset first.
func (s *Store) eachRow(ctx context.Context, query string, args []any, reset func(), row func(scan func(...any) error) error) error {
	return s.eachRawRow(ctx, query, args, reset, nil, row)
}

// eachRawRow is eachRow that, on a pooled PostgreSQL store and when raw is
// not nil, hands each row's undecoded values to raw instead (nil for NULL;
// fds says each one's type and format). Both may be called in one read:
// raw returns errNotRaw, before it takes any value of the read, when the
// columns are not as it expects, and the rows are then scanned.
func (s *Store) eachRawRow(ctx context.Context, query string, args []any, reset func(),
	raw func(fds []pgconn.FieldDescription, vals [][]byte) error, row func(scan func(...any) error) error) error {
	if _, pooled := s.pooled(); pooled && s.dialect == Postgres {
		q, pargs := pgxPlaceholders(query, args)
		ran := false
		return s.withPgx(ctx, func(c *pgx.Conn) error {
			if ran { // rows of the lost run were handed out
				reset()
			}
			ran = true
			rows, err := c.Query(ctx, q, pargs...)
			if err != nil {
				return err
			}
			defer rows.Close()
			useRaw := raw != nil
			for rows.Next() {
				if useRaw {
					err := raw(rows.FieldDescriptions(), rows.RawValues())
					if err == nil {
						continue
					}
					if !errors.Is(err, errNotRaw) {
						return err
					}
					useRaw = false
				}
				if err := row(rows.Scan); err != nil {
					return err
				}
			}
			return rows.Err()
		})
	}
	rows, err := s.conn(ctx).Raw(query, args...).Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := row(rows.Scan); err != nil {
			return err
		}
	}
	return rows.Err()
}

// errNotRaw: the columns of a read are not what its raw decoder knows.
var errNotRaw = errors.New("columns not decodable raw")

// pgxPlaceholders turns a query written for GORM (? placeholders, a
// slice after IN) into one for pgx: $n placeholders, and "IN ?" of a slice
// into "= ANY($n)" with the slice as one array parameter.
func pgxPlaceholders(query string, args []any) (string, []any) {
	var b strings.Builder
	out := make([]any, 0, len(args))
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] != '?' || n >= len(args) {
			b.WriteByte(query[i])
			continue
		}
		arg := args[n]
		n++
		out = append(out, arg)
		ph := "$" + strconv.Itoa(len(out))
		if k := reflect.ValueOf(arg).Kind(); k == reflect.Slice {
			if cur := b.String(); strings.HasSuffix(strings.ToUpper(strings.TrimRight(cur, " ")), " IN") {
				trimmed := strings.TrimRight(cur, " ")
				b.Reset()
				b.WriteString(trimmed[:len(trimmed)-3])
				b.WriteString(" = ANY(" + ph + ")")
				continue
			}
		}
		b.WriteString(ph)
	}
	return b.String(), out
}

// Analytics returns the store of the usage analytics.
func (s *Store) Analytics() usage.AnalyticsStore { return engineStore{s} }

// CountRequests is one upsert in the registration's transaction.
func (e engineStore) CountRequests(ctx context.Context, accountID int64, month string, shard, n int) error {
	_, err := e.s.rawExec(ctx, "INSERT INTO registration_counters (account_id, month, shard, request_count) VALUES (?, ?, ?, ?)"+
		countersUpsert, accountID, month, shard, n)
	if err != nil {
		return fmt.Errorf("count registration requests: %w", translate(err))
	}
	return nil
}
