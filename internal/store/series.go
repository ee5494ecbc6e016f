package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm/clause"

	"github.com/lcorp/licensing-controller/internal/engine"
	"github.com/lcorp/licensing-controller/internal/licensing"
	"github.com/lcorp/licensing-controller/internal/usage"
)

// Rollup resolutions in seconds: hourly and daily, on UTC boundaries.
var rollupResolutions = []int64{3600, 86400}

type seriesRow struct {
	ID        int64 `gorm:"primaryKey"`
	AccountID int64
	PoolID    string
	Package   string
}

func (seriesRow) TableName() string { return "usage_series" }

type sampleRow struct {
	SeriesID    int64 `gorm:"primaryKey"`
	At          int64 `gorm:"primaryKey"`
	Provisioned int64
	Used        int64
}

func (sampleRow) TableName() string { return "usage_samples" }

type sampleAgentRow struct {
	SeriesID   int64  `gorm:"primaryKey"`
	AgentType  string `gorm:"primaryKey"`
	At         int64  `gorm:"primaryKey"`
	Registered int64
}

func (sampleAgentRow) TableName() string { return "usage_sample_agents" }

// seriesStore adapts Store to engine.SeriesStore (the sampler) and
// usage.SeriesStore (the read model).
type seriesStore struct{ s *Store }

var (
	_ engine.SeriesStore = seriesStore{}
	_ usage.SeriesStore  = seriesStore{}
)

// SeriesStore is the store of the usage time series: the sampler writes
// it, the read model reads it.
type SeriesStore interface {
	engine.SeriesStore
	usage.SeriesStore
}

// Series returns the store of the usage time series.
func (s *Store) Series() SeriesStore { return seriesStore{s} }

func (e seriesStore) InTx(ctx context.Context, fn func(engine.SeriesStore) error) error {
	return e.s.InTx(ctx, func(tx *Store) error { return fn(seriesStore{tx}) })
}

func (e seriesStore) Licensing() licensing.Store { return licensingStore(e) }

func (e seriesStore) AccountIDs(ctx context.Context) ([]int64, error) {
	var ids []int64
	if err := e.s.conn(ctx).Raw("SELECT id FROM accounts ORDER BY id").Scan(&ids).Error; err != nil {
		return nil, fmt.Errorf("list accounts: %w", translate(err))
	}
	return ids, nil
}

func (e seriesStore) ClaimSample(ctx context.Context, at time.Time) (bool, error) {
	res := e.s.conn(ctx).Exec("INSERT INTO usage_sample_times (at) VALUES (?) ON CONFLICT (at) DO NOTHING", at.Unix())
	if res.Error != nil {
		return false, fmt.Errorf("claim sample time: %w", translate(res.Error))
	}
	return res.RowsAffected == 1, nil
}

func (e seriesStore) HasSamples(ctx context.Context, accountID int64, at time.Time) (bool, error) {
	var n int64
	err := e.s.conn(ctx).Raw(`SELECT COUNT(*) FROM usage_samples s JOIN usage_series se ON se.id = s.series_id
		WHERE se.account_id = ? AND s.at = ?`, accountID, at.Unix()).Scan(&n).Error
	if err != nil {
		return false, fmt.Errorf("samples of account %d at %s: %w", accountID, at.Format(time.RFC3339), translate(err))
	}
	return n > 0, nil
}

