package webhook

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/lcorp/licensing-controller/internal/fault"
	"github.com/lcorp/licensing-controller/internal/jobs"
	"github.com/lcorp/licensing-controller/internal/licensing"
)

// Licences is what the dispatcher reads of an account's licence.
type Licences interface {
	AccountInfo(ctx context.Context, accountID int64) (licensing.Info, error)
	Allocations(ctx context.Context, accountID int64, q licensing.AllocationQuery) ([]licensing.Allocation, error)
}

// Dispatcher turns outbox messages into deliveries, and raises the events
// that time causes (licence expiry, refusal digests, the account's usage).
// Run it on the leader.
type Dispatcher struct {
	store    Store
	lic      Licences
	now      func() time.Time
	failures *jobs.Failures
	// licencesAt is when each account's licence was last looked at: once
	// a minute is enough for notices of days. Only Check uses it (one job
	// goroutine).
	licencesAt map[int64]time.Time
}

// NewDispatcher returns a Dispatcher; now nil means time.Now.
func NewDispatcher(store Store, lic Licences, now func() time.Time, failures *jobs.Failures) *Dispatcher {
	if now == nil {
		now = time.Now
	}
	return &Dispatcher{store: store, lic: lic, now: now, failures: failures, licencesAt: map[int64]time.Time{}}
}

// dispatchBatch is the most messages one dispatch transaction takes.
const dispatchBatch = 500

// Job names, in lc_background_job_failures_total.
const (
	JobDispatch = "webhook-dispatch"
	JobChecks   = "webhook-checks"
	JobDeliver  = "webhook-delivery"
	JobPrune    = "webhook-prune"
)

// Dispatch fans the outbox out to the subscribed endpoints, oldest first,
// deleting each message in the transaction that queues its deliveries.
func (d *Dispatcher) Dispatch(ctx context.Context) error {
	for {
		n := 0
		err := d.store.InTx(ctx, func(tx Store) error {
			ms, err := tx.TakeMessages(ctx, dispatchBatch)
			if err != nil {
				return err
			}
			n = len(ms)
			hooks := map[int64][]Webhook{}
			var out []Delivery
			ids := make([]int64, len(ms))
			for i, m := range ms {
				ids[i] = m.ID
				ws, ok := hooks[m.AccountID]
				if !ok {
					if ws, err = tx.FindWebhooks(ctx, m.AccountID); err != nil {
						return err
					}
					hooks[m.AccountID] = ws
				}
				ds, err := d.fanOut(ctx, tx, m, ws)
				if err != nil {
					return err
				}
				out = append(out, ds...)
			}
			if err := tx.AddDeliveries(ctx, out); err != nil {
				return err
			}
			return tx.DeleteMessages(ctx, ids)
		})
		if err != nil {
			return fmt.Errorf("dispatch webhook events: %w", err)
		}
		if n < dispatchBatch {
			return nil
		}
	}
}

func (d *Dispatcher) fanOut(ctx context.Context, tx Store, m Message, ws []Webhook) ([]Delivery, error) {
	if m.Type != KindCrossing {
		return d.deliveries(newEvent(m.Type, m.AccountID, m.At, m.Data), ws)
	}
	var c Crossing
	if err := json.Unmarshal(m.Data, &c); err != nil {
		return nil, fmt.Errorf("decode usage crossing %d: %w", m.ID, err)
	}
	return d.thresholds(ctx, tx, m.AccountID, m.At, ws, c.PoolID, c, func(t int) bool { return up(t, c.Before, c.After, c.Limit) })
}

