package store

import (
	"context"
	"fmt"
	"time"

	"github.com/lcorp/licensing-controller/internal/usage"
)

// What allocation lint reads (usage/lint.go).

func (e engineStore) HostCharges(ctx context.Context, accountID int64) ([]usage.HostCharge, error) {
	var out []usage.HostCharge
	err := e.s.conn(ctx).Raw(`SELECT pool_id, host_id, package, units, charged_at FROM host_charges WHERE account_id = ? ORDER BY host_id, pool_id`,
		accountID).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("host charges: %w", translate(err))
	}
	for i := range out {
		out[i].ChargedAt = out[i].ChargedAt.UTC()
	}
	return out, nil
}

func (e engineStore) SeenAgents(ctx context.Context, accountID int64, since time.Time) ([]usage.SeenAgent, error) {
	// Scanned by hand: 100 000 rows through GORM's reflection cost more
	// than the query. Agents that are live are the leases; among the
	// events only those of agents that ended or were refused add any (a
	// lease's grant is its lease, or comes with its end event).
	rows, err := e.s.conn(ctx).Raw(`SELECT s.host_id, COALESCE(h.name, s.host_id), s.app_id, s.app_name FROM (
			SELECT host_id, app_id, app_name FROM leases WHERE account_id = ?
			UNION SELECT host_id, app_id, app_name FROM usage_events WHERE account_id = ? AND at >= ? AND host_id IS NOT NULL
				AND kind NOT IN ('GRANTED', 'CHANGED', 'UNDERCOUNTED')
		) s LEFT JOIN hosts h ON h.account_id = ? AND h.host_id = s.host_id`, accountID, accountID, since, accountID).Rows()
	if err != nil {
		return nil, fmt.Errorf("agents seen: %w", translate(err))
	}
	defer rows.Close()
	var out []usage.SeenAgent
	for rows.Next() {
		var a usage.SeenAgent
		if err := rows.Scan(&a.HostID, &a.HostName, &a.AppID, &a.AppName); err != nil {
			return nil, fmt.Errorf("agents seen: %w", translate(err))
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("agents seen: %w", translate(err))
	}
	return out, nil
}

func (e engineStore) PoolUsed(ctx context.Context, accountID int64) (map[string]map[string]int64, error) {
	rows, err := e.poolUsage(ctx, accountID)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]int64{}
	for _, r := range rows {
		if out[r.PoolID] == nil {
			out[r.PoolID] = map[string]int64{}
		}
		out[r.PoolID][r.Item] = r.Used
	}
	return out, nil
}

func (e engineStore) PoolLeases(ctx context.Context, accountID int64, poolIDs []string) ([]usage.PoolLease, error) {
	if len(poolIDs) == 0 {
		return nil, nil
	}
	rows, err := e.s.conn(ctx).Raw(`SELECT l.id, l.agent_id, l.agent_type, l.pool_id, l.package, l.units_charged,
			l.host_id, COALESCE(h.name, l.host_id), l.app_id, l.app_name
		FROM leases l LEFT JOIN hosts h ON h.account_id = l.account_id AND h.host_id = l.host_id
		WHERE l.account_id = ? AND l.pool_kind = 'ALLOCATION' AND l.pool_id IN ? AND l.revoked_code IS NULL`, accountID, poolIDs).Rows()
	if err != nil {
		return nil, fmt.Errorf("leases of the allocations: %w", translate(err))
	}
	defer rows.Close()
	var out []usage.PoolLease
	for rows.Next() {
		var l usage.PoolLease
		if err := rows.Scan(&l.RegistrationID, &l.AgentID, &l.AgentType, &l.PoolID, &l.Package, &l.Units, &l.HostID, &l.HostName,
			&l.AppID, &l.AppName); err != nil {
			return nil, fmt.Errorf("leases of the allocations: %w", translate(err))
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("leases of the allocations: %w", translate(err))
	}
	return out, nil
}

func (e engineStore) Refusals(ctx context.Context, accountID int64, since time.Time) ([]usage.RefusalRow, error) {
	var out []usage.RefusalRow
	err := e.s.conn(ctx).Raw(`SELECT ev.at, COALESCE(ev.agent_id, '') AS agent_id, COALESCE(ev.agent_type, '') AS agent_type,
			COALESCE(ev.pool_id, '') AS pool_id, COALESCE(ev.package, '') AS package, COALESCE(ev.reason, '') AS reason,
			COALESCE(ev.host_id, '') AS host_id, COALESCE(h.name, ev.host_id, '') AS host_name, ev.units, h.vcpu AS vcpu, ev.app_id, ev.app_name,
			EXISTS (SELECT 1 FROM leases l WHERE l.account_id = ev.account_id AND l.agent_id = ev.agent_id
				AND l.pool_kind = 'ALLOCATION' AND l.revoked_code IS NULL) AS live
		FROM usage_events ev LEFT JOIN hosts h ON h.account_id = ev.account_id AND h.host_id = ev.host_id
		WHERE ev.account_id = ? AND ev.kind = 'REFUSED' AND ev.at >= ? ORDER BY ev.at, ev.id`, accountID, since).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("refusals: %w", translate(err))
	}
	for i := range out {
		out[i].At = out[i].At.UTC()
	}
	return out, nil
}

// Lint returns the store of allocation lint.
func (s *Store) Lint() usage.LintStore { return engineStore{s} }

// WhatIf returns the store of allocation what-ifs.
func (s *Store) WhatIf() usage.WhatIfStore { return engineStore{s} }