// SampleUsage reads the live usage in three set-based statements: the
// database aggregates (100 000 leases become a few hundred rows).
func (e seriesStore) SampleUsage(ctx context.Context, now time.Time) (engine.SampleUsage, error) {
	db := e.s.conn(ctx)
	var u engine.SampleUsage
	err := db.Raw("SELECT u.pool_id, p.account_id, p.kind, u.item, u.used FROM pool_usage u " +
		"JOIN pools p ON p.id = u.pool_id WHERE u.used <> 0").Scan(&u.Pools).Error
	if err != nil {
		return u, fmt.Errorf("pool usage: %w", translate(err))
	}
	// The account counts a host once: in the highest package any of its
	// allocations charges it, with that charge's units; its agents count
	// in that package too.
	const top = `SELECT account_id, host_id, package, units, ROW_NUMBER() OVER (PARTITION BY account_id, host_id ORDER BY
			CASE package WHEN 'ENTERPRISE' THEN 3 WHEN 'PREMIUM' THEN 2 WHEN 'INFRA' THEN 1 ELSE 0 END DESC, units DESC) AS rn
		FROM host_charges`
	err = db.Raw(`SELECT account_id, package AS item, CAST(SUM(units) AS BIGINT) AS used FROM (` + top + `) h
		WHERE rn = 1 GROUP BY account_id, package`).Scan(&u.Accounts).Error
	if err != nil {
		return u, fmt.Errorf("account usage: %w", translate(err))
	}
	// One pass over the live leases counts them per pool and package
	// (the host's charge in the pool; a rule's module) and per account and
	// package (the package the host counts in at account level).
	var regs []struct {
		AccountID  int64
		PoolID     string
		Package    string
		TopPackage *string
		AgentType  string
		N          int64
	}
	err = db.Raw(`SELECT l.account_id, l.pool_id, COALESCE(hc.package, l.package) AS package, h.package AS top_package,
		l.agent_type, COUNT(*) AS n
		FROM leases l
		LEFT JOIN host_charges hc ON hc.pool_id = l.pool_id AND hc.host_id = l.host_id
		LEFT JOIN (`+top+`) h ON h.account_id = l.account_id AND h.host_id = l.host_id AND h.rn = 1 AND l.pool_kind = ?
		WHERE l.revoked_code IS NULL AND l.expires_at > ?
		GROUP BY l.account_id, l.pool_id, COALESCE(hc.package, l.package), h.package, l.agent_type`,
		engine.PoolAllocation, now).Scan(&regs).Error
	if err != nil {
		return u, fmt.Errorf("registered agents: %w", translate(err))
	}
	for _, r := range regs {
		u.Registered = append(u.Registered, engine.Registered{SeriesKey: engine.SeriesKey{AccountID: r.AccountID, PoolID: r.PoolID, Package: r.Package},
			AgentType: r.AgentType, N: r.N})
		if r.TopPackage != nil {
			u.Registered = append(u.Registered, engine.Registered{SeriesKey: engine.SeriesKey{AccountID: r.AccountID, Package: *r.TopPackage},
				AgentType: r.AgentType, N: r.N})
		}
	}
	return u, nil
}

// seriesIDs returns the ids of the series of keys, creating the missing ones.
func (e seriesStore) seriesIDs(ctx context.Context, keys []engine.SeriesKey) (map[engine.SeriesKey]int64, error) {
	db := e.s.conn(ctx)
	rows := make([]seriesRow, len(keys))
	accounts := map[int64]bool{}
	var ids []int64
	for i, k := range keys {
		rows[i] = seriesRow{AccountID: k.AccountID, PoolID: k.PoolID, Package: k.Package}
		if !accounts[k.AccountID] {
			accounts[k.AccountID] = true
			ids = append(ids, k.AccountID)
		}
	}
	err := db.Clauses(clause.OnConflict{DoNothing: true}).Omit("ID").CreateInBatches(&rows, 1000).Error
	if err != nil {
		return nil, fmt.Errorf("create usage series: %w", translate(err))
	}
	var stored []seriesRow
	if err := db.Where("account_id IN ?", ids).Find(&stored).Error; err != nil {
		return nil, fmt.Errorf("usage series: %w", translate(err))
	}
	out := make(map[engine.SeriesKey]int64, len(stored))
	for _, r := range stored {
		out[engine.SeriesKey{AccountID: r.AccountID, PoolID: r.PoolID, Package: r.Package}] = r.ID
	}
	return out, nil
}

// minMax names the least and greatest of two values in the dialect's words.
func (s *Store) minMax() (string, string) {
	if s.dialect == Postgres {
		return "LEAST", "GREATEST"
	}
	return "min", "max" // SQLite's scalar min() and max() with two arguments
}