// thresholds re-arms and fires the thresholds of every endpoint that
// wants them for usage c.After of c.Limit in scope; crossed says whether
// usage has just reached threshold t.
func (d *Dispatcher) thresholds(ctx context.Context, tx Store, accountID int64, at time.Time, ws []Webhook, scope string,
	c Crossing, crossed func(t int) bool) ([]Delivery, error) {
	now := d.now().UTC()
	var out []Delivery
	for _, w := range ws {
		if !w.Wants(EventThreshold) {
			continue
		}
		fired, err := tx.FiredThresholds(ctx, w.ID, scope, c.Package)
		if err != nil {
			return nil, err
		}
		for _, t := range w.Thresholds {
			limitAt, isFired := fired[t]
			if rearms(t, c.After, c.Limit) {
				if isFired {
					if err := tx.SetFired(ctx, w.ID, scope, c.Package, t, 0, false); err != nil {
						return nil, err
					}
				}
				continue
			}
			// A threshold that fired at another limit is armed again: the
			// percentages it fired at no longer hold.
			if !crossed(t) || isFired && limitAt == c.Limit {
				continue
			}
			if err := tx.SetFired(ctx, w.ID, scope, c.Package, t, c.Limit, true); err != nil {
				return nil, err
			}
			dl, err := newEvent(EventThreshold, accountID, at, thresholdData(c, t)).deliveryTo(w.ID, now)
			if err != nil {
				return nil, err
			}
			out = append(out, dl)
		}
	}
	return out, nil
}

func thresholdData(c Crossing, t int) map[string]any {
	data := map[string]any{"scope": c.Scope, "package": c.Package, "threshold": t,
		"usedUnits": c.After, "limitUnits": c.Limit, "usedPercent": math.Round(float64(c.After)*1000/float64(c.Limit)) / 10}
	switch c.Scope {
	case "allocation":
		data["allocationId"], data["allocationName"] = c.PoolID, c.PoolName
	case "rule":
		data["ruleId"], data["ruleName"] = c.PoolID, c.PoolName
	}
	return data
}

// Check raises the time-driven events of every account with endpoints:
// licence expiry notices (once a minute), refusal digests and the
// account's own usage against its licence. Accounts fail alone: each
// failure is counted and logged per account, and the error returned is
// marked as reported.
func (d *Dispatcher) Check(ctx context.Context) error {
	now := d.now()
	all, err := d.store.FindWebhooks(ctx, 0)
	if err != nil {
		return fmt.Errorf("webhook checks: %w", err)
	}
	byAccount := map[int64][]Webhook{}
	var accounts []int64
	for _, w := range all {
		if _, ok := byAccount[w.AccountID]; !ok {
			accounts = append(accounts, w.AccountID)
		}
		byAccount[w.AccountID] = append(byAccount[w.AccountID], w)
	}
	slices.Sort(accounts)
	var errs []error
	for _, acc := range accounts {
		scope := "account " + strconv.FormatInt(acc, 10)
		last, seen := d.licencesAt[acc]
		licences := !seen || now.Sub(last) >= time.Minute || now.Before(last)
		if licences {
			d.licencesAt[acc] = now
		}
		if err := d.checkAccount(ctx, acc, byAccount[acc], licences); err != nil && ctx.Err() == nil {
			d.failures.Fail(ctx, JobChecks, scope, err)
			errs = append(errs, fmt.Errorf("%s: %w", scope, err))
		} else {
			d.failures.OK(ctx, JobChecks, scope)
		}
	}
	if len(errs) > 0 {
		return jobs.Reported(errors.Join(errs...))
	}
	return nil
}

func wantsAny(ws []Webhook, types ...string) bool {
	return slices.ContainsFunc(ws, func(w Webhook) bool {
		return slices.ContainsFunc(types, w.Wants)
	})
}

func (d *Dispatcher) checkAccount(ctx context.Context, acc int64, ws []Webhook, licences bool) error {
	notices := licences && wantsAny(ws, EventExpiring, EventExpired)
	if notices || wantsAny(ws, EventThreshold) {
		info, err := d.lic.AccountInfo(ctx, acc)
		switch {
		case errors.Is(err, fault.ErrNotFound): // no licence, or the account went
		case err != nil:
			return err
		default:
			if notices {
				if err := d.checkLicense(ctx, acc, ws, info.License); err != nil {
					return err
				}
			}
			if err := d.checkAccountUsage(ctx, acc, ws, info.License); err != nil {
				return err
			}
		}
	}
	if wantsAny(ws, EventRefused) {
		return d.digest(ctx, acc, ws)
	}
	return nil
}

