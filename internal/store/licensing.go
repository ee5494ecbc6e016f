package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/lcorp/licensing-controller/internal/licensing"
)

type licenseRow struct {
	ID        string `gorm:"primaryKey"`
	AccountID int64
	Document  string
	Builtin   bool
	Payload   string
	CreatedAt time.Time
	UpdatedAt time.Time
}

func (licenseRow) TableName() string { return "licenses" }

type allocationRow struct {
	ID                   string `gorm:"primaryKey"`
	AccountID            int64
	Name                 string
	LicenseKey           string
	FallbackModeDelay    bool
	MachineAgentPriority bool
	IsDefault            bool
	Disabled             bool
	Filters              string // JSON: small, always read whole
	Limits               string
	Tags                 string
	CreatedAt            time.Time
	UpdatedAt            time.Time
}

func (allocationRow) TableName() string { return "allocations" }

// licensingStore adapts Store to licensing.Store.
type licensingStore struct{ s *Store }

var _ licensing.Store = licensingStore{}

// Licensing returns the store of licences and allocations.
func (s *Store) Licensing() licensing.Store { return licensingStore{s} }

func (l licensingStore) InTx(ctx context.Context, fn func(licensing.Store) error) error {
	return l.s.InTx(ctx, func(tx *Store) error { return fn(licensingStore{tx}) })
}

func (l licensingStore) account(ctx context.Context, id int64, lock bool) (licensing.Account, error) {
	var r accountRow
	if lock {
		// Writers of one account's allocations, licences and rules queue
		// on this row (SQLite has a single writer already); the revision
		// tells the usage engine its cached pools are stale.
		res := l.s.conn(ctx).Model(&accountRow{}).Where("id = ?", id).Update("revision", gorm.Expr("revision + 1"))
		l.s.afterCommit(func() { l.s.revs.forget(id) })
		if err := affectedOne(res, fmt.Sprintf("lock account %d", id)); err != nil {
			return licensing.Account{}, err
		}
	}
	if err := l.s.conn(ctx).Where("id = ?", id).Take(&r).Error; err != nil {
		return licensing.Account{}, fmt.Errorf("find account %d: %w", id, translate(err))
	}
	return licensing.Account{ID: r.ID, Name: r.Name, GlobalID: r.GlobalID, AccessKey: r.AccessKey, CreatedAt: r.CreatedAt.UTC(),
		Revision: r.Revision}, nil
}

// AccountRevision reads the one number that says whether anything of the
// account changed, by database/sql directly on a pooled connection: it is
// asked on every /info. Outside a transaction it comes from the revision
// cache while that is live (revisions.go).
func (l licensingStore) AccountRevision(ctx context.Context, id int64) (rev int64, err error) {
	// The pool as GORM holds it: on PostgreSQL the retryPool, which reads
	// once more on a fresh connection when the server closed one.
	if db, ok := l.s.db.Statement.ConnPool.(interface {
		QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	}); ok && l.s.isPool() {
		// A read the read replica may answer neither uses nor fills the
		// cache: the cache follows the primary, and a lagging standby's
		// revision kept there would hide a change already heard.
		if !onReplica(ctx) {
			cached, seq, hit := l.s.revs.get(id)
			if hit {
				return cached, nil
			}
			defer func() {
				if err == nil {
					l.s.revs.put(id, rev, seq)
				}
			}()
		}
		q := "SELECT revision FROM accounts WHERE id = ?"
		if l.s.dialect == Postgres {
			q = "SELECT revision FROM accounts WHERE id = $1"
		}
		err = db.QueryRowContext(ctx, q, id).Scan(&rev)
		if errors.Is(err, sql.ErrNoRows) {
			err = gorm.ErrRecordNotFound
		}
	} else {
		res := l.s.conn(ctx).Raw("SELECT revision FROM accounts WHERE id = ?", id).Find(&rev)
		if err = res.Error; err == nil && res.RowsAffected == 0 {
			err = gorm.ErrRecordNotFound
		}
	}
	if err != nil {
		return 0, fmt.Errorf("account %d revision: %w", id, translate(err))
	}
	return rev, nil
}

func (l licensingStore) LockAccount(ctx context.Context, id int64) (licensing.Account, error) {
	return l.account(ctx, id, true)
}

func (l licensingStore) FindAccount(ctx context.Context, id int64) (licensing.Account, error) {
	return l.account(ctx, id, false)
}

func licenseToRow(lic *licensing.License) (licenseRow, error) {
	payload, err := json.Marshal(lic.Payload)
	if err != nil {
		return licenseRow{}, fmt.Errorf("encode licence payload: %w", err)
	}
	return licenseRow{ID: lic.ID, AccountID: lic.AccountID, Document: lic.Document, Builtin: lic.Builtin,
		Payload: string(payload), CreatedAt: lic.CreatedAt, UpdatedAt: lic.UpdatedAt}, nil
}

