package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/lcorp/licensing-controller/internal/fault"
	"github.com/lcorp/licensing-controller/internal/usage"
)

// The analytics rollups (migration 18, usage/rollup.go).

type analyticsDayRow struct {
	AccountID    int64
	Day          int64
	PoolID       string
	AgentType    string
	Seconds      int64
	Peak         int64
	PeakAt       int64
	PeakPackages string
	Packages     string
	Hosts        int64
	Apps         int64
}

func (analyticsDayRow) TableName() string { return "analytics_days" }

type analyticsPresenceRow struct {
	AccountID int64
	PoolID    string
	Block     int64
	AgentType string
	Kind      string
	Item      string
	Bits      int64
}

func (analyticsPresenceRow) TableName() string { return "analytics_presence" }

type analyticsLeaseKeyRow struct {
	ID           int64 `gorm:"primaryKey"`
	AccountID    int64
	PoolID       string
	AgentType    string
	AgentVersion string
	HostID       string
	AppKey       string
	Package      string
	AppID        *int64
	AppName      *string
}

func (analyticsLeaseKeyRow) TableName() string { return "analytics_lease_keys" }

type analyticsLeaseRow struct {
	AccountID  int64
	Day        int64
	KeyID      int64
	Seconds    int64
	Days       int64
	DaySeconds int64
	DayUsed    int64
}

func (analyticsLeaseRow) TableName() string { return "analytics_leases" }

// leaseEpoch is the number of days of one run of the analytics_leases sums
// (migration 21): a day's rows sum the days of its epoch through it.
const leaseEpoch = 32

// leaseSumDays are the days whose analytics_leases rows answer the days
// [d0, d1): per epoch the window touches, its last day in the window
// (plus) less the day before its first, when that is in the epoch too
// (minus).
func leaseSumDays(d0, d1 usage.Day) (plus, minus []int64) {
	for e := d0 / leaseEpoch; e <= (d1-1)/leaseEpoch; e++ {
		first, last := e*leaseEpoch, e*leaseEpoch+leaseEpoch-1
		plus = append(plus, min(d1-1, last))
		if lo := max(d0, first); lo > first {
			minus = append(minus, lo-1)
		}
	}
	return plus, minus
}

type analyticsOpenSetRow struct {
	AccountID int64
	Day       int64
	Leases    []byte
}

func (analyticsOpenSetRow) TableName() string { return "analytics_open_sets" }

// presenceBlock is the number of days of one presence row's bits.
const presenceBlock = 64

// dayBit is day d's bit in its presence block.
func dayBit(d usage.Day) int64 { return int64(uint64(1) << uint(d%presenceBlock)) }

func (e engineStore) AccountIDs(ctx context.Context) ([]int64, error) {
	return seriesStore(e).AccountIDs(ctx)
}

func (e engineStore) OldestEvent(ctx context.Context, accountID int64, pools []string, before time.Time) (time.Time, bool, error) {
	if pools != nil && len(pools) == 0 {
		return time.Time{}, false, nil
	}
	q := "SELECT at FROM usage_events WHERE account_id = ? AND at < ? AND kind IN " + lifecycleKinds
	args := []any{accountID, before}
	if pools != nil {
		q += " AND pool_id IN ?"
		args = append(args, pools)
	}
	var at []time.Time
	if err := e.s.conn(ctx).Raw(q+" ORDER BY at LIMIT 1", args...).Scan(&at).Error; err != nil {
		return time.Time{}, false, fmt.Errorf("oldest usage event: %w", translate(err))
	}
	if len(at) == 0 {
		return time.Time{}, false, nil
	}
	return at[0].UTC(), true, nil
}

func (e engineStore) RollupState(ctx context.Context, accountID int64) (usage.Day, int64, bool, error) {
	var rows []struct{ ThroughDay, Gen int64 }
	if err := e.s.conn(ctx).Raw("SELECT through_day, gen FROM analytics_state WHERE account_id = ?", accountID).Scan(&rows).Error; err != nil {
		return 0, 0, false, fmt.Errorf("analytics rollup state: %w", translate(err))
	}
	if len(rows) == 0 {
		return 0, 0, false, nil
	}
	return rows[0].ThroughDay, rows[0].Gen, true, nil
}