// Notices of a licence, from the earliest.
var expiryNotices = []struct {
	key  string
	left time.Duration
}{{"30d", 30 * 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}, {"1d", 24 * time.Hour}, {"expired", 0}}

// checkLicense sends the notice that the licence's remaining time calls
// for, once per licence and expiry date (a licence renewed in place gets
// its notices again): a licence first seen 6 days before it expires gets
// the 7-day notice only (the 30-day one is marked as passed).
func (d *Dispatcher) checkLicense(ctx context.Context, acc int64, ws []Webhook, l licensing.License) error {
	exp := l.Payload.ExpirationDate
	if exp.IsZero() {
		return nil
	}
	key := l.ID + "@" + exp.UTC().Format(time.RFC3339)
	now := d.now().UTC()
	left := exp.Sub(now)
	due := -1
	for i, n := range expiryNotices {
		if left <= n.left {
			due = i
		}
	}
	if due < 0 {
		return nil
	}
	return d.store.InTx(ctx, func(tx Store) error {
		fresh, err := tx.AddNotice(ctx, acc, key, expiryNotices[due].key, now)
		if err != nil || !fresh {
			return err
		}
		for _, n := range expiryNotices[:due] {
			if _, err := tx.AddNotice(ctx, acc, key, n.key, now); err != nil {
				return err
			}
		}
		typ := EventExpiring
		data := map[string]any{"licenseId": l.ID, "expirationDate": exp.UTC()}
		if expiryNotices[due].left == 0 {
			typ = EventExpired
		} else {
			data["daysLeft"] = int(math.Ceil(left.Hours() / 24))
			data["notice"] = expiryNotices[due].key
		}
		return d.emit(ctx, tx, acc, typ, now, data, ws)
	})
}

// emit queues an event to every endpoint that wants it.
func (d *Dispatcher) emit(ctx context.Context, tx Store, acc int64, typ string, at time.Time, data any, ws []Webhook) error {
	out, err := d.deliveries(newEvent(typ, acc, at, data), ws)
	if err != nil {
		return err
	}
	return tx.AddDeliveries(ctx, out)
}

// deliveries are ev's, one per endpoint that wants it.
func (d *Dispatcher) deliveries(ev event, ws []Webhook) ([]Delivery, error) {
	now := d.now().UTC()
	var out []Delivery
	for _, w := range ws {
		if w.Wants(ev.Type) {
			dl, err := ev.deliveryTo(w.ID, now)
			if err != nil {
				return nil, err
			}
			out = append(out, dl)
		}
	}
	return out, nil
}

// accountScope names the account itself in the threshold state.
const accountScope = "account"

// checkAccountUsage fires account-wide thresholds: what all allocations
// charge against the licensed units, per package. It is looked at on
// each check (not in the registration transactions, which lock a pool,
// not the account), so a dip shorter than the check interval may not
// re-arm. Only accounts with explicit allocations have an account scope
// of their own: otherwise it is the Default allocation's.
func (d *Dispatcher) checkAccountUsage(ctx context.Context, acc int64, ws []Webhook, l licensing.License) error {
	if !wantsAny(ws, EventThreshold) {
		return nil
	}
	allocs, err := d.lic.Allocations(ctx, acc, licensing.AllocationQuery{})
	if err != nil {
		return err
	}
	if len(allocs) < 2 { // the Default alone
		return nil
	}
	now := d.now().UTC()
	licensed := l.Payload.Units(now)
	return d.store.InTx(ctx, func(tx Store) error {
		used, err := tx.AccountUsage(ctx, acc)
		if err != nil {
			return err
		}
		var out []Delivery
		for _, pkg := range licensing.Packages {
			if licensed[pkg] <= 0 {
				continue
			}
			c := Crossing{Scope: accountScope, Package: pkg, After: used[pkg], Limit: licensed[pkg]}
			ds, err := d.thresholds(ctx, tx, acc, now, ws, accountScope, c, func(t int) bool { return up(t, -1, c.After, c.Limit) })
			if err != nil {
				return err
			}
			out = append(out, ds...)
		}
		return tx.AddDeliveries(ctx, out)
	})
}