// CreateLicense is a plain INSERT: never an upsert, which would move another
// account's row that has the same id.
func (l licensingStore) CreateLicense(ctx context.Context, lic *licensing.License) error {
	r, err := licenseToRow(lic)
	if err != nil {
		return err
	}
	if err := l.s.conn(ctx).Create(&r).Error; err != nil {
		return fmt.Errorf("insert licence %s: %w", lic.ID, translate(err))
	}
	return nil
}

// UpdateLicense updates the row only where both the account and the id match.
func (l licensingStore) UpdateLicense(ctx context.Context, lic *licensing.License) error {
	r, err := licenseToRow(lic)
	if err != nil {
		return err
	}
	res := l.s.conn(ctx).Model(&licenseRow{}).Where("account_id = ? AND id = ?", lic.AccountID, lic.ID).
		Select("document", "builtin", "payload", "updated_at").Updates(&r)
	return affectedOne(res, "update licence "+lic.ID)
}

func licenseFromRow(r licenseRow) (licensing.License, error) {
	lic := licensing.License{ID: r.ID, AccountID: r.AccountID, Document: r.Document, Builtin: r.Builtin,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
	if err := json.Unmarshal([]byte(r.Payload), &lic.Payload); err != nil {
		return licensing.License{}, fmt.Errorf("decode licence %s: %w", r.ID, err)
	}
	return lic, nil
}

func (l licensingStore) FindLicense(ctx context.Context, accountID int64, id string) (licensing.License, error) {
	var r licenseRow
	if err := l.s.conn(ctx).Where("account_id = ? AND id = ?", accountID, id).Take(&r).Error; err != nil {
		return licensing.License{}, fmt.Errorf("find licence %s: %w", id, translate(err))
	}
	return licenseFromRow(r)
}

func (l licensingStore) FindLicenses(ctx context.Context, accountID int64, offset, limit int) ([]licensing.License, error) {
	var rows []licenseRow
	q := l.s.conn(ctx).Where("account_id = ?", accountID).Order("updated_at DESC, id").Offset(offset)
	if limit > 0 {
		q = q.Limit(limit)
	}
	if err := q.Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("find licences: %w", translate(err))
	}
	out := make([]licensing.License, 0, len(rows))
	for _, r := range rows {
		lic, err := licenseFromRow(r)
		if err != nil {
			return nil, err
		}
		out = append(out, lic)
	}
	return out, nil
}

func (l licensingStore) DeleteLicense(ctx context.Context, accountID int64, id string) error {
	res := l.s.conn(ctx).Where("account_id = ? AND id = ?", accountID, id).Delete(&licenseRow{})
	return affectedOne(res, "delete licence "+id)
}

type filterJSON struct {
	ID, Type, Operator, Value string
}

type limitJSON struct {
	ID      string
	Package string
	Units   int64
}