func (e engineStore) InitRollupState(ctx context.Context, accountID int64, first usage.Day) error {
	err := e.s.conn(ctx).Exec(`INSERT INTO analytics_state (account_id, through_day, open_day, gen) VALUES (?, ?, -1, 0)
		ON CONFLICT (account_id) DO NOTHING`, accountID, first).Error
	if err != nil {
		return fmt.Errorf("create analytics rollup state: %w", translate(err))
	}
	return nil
}

func joinPackageCounts(pcs []usage.PackageCount) string {
	parts := make([]string, len(pcs))
	for i, p := range pcs {
		parts[i] = p.Package + "=" + strconv.Itoa(p.Count)
	}
	return strings.Join(parts, ";")
}

func splitPackageCounts(s string) ([]usage.PackageCount, error) {
	out := []usage.PackageCount{}
	if s == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ";") {
		name, n, ok := strings.Cut(part, "=")
		c, err := strconv.Atoi(n)
		if !ok || err != nil {
			return nil, fmt.Errorf("analytics rollup: bad package count %q", part)
		}
		out = append(out, usage.PackageCount{Package: name, Count: c})
	}
	return out, nil
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ";")
}

func (e engineStore) SaveRollupDay(ctx context.Context, r usage.DayRollup, gen int64) error {
	return e.s.InTx(ctx, func(tx *Store) error { return engineStore{tx}.saveRollupDay(ctx, r, gen) })
}

