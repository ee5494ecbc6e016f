package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/lcorp/licensing-controller/internal/webhook"
)

// limitOf is a pool's limit of item, with the pool's name and scope.
func (ps *poolSet) limitOf(poolID, item string) (int64, string, string, bool) {
	for _, a := range ps.Allocations {
		if a.ID == poolID {
			return a.LimitOf(item), a.Name, "allocation", true
		}
	}
	for _, r := range ps.Rules {
		if r.ID == poolID {
			n, _ := r.Licenses(item)
			return n, r.Name, "rule", true
		}
	}
	return 0, "", "", false
}

// watch writes a webhook outbox message, in the transaction of the
// change, for each item whose usage moves across a threshold level of the
// account's webhooks (upwards over a threshold, or down to where it
// re-arms): that is exact, also for a dip and rise between two looks,
// and costs nothing for accounts without threshold webhooks. before is
// the pool's usage under its lock, deltas the change.
func (e *Engine) watch(ctx context.Context, tx Store, ps *poolSet, poolID string, before, deltas map[string]int64, now time.Time) error {
	if ps == nil || len(ps.hooks.Thresholds) == 0 {
		return nil
	}
	var ms []webhook.Message
	for _, item := range slices.Sorted(maps.Keys(deltas)) {
		d := deltas[item]
		limit, name, scope, ok := ps.limitOf(poolID, item)
		if !ok || !webhook.Crosses(ps.hooks.Thresholds, before[item], before[item]+d, limit) {
			continue
		}
		data, err := json.Marshal(webhook.Crossing{Scope: scope, PoolID: poolID, PoolName: name, Package: item,
			Before: before[item], After: before[item] + d, Limit: limit})
		if err != nil {
			return fmt.Errorf("encode usage crossing: %w", err)
		}
		ms = append(ms, webhook.Message{AccountID: ps.Account.ID, Type: webhook.KindCrossing, At: now, Data: data})
	}
	if len(ms) == 0 {
		return nil
	}
	return tx.AddMessages(ctx, ms)
}

// addUsage changes a locked pool's usage and watches the change.
func (e *Engine) addUsage(ctx context.Context, tx Store, ps *poolSet, poolID string, before, deltas map[string]int64, now time.Time) error {
	if err := tx.AddUsage(ctx, poolID, deltas); err != nil {
		return err
	}
	return e.watch(ctx, tx, ps, poolID, before, deltas, now)
}

// preempted writes the lease.preempted outbox messages of revoked leases
// when the account's webhooks want them.
func preempted(ctx context.Context, tx Store, ps *poolSet, poolName string, revoked []Lease, forHost string, now time.Time) error {
	if ps == nil || !ps.hooks.Preempted || len(revoked) == 0 {
		return nil
	}
	ms := make([]webhook.Message, 0, len(revoked))
	for _, l := range revoked {
		data, err := json.Marshal(map[string]any{"registrationId": l.ID, "agentId": l.AgentID, "agentType": l.AgentType,
			"hostId": l.HostID, "applicationName": l.AppName, "allocationId": l.PoolID, "allocationName": poolName,
			"reason": "MACHINE_AGENT_PRIORITY", "forHostId": forHost})
		if err != nil {
			return fmt.Errorf("encode pre-emption: %w", err)
		}
		ms = append(ms, webhook.Message{AccountID: l.AccountID, Type: webhook.EventPreempted, At: now, Data: data})
	}
	return tx.AddMessages(ctx, ms)
}