// digestLag leaves refusals this young for the next check: a refusal is
// stamped when it is decided, and its transaction (which may wait for a
// busy pool) commits within the request timeout; a replica's clock may
// also run a little behind.
const digestLag = 15 * time.Second

// DigestEvery is the least time between two digests of a pool and reason.
const DigestEvery = time.Minute

type digestKey struct{ pool, reason string }

// digest sends registration.refused digests: the first refusals of a
// pool and reason at once, and then at most one digest a minute with
// everything refused since the last.
func (d *Dispatcher) digest(ctx context.Context, acc int64, ws []Webhook) error {
	end := d.now().UTC().Add(-digestLag)
	return d.store.InTx(ctx, func(tx Store) error {
		cursor, ok, err := tx.DigestCursor(ctx, acc)
		if err != nil {
			return err
		}
		if !ok || end.Sub(cursor) > 24*time.Hour {
			// The first look (or one after a long pause) starts now: no
			// flood of old refusals, and nothing pending from before.
			states, err := tx.DigestStates(ctx, acc)
			if err != nil {
				return err
			}
			for _, s := range states {
				s.From, s.Pending = end, false
				if err := tx.SaveDigestState(ctx, s); err != nil {
					return err
				}
			}
			return tx.SetDigestCursor(ctx, acc, end)
		}
		if !end.After(cursor) {
			return nil
		}
		groups, err := tx.Refusals(ctx, acc, cursor, end)
		if err != nil {
			return err
		}
		states, err := tx.DigestStates(ctx, acc)
		if err != nil {
			return err
		}
		byKey := map[digestKey]DigestState{}
		for _, s := range states {
			byKey[digestKey{s.PoolID, s.Reason}] = s
		}
		for _, g := range groups {
			k := digestKey{g.PoolID, g.Reason}
			s, seen := byKey[k]
			if !seen {
				s = DigestState{AccountID: acc, PoolID: g.PoolID, Reason: g.Reason}
			}
			if !s.Pending {
				s.From, s.Pending = cursor, true
			}
			byKey[k] = s
		}
		for _, k := range slices.SortedFunc(maps.Keys(byKey), func(a, b digestKey) int {
			return cmp.Or(cmp.Compare(a.pool, b.pool), cmp.Compare(a.reason, b.reason))
		}) {
			s := byKey[k]
			if !s.Pending {
				continue
			}
			if !s.SentAt.IsZero() && end.Sub(s.SentAt) < DigestEvery {
				if err := tx.SaveDigestState(ctx, s); err != nil {
					return err
				}
				continue
			}
			all, err := tx.Refusals(ctx, acc, s.From, end)
			if err != nil {
				return err
			}
			i := slices.IndexFunc(all, func(g RefusalGroup) bool { return g.PoolID == k.pool && g.Reason == k.reason })
			if i >= 0 {
				g := all[i]
				data := map[string]any{"poolId": g.PoolID, "reason": g.Reason, "count": g.Count, "hosts": g.Hosts,
					"agentTypes": g.AgentTypes, "firstAt": g.First.UTC(), "lastAt": g.Last.UTC(), "from": s.From, "to": end}
				if err := d.emit(ctx, tx, acc, EventRefused, end, data, ws); err != nil {
					return err
				}
			}
			s.From, s.SentAt, s.Pending = end, end, false
			if err := tx.SaveDigestState(ctx, s); err != nil {
				return err
			}
		}
		return tx.SetDigestCursor(ctx, acc, end)
	})
}