func (e engineStore) saveRollupDay(ctx context.Context, r usage.DayRollup, gen int64) error {
	db := e.s.conn(ctx)
	// The state row is locked (PostgreSQL; SQLite transactions are
	// exclusive): a reopen waits for this save, or this save sees it.
	lock := "SELECT through_day, gen FROM analytics_state WHERE account_id = ?"
	if e.s.dialect == Postgres {
		lock += " FOR UPDATE"
	}
	var st []struct{ ThroughDay, Gen int64 }
	if err := db.Raw(lock, r.AccountID).Scan(&st).Error; err != nil {
		return fmt.Errorf("lock analytics rollup state: %w", translate(err))
	}
	if len(st) == 0 || st[0].ThroughDay != r.Day || st[0].Gen != gen {
		return usage.ErrRollupMoved
	}
	block, bit := r.Day/presenceBlock, dayBit(r.Day)
	for _, st := range []struct {
		what, sql string
		args      []any
	}{
		{"days", "DELETE FROM analytics_days WHERE account_id = ? AND day = ?", []any{r.AccountID, r.Day}},
		{"leases", "DELETE FROM analytics_leases WHERE account_id = ? AND day = ?", []any{r.AccountID, r.Day}},
		{"presence", "UPDATE analytics_presence SET bits = bits & ~CAST(? AS BIGINT) WHERE account_id = ? AND block = ? AND (bits & CAST(? AS BIGINT)) <> 0",
			[]any{bit, r.AccountID, block, bit}},
		{"presence", "DELETE FROM analytics_presence WHERE account_id = ? AND block = ? AND bits = 0", []any{r.AccountID, block}},
	} {
		if err := db.Exec(st.sql, st.args...).Error; err != nil {
			return fmt.Errorf("clear analytics %s of day %d: %w", st.what, r.Day, translate(err))
		}
	}
	if len(r.Types) > 0 {
		rows := make([]analyticsDayRow, len(r.Types))
		for i, t := range r.Types {
			rows[i] = analyticsDayRow{AccountID: r.AccountID, Day: r.Day, PoolID: t.Pool, AgentType: t.AgentType, Seconds: t.Seconds,
				Peak: int64(t.Peak), PeakAt: t.PeakAt.UnixNano(), PeakPackages: joinPackageCounts(t.PeakPackages),
				Packages: strings.Join(t.Packages, ";"), Hosts: int64(t.Hosts), Apps: int64(t.Apps)}
		}
		if err := db.CreateInBatches(&rows, 500).Error; err != nil {
			return fmt.Errorf("save analytics days: %w", translate(err))
		}
	}
	if len(r.Presence) > 0 {
		rows := make([]analyticsPresenceRow, len(r.Presence))
		for i, p := range r.Presence {
			rows[i] = analyticsPresenceRow{AccountID: r.AccountID, PoolID: p.Pool, Block: block, AgentType: p.AgentType,
				Kind: p.Kind, Item: p.Item, Bits: bit}
		}
		err := db.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "account_id"}, {Name: "pool_id"}, {Name: "block"}, {Name: "agent_type"}, {Name: "kind"}, {Name: "item"}},
			DoUpdates: clause.Assignments(map[string]any{"bits": gorm.Expr("analytics_presence.bits | excluded.bits")}),
		}).CreateInBatches(&rows, 500).Error
		if err != nil {
			return fmt.Errorf("save analytics presence: %w", translate(err))
		}
	}
	if err := e.saveRollupLeases(ctx, r); err != nil {
		return err
	}
	next := r.Day + 1
	// The sets of the days after this one are stale: they are saved again
	// as those days are rolled up again.
	if err := db.Exec("DELETE FROM analytics_open_sets WHERE account_id = ? AND day >= ?", r.AccountID, next).Error; err != nil {
		return fmt.Errorf("clear open leases of analytics: %w", translate(err))
	}
	if err := db.Create(&analyticsOpenSetRow{AccountID: r.AccountID, Day: next, Leases: encodeOpenSet(r.Open)}).Error; err != nil {
		return fmt.Errorf("save open leases of analytics: %w", translate(err))
	}
	// The days with saved sets stay one run, open_first through open_day:
	// open_day was this day's start unless a reopen or the first pass
	// began here.
	err := db.Exec(`UPDATE analytics_state SET through_day = ?, open_day = ?,
		open_first = CASE WHEN open_day = ? AND open_first >= 0 THEN open_first ELSE ? END WHERE account_id = ?`,
		next, next, r.Day, next, r.AccountID).Error
	if err != nil {
		return fmt.Errorf("save analytics rollup state: %w", translate(err))
	}
	return nil
}

// saveRollupLeases saves the day's lease sums: those of the day before,
// when it is in the same epoch, plus the day's seconds. Each row is written
// once, and a key only when it is new or its names changed, so that the
// tables do not fill with dead rows that every read then steps over.
func (e engineStore) saveRollupLeases(ctx context.Context, r usage.DayRollup) error {
	db := e.s.conn(ctx)
	type sum struct{ seconds, days int64 }
	carried := map[int64]sum{}
	if r.Day%leaseEpoch != 0 {
		err := e.s.eachRow(ctx, "SELECT key_id, seconds, days FROM analytics_leases WHERE account_id = ? AND day = ?",
			[]any{r.AccountID, r.Day - 1}, func() { clear(carried) }, func(scan func(...any) error) error {
				var id int64
				var s sum
				if err := scan(&id, &s.seconds, &s.days); err != nil {
					return err
				}
				carried[id] = s
				return nil
			})
		if err != nil {
			return fmt.Errorf("read analytics leases of day %d: %w", r.Day-1, translate(err))
		}
	}
	if len(r.Leases) == 0 && len(carried) == 0 {
		return nil
	}
	var ids map[leaseKeyName]int64
	if len(r.Leases) > 0 {
		var err error
		if ids, err = e.saveLeaseKeys(ctx, r); err != nil {
			return err
		}
	}
	rows := make([]analyticsLeaseRow, 0, len(r.Leases)+len(carried))
	for _, l := range r.Leases {
		id, ok := ids[leaseKeyName{l.Pool, l.AgentType, l.AgentVersion, l.HostID, l.AppKey, l.Package}]
		if !ok {
			return fmt.Errorf("save analytics leases: no key for %s on %s", l.AgentType, l.HostID)
		}
		c := carried[id]
		delete(carried, id)
		rows = append(rows, analyticsLeaseRow{AccountID: r.AccountID, Day: r.Day, KeyID: id, Seconds: c.seconds + l.Seconds,
			Days: c.days + 1, DaySeconds: l.Seconds, DayUsed: 1})
	}
	for id, c := range carried { // not used this day
		rows = append(rows, analyticsLeaseRow{AccountID: r.AccountID, Day: r.Day, KeyID: id, Seconds: c.seconds, Days: c.days})
	}
	// In key order: a day's rows lie together, as its reads take them.
	slices.SortFunc(rows, func(x, y analyticsLeaseRow) int { return cmp.Compare(x.KeyID, y.KeyID) })
	if err := db.CreateInBatches(&rows, 1000).Error; err != nil {
		return fmt.Errorf("save analytics leases: %w", translate(err))
	}
	return nil
}

