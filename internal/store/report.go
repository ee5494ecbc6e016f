package store

import (
	"context"
	"fmt"
	"time"

	"github.com/lcorp/licensing-controller/internal/report"
)

// reportStore adapts Store to report.Store.
type reportStore struct{ s *Store }

var _ report.Store = reportStore{}

// Report returns the store of the licence report.
func (s *Store) Report() report.Store { return reportStore{s} }

func (r reportStore) RequestCounters(ctx context.Context, accountID int64) ([]report.Bucket, error) {
	var rows []struct {
		Month        string
		RequestCount int64
	}
	err := r.s.conn(ctx).Raw("SELECT month, SUM(request_count) AS request_count FROM registration_counters WHERE account_id = ? GROUP BY month ORDER BY month",
		accountID).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("registration counters: %w", translate(err))
	}
	out := make([]report.Bucket, len(rows))
	for i, row := range rows {
		out[i] = report.Bucket{Bucket: row.Month, RequestCount: row.RequestCount}
	}
	return out, nil
}

func (r reportStore) Counts(ctx context.Context, accountID int64) (report.Counts, error) {
	var c report.Counts
	for _, q := range []struct {
		dst  *int64
		sql  string
		args []any
	}{
		// The Default allocation always exists, stored or not.
		{&c.Allocations, "SELECT COUNT(*) + 1 FROM allocations WHERE account_id = ? AND NOT is_default", []any{accountID}},
		{&c.Rules, "SELECT COUNT(*) FROM license_rules WHERE account_id = ?", []any{accountID}},
		{&c.Hosts, "SELECT COUNT(*) FROM hosts WHERE account_id = ?", []any{accountID}},
		{&c.Agents, "SELECT COUNT(*) FROM leases WHERE account_id = ? AND revoked_code IS NULL AND expires_at > ?", []any{accountID, time.Now().UTC()}},
		{&c.Applications, "SELECT COUNT(*) FROM applications WHERE account_id = ?", []any{accountID}},
		{&c.Users, "SELECT COUNT(*) FROM users WHERE account_id = ?", []any{accountID}},
	} {
		if err := r.s.conn(ctx).Raw(q.sql, q.args...).Scan(q.dst).Error; err != nil {
			return report.Counts{}, fmt.Errorf("report counts: %w", translate(err))
		}
	}
	return c, nil
}

// PeakUsage reads the daily rollups: the account's packages and its licence
// rules' modules, each at the highest use any day saw.
func (r reportStore) PeakUsage(ctx context.Context, accountID int64) (map[string]int64, error) {
	var rows []struct {
		Package string
		Peak    int64
	}
	err := r.s.conn(ctx).Raw(`SELECT s.package, CAST(MAX(x.used_max) AS BIGINT) AS peak
		FROM usage_series s JOIN usage_rollups x ON x.series_id = s.id AND x.resolution = 86400
		WHERE s.account_id = ? AND (s.pool_id = '' OR s.pool_id IN (SELECT id FROM license_rules WHERE account_id = ?))
		GROUP BY s.package`, accountID, accountID).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("peak usage: %w", translate(err))
	}
	out := make(map[string]int64, len(rows))
	for _, row := range rows {
		out[row.Package] = row.Peak
	}
	return out, nil
}

func (r reportStore) Instances(ctx context.Context, since time.Time) (int, error) {
	var n int64
	if err := r.s.conn(ctx).Raw("SELECT COUNT(*) FROM instances WHERE seen_at >= ?", since.Unix()).Scan(&n).Error; err != nil {
		return 0, fmt.Errorf("instances: %w", translate(err))
	}
	return int(n), nil
}

func (r reportStore) Secret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error) {
	return authStore(r).Secret(ctx, name, gen)
}

// SeeInstance records that the instance id serves at now; the report counts
// the instances seen in the last hour.
func (s *Store) SeeInstance(ctx context.Context, id string, now time.Time) error {
	err := s.conn(ctx).Exec(`INSERT INTO instances (id, seen_at) VALUES (?, ?)
		ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at`, id, now.Unix()).Error
	if err != nil {
		return fmt.Errorf("record this instance: %w", translate(err))
	}
	return nil
}