func (e seriesStore) SaveSamples(ctx context.Context, at time.Time, samples []engine.Sample) error {
	if len(samples) == 0 {
		return nil
	}
	keys := make([]engine.SeriesKey, len(samples))
	for i, s := range samples {
		keys[i] = s.SeriesKey
	}
	ids, err := e.seriesIDs(ctx, keys)
	if err != nil {
		return err
	}
	ts := at.Unix()
	rows := make([]sampleRow, 0, len(samples))
	var agents []sampleAgentRow
	saved := make([]int64, 0, len(samples)) // the series of this call: each account saves its own
	for _, s := range samples {
		id := ids[s.SeriesKey]
		saved = append(saved, id)
		rows = append(rows, sampleRow{SeriesID: id, At: ts, Provisioned: s.Provisioned, Used: s.Used})
		for t, n := range s.Registered {
			if n > 0 {
				agents = append(agents, sampleAgentRow{SeriesID: id, AgentType: t, At: ts, Registered: n})
			}
		}
	}
	db := e.s.conn(ctx)
	if err := db.Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(&rows, 1000).Error; err != nil {
		return fmt.Errorf("insert %d usage samples: %w", len(rows), translate(err))
	}
	if len(agents) > 0 {
		if err := db.Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(&agents, 1000).Error; err != nil {
			return fmt.Errorf("insert %d agent samples: %w", len(agents), translate(err))
		}
	}
	// The rollups take this call's rows of this sampling time (other
	// accounts save theirs in calls of their own). The time was claimed in
	// this transaction, so no sample is ever added twice.
	least, greatest := e.s.minMax()
	for _, res := range rollupResolutions {
		err := db.Exec(fmt.Sprintf(`INSERT INTO usage_rollups (resolution, series_id, bucket, prov_min, prov_max, prov_sum,
			used_min, used_max, used_sum, n)
			SELECT %[1]d, series_id, at - at %% %[1]d, provisioned, provisioned, provisioned, used, used, used, 1
			FROM usage_samples WHERE at = ? AND series_id IN ?
			ON CONFLICT (resolution, series_id, bucket) DO UPDATE SET
				prov_min = %[2]s(usage_rollups.prov_min, excluded.prov_min),
				prov_max = %[3]s(usage_rollups.prov_max, excluded.prov_max),
				prov_sum = usage_rollups.prov_sum + excluded.prov_sum,
				used_min = %[2]s(usage_rollups.used_min, excluded.used_min),
				used_max = %[3]s(usage_rollups.used_max, excluded.used_max),
				used_sum = usage_rollups.used_sum + excluded.used_sum,
				n = usage_rollups.n + 1`, res, least, greatest), ts, saved).Error
		if err != nil {
			return fmt.Errorf("roll up samples (%ds): %w", res, translate(err))
		}
		if len(agents) == 0 {
			continue
		}
		err = db.Exec(fmt.Sprintf(`INSERT INTO usage_agent_rollups (resolution, series_id, agent_type, bucket,
			reg_min, reg_max, reg_sum, n)
			SELECT %[1]d, series_id, agent_type, at - at %% %[1]d, registered, registered, registered, 1
			FROM usage_sample_agents WHERE at = ? AND series_id IN ?
			ON CONFLICT (resolution, series_id, bucket, agent_type) DO UPDATE SET
				reg_min = %[2]s(usage_agent_rollups.reg_min, excluded.reg_min),
				reg_max = %[3]s(usage_agent_rollups.reg_max, excluded.reg_max),
				reg_sum = usage_agent_rollups.reg_sum + excluded.reg_sum,
				n = usage_agent_rollups.n + 1`, res, least, greatest), ts, saved).Error
		if err != nil {
			return fmt.Errorf("roll up agent samples (%ds): %w", res, translate(err))
		}
	}
	return nil
}

// PruneSamples deletes in statements of at most batch rows each, so that
// no statement holds many locks or a long transaction.
func (e seriesStore) PruneSamples(ctx context.Context, before time.Time, batch int) (int64, error) {
	cut := before.Unix()
	pick := func(table, cond string) string {
		return fmt.Sprintf("DELETE FROM %[1]s WHERE rowid IN (SELECT rowid FROM %[1]s WHERE %[2]s LIMIT %[3]d)", table, cond, batch)
	}
	if e.s.dialect == Postgres {
		pick = func(table, cond string) string {
			return fmt.Sprintf("DELETE FROM %[1]s WHERE ctid = ANY(ARRAY(SELECT ctid FROM %[1]s WHERE %[2]s LIMIT %[3]d))", table, cond, batch)
		}
	}
	type target struct {
		table, cond string
		arg         int64
	}
	targets := []target{
		{"usage_samples", "at < ?", cut},
		{"usage_sample_agents", "at < ?", cut},
		{"usage_sample_times", "at < ?", cut},
	}
	for _, res := range rollupResolutions {
		// Only buckets that end before the cut: a bucket is whole or absent.
		cond := fmt.Sprintf("resolution = %d AND bucket <= ?", res)
		targets = append(targets, target{"usage_rollups", cond, cut - res}, target{"usage_agent_rollups", cond, cut - res})
	}
	var total int64
	for _, t := range targets {
		for {
			res := e.s.conn(ctx).Exec(pick(t.table, t.cond), t.arg)
			if res.Error != nil {
				return total, fmt.Errorf("prune %s: %w", t.table, translate(res.Error))
			}
			total += res.RowsAffected
			if res.RowsAffected < int64(batch) {
				break
			}
		}
	}
	return total, nil
}