// leaseKeyName is what names a lease key (its unique columns).
type leaseKeyName struct{ pool, typ, version, host, app, pkg string }

// saveLeaseKeys adds the keys of the day's leases that are new, sets the
// application names of the others to the day's (the names of the newest
// day win: an application renamed shows its new name; a day rebuilt after
// a reopen may set older ones until the next day is rolled up), and
// returns the ids of all the account's keys.
func (e engineStore) saveLeaseKeys(ctx context.Context, r usage.DayRollup) (map[leaseKeyName]int64, error) {
	db := e.s.conn(ctx)
	keys := make([]analyticsLeaseKeyRow, len(r.Leases))
	for i, l := range r.Leases {
		keys[i] = analyticsLeaseKeyRow{AccountID: r.AccountID, PoolID: l.Pool, AgentType: l.AgentType, AgentVersion: l.AgentVersion,
			HostID: l.HostID, AppKey: l.AppKey, Package: l.Package, AppID: l.AppID, AppName: l.AppName}
	}
	err := db.Clauses(clause.OnConflict{
		Columns: []clause.Column{{Name: "account_id"}, {Name: "pool_id"}, {Name: "agent_type"}, {Name: "agent_version"},
			{Name: "host_id"}, {Name: "app_key"}, {Name: "package"}},
		DoUpdates: clause.AssignmentColumns([]string{"app_id", "app_name"}),
		Where: clause.Where{Exprs: []clause.Expression{clause.Expr{SQL: `analytics_lease_keys.app_id IS DISTINCT FROM excluded.app_id
			OR analytics_lease_keys.app_name IS DISTINCT FROM excluded.app_name`}}},
	}).Omit("id").CreateInBatches(&keys, 500).Error
	if err != nil {
		return nil, fmt.Errorf("save analytics lease keys: %w", translate(err))
	}
	ids := map[leaseKeyName]int64{}
	err = e.s.eachRow(ctx, "SELECT id, pool_id, agent_type, agent_version, host_id, app_key, package FROM analytics_lease_keys WHERE account_id = ?",
		[]any{r.AccountID}, func() { clear(ids) }, func(scan func(...any) error) error {
			var id int64
			var k leaseKeyName
			if err := scan(&id, &k.pool, &k.typ, &k.version, &k.host, &k.app, &k.pkg); err != nil {
				return err
			}
			ids[k] = id
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("read analytics lease keys: %w", translate(err))
	}
	return ids, nil
}

func (e engineStore) OpenAtDay(ctx context.Context, accountID int64, d usage.Day, pools []string) ([]usage.EventRow, bool, error) {
	var n []int64
	err := e.s.conn(ctx).Raw(`SELECT 1 FROM analytics_state
		WHERE account_id = ? AND open_first >= 0 AND open_first <= ? AND open_day >= ? AND through_day >= ?`,
		accountID, d, d, d).Scan(&n).Error
	if err != nil {
		return nil, false, fmt.Errorf("analytics rollup state: %w", translate(err))
	}
	if len(n) == 0 {
		return nil, false, nil
	}
	if pools != nil && len(pools) == 0 {
		return nil, true, nil
	}
	var sets []analyticsOpenSetRow
	if err := e.s.conn(ctx).Where("account_id = ? AND day = ?", accountID, d).Find(&sets).Error; err != nil {
		return nil, false, fmt.Errorf("read open leases of analytics: %w", translate(err))
	}
	if len(sets) == 0 { // pruned meanwhile
		return nil, false, nil
	}
	// Hosts are named as they are named now, as events are read.
	names, err := e.hostNames(ctx, accountID)
	if err != nil {
		return nil, false, err
	}
	out, err := decodeOpenSet(sets[0].Leases, pools, names)
	if err != nil {
		return nil, false, fmt.Errorf("account %d, day %d: %w", accountID, d, err)
	}
	return out, true, nil
}

func (e engineStore) RollupTypes(ctx context.Context, accountID int64, pool string, d0, d1 usage.Day) ([]usage.DayType, error) {
	var rows []analyticsDayRow
	err := e.s.conn(ctx).Raw(`SELECT * FROM analytics_days WHERE account_id = ? AND pool_id = ? AND day >= ? AND day < ?
		ORDER BY day, agent_type`, accountID, pool, d0, d1).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("read analytics days: %w", translate(err))
	}
	out := make([]usage.DayType, len(rows))
	for i, r := range rows {
		pcs, err := splitPackageCounts(r.PeakPackages)
		if err != nil {
			return nil, err
		}
		out[i] = usage.DayType{Pool: r.PoolID, AgentType: r.AgentType, Seconds: r.Seconds, Peak: int(r.Peak),
			PeakAt: time.Unix(0, r.PeakAt).UTC(), PeakPackages: pcs, Packages: splitList(r.Packages),
			Hosts: int(r.Hosts), Apps: int(r.Apps)}
	}
	return out, nil
}