func allocationToRow(a licensing.Allocation) (allocationRow, error) {
	fs := make([]filterJSON, len(a.Filters))
	for i, f := range a.Filters {
		fs[i] = filterJSON(f)
	}
	ls := make([]limitJSON, len(a.Limits))
	for i, l := range a.Limits {
		ls[i] = limitJSON(l)
	}
	fb, err1 := json.Marshal(fs)
	lb, err2 := json.Marshal(ls)
	tb, err3 := json.Marshal(a.Tags)
	if err := firstErr(err1, err2, err3); err != nil {
		return allocationRow{}, fmt.Errorf("encode allocation %s: %w", a.ID, err)
	}
	return allocationRow{ID: a.ID, AccountID: a.AccountID, Name: a.Name, LicenseKey: a.LicenseKey,
		FallbackModeDelay: a.FallbackModeDelay, MachineAgentPriority: a.MachineAgentPriority, IsDefault: a.IsDefault,
		Disabled: a.Disabled, Filters: string(fb), Limits: string(lb), Tags: string(tb), CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}, nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func allocationFromRow(r allocationRow) (licensing.Allocation, error) {
	var (
		fs []filterJSON
		ls []limitJSON
	)
	a := licensing.Allocation{ID: r.ID, AccountID: r.AccountID, Name: r.Name, LicenseKey: r.LicenseKey,
		FallbackModeDelay: r.FallbackModeDelay, MachineAgentPriority: r.MachineAgentPriority, IsDefault: r.IsDefault,
		Disabled: r.Disabled, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
	err := firstErr(json.Unmarshal([]byte(r.Filters), &fs), json.Unmarshal([]byte(r.Limits), &ls), json.Unmarshal([]byte(r.Tags), &a.Tags))
	if err != nil {
		return licensing.Allocation{}, fmt.Errorf("decode allocation %s: %w", r.ID, err)
	}
	a.Filters = make([]licensing.Filter, len(fs))
	for i, f := range fs {
		a.Filters[i] = licensing.Filter(f)
	}
	a.Limits = make([]licensing.Limit, len(ls))
	for i, l := range ls {
		a.Limits[i] = licensing.Limit(l)
	}
	if a.Tags == nil {
		a.Tags = []string{}
	}
	return a, nil
}

func (l licensingStore) CreateAllocation(ctx context.Context, a *licensing.Allocation) error {
	r, err := allocationToRow(*a)
	if err != nil {
		return err
	}
	if err := l.s.conn(ctx).Create(&r).Error; err != nil {
		return fmt.Errorf("insert allocation %s: %w", a.Name, translate(err))
	}
	return nil
}

func (l licensingStore) UpdateAllocation(ctx context.Context, a *licensing.Allocation) error {
	r, err := allocationToRow(*a)
	if err != nil {
		return err
	}
	res := l.s.conn(ctx).Model(&allocationRow{}).Where("account_id = ? AND id = ?", a.AccountID, a.ID).
		Select("name", "fallback_mode_delay", "machine_agent_priority", "disabled", "filters", "limits", "tags", "updated_at").
		Updates(&r)
	return affectedOne(res, "update allocation "+a.ID)
}

func (l licensingStore) DeleteAllocation(ctx context.Context, accountID int64, id string) error {
	res := l.s.conn(ctx).Where("account_id = ? AND id = ? AND NOT is_default", accountID, id).Delete(&allocationRow{})
	return affectedOne(res, "delete allocation "+id)
}

func (l licensingStore) FindAllocations(ctx context.Context, accountID int64) ([]licensing.Allocation, error) {
	var rows []allocationRow
	if err := l.s.conn(ctx).Where("account_id = ?", accountID).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("find allocations: %w", translate(err))
	}
	out := make([]licensing.Allocation, 0, len(rows))
	for _, r := range rows {
		a, err := allocationFromRow(r)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func (l licensingStore) CountPoolLeases(ctx context.Context, accountID int64, poolID string) (int64, error) {
	var n int64
	err := l.s.conn(ctx).Model(&leaseRow{}).Where("account_id = ? AND pool_id = ? AND revoked_code IS NULL", accountID, poolID).
		Count(&n).Error
	if err != nil {
		return 0, fmt.Errorf("count leases of %s: %w", poolID, translate(err))
	}
	return n, nil
}

func (l licensingStore) PoolUsage(ctx context.Context, accountID int64, poolID string) (map[string]int64, error) {
	u, err := l.PoolUsages(ctx, accountID, []string{poolID})
	if err != nil {
		return nil, err
	}
	return u[poolID], nil
}

// PoolUsages reads the usage of several pools of the account in one query.
func (l licensingStore) PoolUsages(ctx context.Context, accountID int64, poolIDs []string) (map[string]map[string]int64, error) {
	out := make(map[string]map[string]int64, len(poolIDs))
	for _, id := range poolIDs {
		out[id] = map[string]int64{}
	}
	if len(poolIDs) == 0 {
		return out, nil
	}
	var rows []struct {
		PoolID string
		Item   string
		Used   int64
	}
	err := l.s.conn(ctx).Raw(`SELECT u.pool_id, u.item, u.used FROM pool_usage u JOIN pools p ON p.id = u.pool_id
		WHERE p.account_id = ? AND p.id IN ?`, accountID, poolIDs).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("usage of %d pools: %w", len(poolIDs), translate(err))
	}
	for _, r := range rows {
		out[r.PoolID][r.Item] = r.Used
	}
	return out, nil
}

// ReleasePool records a release of every live lease of the pool, then
// deletes its leases, host charges and counters.
func (l licensingStore) ReleasePool(ctx context.Context, accountID int64, poolID, reason string, now time.Time) error {
	db := l.s.conn(ctx)
	err := db.Exec(`INSERT INTO usage_events (at, account_id, kind, pool_kind, pool_id, package, units, agent_id,
		agent_type, agent_version, host_id, app_id, app_name, reason)
		SELECT ?, account_id, 'RELEASED', pool_kind, pool_id, package, -units_charged, agent_id, agent_type,
		agent_version, host_id, app_id, app_name, ? FROM leases
		WHERE account_id = ? AND pool_id = ? AND revoked_code IS NULL`, now, reason, accountID, poolID).Error
	if err != nil {
		return fmt.Errorf("record releases of pool %s: %w", poolID, translate(err))
	}
	// Pool ids are UUIDs of one account: once the account's leases are gone
	// the pool's charges and counters are its alone.
	if err := db.Exec("DELETE FROM leases WHERE account_id = ? AND pool_id = ?", accountID, poolID).Error; err != nil {
		return fmt.Errorf("release pool %s: %w", poolID, translate(err))
	}
	// pool_usage has no account column: its rows go with the account's pool.
	for _, q := range []string{"DELETE FROM host_charges WHERE account_id = ? AND pool_id = ?",
		"DELETE FROM pool_usage WHERE pool_id IN (SELECT id FROM pools WHERE account_id = ? AND id = ?)",
		"DELETE FROM pools WHERE account_id = ? AND id = ?"} {
		if err := db.Exec(q, accountID, poolID).Error; err != nil {
			return fmt.Errorf("release pool %s: %w", poolID, translate(err))
		}
	}
	return nil
}