// SeriesAggregates aggregates one series set per package and bucket, from
// the raw samples or from a rollup.
func (e seriesStore) SeriesAggregates(ctx context.Context, r usage.SeriesRead) ([]usage.Aggregate, error) {
	q := `SELECT s.package, (x.at - ?) / ? AS bucket, MIN(x.provisioned) AS prov_min, MAX(x.provisioned) AS prov_max,
		CAST(SUM(x.provisioned) AS BIGINT) AS prov_sum, MIN(x.used) AS used_min, MAX(x.used) AS used_max,
		CAST(SUM(x.used) AS BIGINT) AS used_sum, COUNT(*) AS n
		FROM usage_series s JOIN usage_samples x ON x.series_id = s.id
		WHERE s.account_id = ? AND s.pool_id = ? AND x.at >= ? AND x.at < ?
		GROUP BY 1, 2`
	args := []any{r.Origin, r.Step, r.AccountID, r.PoolID, r.From, r.To}
	if r.Resolution > 0 {
		q = `SELECT s.package, (x.bucket - ?) / ? AS bucket, MIN(x.prov_min) AS prov_min, MAX(x.prov_max) AS prov_max,
		CAST(SUM(x.prov_sum) AS BIGINT) AS prov_sum, MIN(x.used_min) AS used_min, MAX(x.used_max) AS used_max,
		CAST(SUM(x.used_sum) AS BIGINT) AS used_sum, CAST(SUM(x.n) AS BIGINT) AS n
		FROM usage_series s JOIN usage_rollups x ON x.series_id = s.id AND x.resolution = ?
		WHERE s.account_id = ? AND s.pool_id = ? AND x.bucket >= ? AND x.bucket < ?
		GROUP BY 1, 2`
		args = []any{r.Origin, r.Step, r.Resolution, r.AccountID, r.PoolID, r.From, r.To}
	}
	// Scanned without reflection: a year of hours is thousands of rows.
	rows, err := e.s.conn(ctx).Raw(q, args...).Rows()
	if err != nil {
		return nil, fmt.Errorf("usage series: %w", translate(err))
	}
	defer rows.Close()
	var out []usage.Aggregate
	for rows.Next() {
		var a usage.Aggregate
		if err := rows.Scan(&a.Package, &a.Bucket, &a.ProvMin, &a.ProvMax, &a.ProvSum, &a.UsedMin, &a.UsedMax, &a.UsedSum, &a.N); err != nil {
			return nil, fmt.Errorf("usage series row: %w", translate(err))
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("usage series rows: %w", translate(err))
	}
	return out, nil
}

// AgentAggregates aggregates the registered agents per package, type and
// bucket; N counts the samples at which the type had agents.
func (e seriesStore) AgentAggregates(ctx context.Context, r usage.SeriesRead) ([]usage.AgentAggregate, error) {
	q := `SELECT s.package, x.agent_type, (x.at - ?) / ? AS bucket, MIN(x.registered) AS reg_min, MAX(x.registered) AS reg_max,
		CAST(SUM(x.registered) AS BIGINT) AS reg_sum, COUNT(*) AS n
		FROM usage_series s JOIN usage_sample_agents x ON x.series_id = s.id
		WHERE s.account_id = ? AND s.pool_id = ? AND x.at >= ? AND x.at < ?
		GROUP BY 1, 2, 3`
	args := []any{r.Origin, r.Step, r.AccountID, r.PoolID, r.From, r.To}
	if r.Resolution > 0 {
		q = `SELECT s.package, x.agent_type, (x.bucket - ?) / ? AS bucket, MIN(x.reg_min) AS reg_min, MAX(x.reg_max) AS reg_max,
		CAST(SUM(x.reg_sum) AS BIGINT) AS reg_sum, CAST(SUM(x.n) AS BIGINT) AS n
		FROM usage_series s JOIN usage_agent_rollups x ON x.series_id = s.id AND x.resolution = ?
		WHERE s.account_id = ? AND s.pool_id = ? AND x.bucket >= ? AND x.bucket < ?
		GROUP BY 1, 2, 3`
		args = []any{r.Origin, r.Step, r.Resolution, r.AccountID, r.PoolID, r.From, r.To}
	}
	rows, err := e.s.conn(ctx).Raw(q, args...).Rows()
	if err != nil {
		return nil, fmt.Errorf("registered agents series: %w", translate(err))
	}
	defer rows.Close()
	var out []usage.AgentAggregate
	for rows.Next() {
		var a usage.AgentAggregate
		if err := rows.Scan(&a.Package, &a.AgentType, &a.Bucket, &a.RegMin, &a.RegMax, &a.RegSum, &a.N); err != nil {
			return nil, fmt.Errorf("registered agents row: %w", translate(err))
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("registered agents rows: %w", translate(err))
	}
	return out, nil
}