// poolsWhere adds the pools filter (nil: all pools) on the pool_id of the
// table aliased by prefix ("l." or "").
func poolsWhere(where string, args []any, pools []string, prefix string) (string, []any) {
	if pools == nil {
		return where, args
	}
	return where + " AND " + prefix + "pool_id IN ?", append(args, pools)
}

func (e engineStore) RollupPresence(ctx context.Context, accountID int64, pools []string, d0, d1 usage.Day) ([]usage.Presence, error) {
	if pools != nil && len(pools) == 0 {
		return nil, nil
	}
	// Each block's days of [d0, d1) as a mask of its bits.
	var blocks []string
	args := []any{accountID}
	for b := d0 / presenceBlock; b <= (d1-1)/presenceBlock; b++ {
		var mask int64
		for d := max(d0, b*presenceBlock); d < min(d1, (b+1)*presenceBlock); d++ {
			mask |= dayBit(d)
		}
		blocks = append(blocks, "(block = ? AND (bits & CAST(? AS BIGINT)) <> 0)")
		args = append(args, b, mask)
	}
	where, args := poolsWhere("account_id = ? AND ("+strings.Join(blocks, " OR ")+")", args, pools, "")
	rows, err := e.s.conn(ctx).Raw("SELECT DISTINCT agent_type, kind, item FROM analytics_presence WHERE "+where, args...).Rows()
	if err != nil {
		return nil, fmt.Errorf("read analytics presence: %w", translate(err))
	}
	defer rows.Close()
	var out []usage.Presence
	for rows.Next() {
		var p usage.Presence
		if err := rows.Scan(&p.AgentType, &p.Kind, &p.Item); err != nil {
			return nil, fmt.Errorf("read analytics presence: %w", translate(err))
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read analytics presence: %w", translate(err))
	}
	return out, nil
}

func (e engineStore) RollupLeases(ctx context.Context, accountID int64, pools []string, d0, d1 usage.Day) ([]usage.DayLease, error) {
	if (pools != nil && len(pools) == 0) || d0 >= d1 {
		return nil, nil
	}
	set, err := e.leaseKeys(ctx, accountID)
	if err != nil {
		return nil, err
	}
	names, err := e.hostNames(ctx, accountID)
	if err != nil {
		return nil, err
	}
	plus, minus := leaseSumDays(d0, d1)
	sums := `SELECT l.key_id, CAST(SUM(l.seconds) AS BIGINT) AS seconds FROM analytics_leases l
		WHERE l.account_id = ? AND l.day IN ? GROUP BY l.key_id`
	args := []any{accountID, plus}
	switch {
	case d1 == d0+1: // one day: its own figures
		sums = "SELECT l.key_id, l.day_seconds AS seconds FROM analytics_leases l WHERE l.account_id = ? AND l.day = ? AND l.day_used = 1"
		args = []any{accountID, d0}
	case len(minus) > 0:
		sign := "CASE WHEN l.day IN ? THEN -1 ELSE 1 END * "
		sums = `SELECT l.key_id, CAST(SUM(` + sign + `l.seconds) AS BIGINT) AS seconds FROM analytics_leases l
			WHERE l.account_id = ? AND l.day IN ? GROUP BY l.key_id HAVING SUM(` + sign + `l.days) > 0`
		args = []any{minus, accountID, append(plus, minus...), minus}
	}
	// The sums per key (pool, package and the rest), merged per group of
	// the key set: the keys whose day count grew in the window.
	var (
		secs []int64
		seen []bool
		pkgs [][]string // a handful each
	)
	keep := func(string) bool { return true }
	if pools != nil {
		keep = func(p string) bool { return slices.Contains(pools, p) }
	}
	for fresh := false; ; fresh = true {
		reset := func() {
			secs, seen, pkgs = make([]int64, len(set.groups)), make([]bool, len(set.groups)), make([][]string, len(set.groups))
		}
		reset()
		unknown := false
		err = e.s.eachRow(ctx, sums, args, reset, func(scan func(...any) error) error {
			var id, s int64
			if err := scan(&id, &s); err != nil {
				return err
			}
			i, ok := set.index.find(id)
			if !ok {
				unknown = true
				return nil
			}
			k := set.keys[i]
			if !keep(k.pool) {
				return nil
			}
			secs[k.group] += s
			seen[k.group] = true
			if k.pkg != "" && !slices.Contains(pkgs[k.group], k.pkg) {
				pkgs[k.group] = append(pkgs[k.group], k.pkg)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read analytics leases: %w", translate(err))
		}
		if !unknown {
			break
		}
		if fresh {
			return nil, fmt.Errorf("read analytics leases: the rollups moved twice during the read: %w", fault.ErrUnavailable)
		}
		// A reopened day was rolled up again since the keys were read,
		// with new keys: read them again.
		if set, err = e.readLeaseKeys(ctx, accountID); err != nil {
			return nil, err
		}
	}
	n := 0
	for _, ok := range seen {
		if ok {
			n++
		}
	}
	out := make([]usage.DayLease, 0, n)
	for g, ok := range seen {
		if !ok {
			continue
		}
		l := set.groups[g]
		l.Seconds = secs[g]
		l.Packages = pkgs[g]
		if l.Packages == nil {
			l.Packages = []string{}
		}
		slices.Sort(l.Packages)
		l.HostName = l.HostID
		if name, ok := names[l.HostID]; ok {
			l.HostName = name
		}
		out = append(out, l)
	}
	return out, nil
}

func (e engineStore) RollupsWritten(ctx context.Context) error {
	if e.s.dialect != Postgres {
		return nil
	}
	// Autovacuum would get there too, after a tenth of a table changed:
	// days after a first pass over months of events.
	if err := e.s.conn(ctx).Exec("ANALYZE analytics_leases, analytics_lease_keys, analytics_days, analytics_presence").Error; err != nil {
		return fmt.Errorf("analyze analytics rollups: %w", translate(err))
	}
	return nil
}

func (e engineStore) PruneRollups(ctx context.Context, accountID int64, before usage.Day) (int64, error) {
	var total int64
	for _, st := range []struct {
		what, sql string
		arg       int64
	}{
		{"days", "DELETE FROM analytics_days WHERE account_id = ? AND day < ?", before},
		// Whole epochs only: a window's first kept day needs the sums of
		// the day before it in its epoch.
		{"leases", "DELETE FROM analytics_leases WHERE account_id = ? AND day < ?", before / leaseEpoch * leaseEpoch},
		{"presence", "DELETE FROM analytics_presence WHERE account_id = ? AND block < ?", before / presenceBlock},
	} {
		res := e.s.conn(ctx).Exec(st.sql, accountID, st.arg)
		if res.Error != nil {
			return total, fmt.Errorf("prune analytics %s: %w", st.what, translate(res.Error))
		}
		total += res.RowsAffected
		if st.what == "leases" && res.RowsAffected > 0 {
			n, err := e.pruneLeaseKeys(ctx, accountID)
			if err != nil {
				return total, err
			}
			total += n
		}
	}
	return total, nil
}

// pruneLeaseKeys deletes the lease keys no kept day refers to. A key of an
// epoch is carried to the epoch's last day rolled up, so those days are
// the ones to look at.
//
// Only while every kept day is rolled up: after a reopen, the days being
// rolled up again may refer to keys the stale later days do not (the
// leader prunes between its passes, never during one).
func (e engineStore) pruneLeaseKeys(ctx context.Context, accountID int64) (int64, error) {
	var span []struct{ Lo, Hi, Through *int64 }
	if err := e.s.conn(ctx).Raw(`SELECT MIN(day) AS lo, MAX(day) AS hi,
			(SELECT through_day FROM analytics_state WHERE account_id = ?) AS through
		FROM analytics_leases WHERE account_id = ?`, accountID, accountID).Scan(&span).Error; err != nil {
		return 0, fmt.Errorf("prune analytics lease keys: %w", translate(err))
	}
	if len(span) == 1 && span[0].Hi != nil && (span[0].Through == nil || *span[0].Hi >= *span[0].Through) {
		return 0, nil
	}
	days := []int64{-1}
	if len(span) == 1 && span[0].Lo != nil && span[0].Hi != nil {
		for d := *span[0].Lo/leaseEpoch*leaseEpoch + leaseEpoch - 1; d < *span[0].Hi; d += leaseEpoch {
			days = append(days, d)
		}
		days = append(days, *span[0].Hi)
	}
	res := e.s.conn(ctx).Exec(`DELETE FROM analytics_lease_keys WHERE account_id = ? AND NOT EXISTS (SELECT 1 FROM analytics_leases l
		WHERE l.account_id = analytics_lease_keys.account_id AND l.day IN ? AND l.key_id = analytics_lease_keys.id)`, accountID, days)
	if res.Error != nil {
		return 0, fmt.Errorf("prune analytics lease keys: %w", translate(res.Error))
	}
	return res.RowsAffected, nil
}

// ReopenAnalytics makes day the account's first day not rolled up when it
// was rolled up: an event of that day was recorded after its rollup.
func (e engineStore) ReopenAnalytics(ctx context.Context, accountID int64, day int64) error {
	// Unconditional on the day, so that the row is always locked and gen
	// always moves: a day being built meanwhile is not saved.
	// The open leases of the days up to the reopened one stand: the late
	// event is of that day, after its start.
	err := e.s.conn(ctx).Exec(`UPDATE analytics_state SET gen = gen + 1,
		through_day = CASE WHEN through_day > ? THEN ? ELSE through_day END,
		open_day = CASE WHEN open_day > ? THEN ? ELSE open_day END,
		open_first = CASE WHEN open_first > ? THEN -1 ELSE open_first END WHERE account_id = ?`, day, day, day, day, day, accountID).Error
	if err != nil {
		return fmt.Errorf("reopen analytics rollups: %w", translate(err))
	}
	return nil
}
