package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lcorp/licensing-controller/internal/fault"
	"github.com/lcorp/licensing-controller/internal/licensing"
)

// place returns the lowest package at or above from whose free units (the
// host's current charge given back when it is in that package) hold units.
func place(usage map[string]int64, a licensing.Allocation, from int, units int64, cur *HostCharge) (string, int64, bool) {
	for _, pkg := range licensing.Packages[from:] {
		free := licensing.SatSub(a.LimitOf(pkg), usage[pkg])
		if cur != nil && cur.Package == pkg {
			free = licensing.SatAdd(free, cur.Units)
		}
		if free >= units {
			return pkg, free, true
		}
	}
	return "", 0, false
}

// chargeAllocation is the IBL counting of API.md §4.1.
func (e *Engine) chargeAllocation(ctx context.Context, tx Store, ps *poolSet, a licensing.Allocation, host Host,
	in Registration, now time.Time, dec *Decision) ([]Event, *refusal, error) {
	if a.Disabled {
		return nil, &refusal{kind: fault.ErrForbidden, code: CodeAllocationDisabled,
			detail: fmt.Sprintf("allocation %q is disabled", a.Name)}, nil
	}
	ok, matched := ps.matchers[a.ID].Match(subject(in, host))
	dec.Explanation.MatchedFilters = matched
	if !ok {
		return nil, &refusal{kind: fault.ErrForbidden, code: CodeDeniedByFilter,
			detail: fmt.Sprintf("allocation %q does not admit this agent's application or host", a.Name)}, nil
	}
	if r := licenceRefusal(ps, now); r != nil {
		return nil, r, nil
	}
	need := level(needOf(in.AgentType))
	if !slices.ContainsFunc(licensing.Packages[need:], func(p string) bool { return a.LimitOf(p) > 0 }) {
		return nil, &refusal{kind: fault.ErrForbidden, code: CodePackageNotLicensed,
			detail: fmt.Sprintf("allocation %q has no units of %s or a higher package for %s", a.Name, needOf(in.AgentType), in.AgentType)}, nil
	}
	usage, err := tx.LockPool(ctx, a.AccountID, PoolAllocation, a.ID)
	if err != nil {
		return nil, nil, err
	}
	var cur *HostCharge
	if hc, err := tx.FindHostCharge(ctx, a.ID, host.ID); err == nil {
		cur = &hc
	} else if !errors.Is(err, fault.ErrNotFound) {
		return nil, nil, err
	}
	known := host.VCPU != nil
	units := e.fallbackUnits(ps, in.AgentType)
	if known {
		units = *host.VCPU
	}
	from := need
	if cur != nil {
		from = max(need, level(cur.Package)) // a host only moves up
		if !known {
			units = cur.Units // a known charge stays; a fallback charge is per host
		}
	} else if !known && a.FallbackModeDelay {
		if wait := host.FirstSeenAt.Add(e.opt.FallbackDelay).Sub(now); wait > 0 {
			return nil, &refusal{kind: fault.ErrConflict, code: CodeFallbackDelay, retryAfter: retryAfter(wait),
				detail: fmt.Sprintf("vCPU of host %s unknown: allocation %q charges fallback units only %s after the host was first seen",
					host.ID, a.Name, e.opt.FallbackDelay)}, nil
		}
	}
	pkg, free, fits := place(usage, a, from, units, cur)
	var evs []Event
	if !fits && cur == nil && isMachineAgent(in.AgentType) && a.MachineAgentPriority {
		evs, pkg, free, fits, err = e.preempt(ctx, tx, ps, a, usage, from, units, host.ID, now)
		if err != nil {
			return nil, nil, err
		}
	}
	if !fits {
		firstPkg := licensing.Packages[from]
		dec.Package = firstPkg
		dec.Explanation.Limit = a.LimitOf(firstPkg)
		dec.Explanation.UnitsAvailableBefore = max(a.LimitOf(firstPkg)-usage[firstPkg], 0)
		return nil, &refusal{kind: fault.ErrConflict, code: CodeNoMoreUnits,
			detail: fmt.Sprintf("allocation %q has no room for %d units of %s or a higher package", a.Name, units, firstPkg)}, nil
	}
	dec.Package, dec.HostUnits = pkg, units
	dec.Explanation.Limit, dec.Explanation.UnitsAvailableBefore = a.LimitOf(pkg), free
	dec.UnitsCharged = units
	deltas := map[string]int64{pkg: units}
	hc := HostCharge{PoolID: a.ID, HostID: host.ID, AccountID: a.AccountID, Package: pkg, Units: units, Fallback: !known, ChargedAt: now}
	if cur != nil {
		dec.UnitsCharged = units - cur.Units
		deltas[cur.Package] -= cur.Units
		hc.ChargedAt = cur.ChargedAt
		if cur.Package == pkg {
			dec.Explanation.UnitsAvailableBefore -= cur.Units // what was free beside this host
		}
	}
	if cur == nil || *cur != hc {
		if !in.DryRun {
			if err := tx.SaveHostCharge(ctx, hc); err != nil {
				return nil, nil, err
			}
			if err := e.addUsage(ctx, tx, ps, a.ID, usage, deltas, now); err != nil {
				return nil, nil, err
			}
		}
		if cur != nil {
			why := "VCPU_KNOWN"
			if cur.Package != pkg {
				why = "UPGRADED_FROM_" + cur.Package
			}
			evs = append(evs, e.event(a.AccountID, EventChanged, *dec, in, units-cur.Units, why, now))
		}
	}
	ev, err := e.grant(ctx, tx, a.AccountID, in.LicenseKey, in, host, now, dec)
	if err != nil {
		return nil, nil, err
	}
	return append(evs, ev), nil, nil
}

func subject(in Registration, h Host) licensing.Subject {
	s := licensing.Subject{HostID: h.ID, HostName: h.Name}
	if in.AppID != nil {
		s.HasApp, s.AppID = true, *in.AppID
		if in.AppName != nil {
			s.AppName = *in.AppName
		}
	} else if in.AppName != nil {
		s.HasApp, s.AppName = true, *in.AppName
	}
	return s
}

func licenceRefusal(ps *poolSet, now time.Time) *refusal {
	switch {
	case !ps.HasLicense:
		return &refusal{kind: fault.ErrForbidden, code: CodeNoLicense, detail: "the account has no licence"}
	case now.After(ps.Expires):
		return &refusal{kind: fault.ErrForbidden, code: CodeLicenseExpired, detail: "the account's licence has expired"}
	}
	return nil
}

// preempt frees room for a machine agent by revoking the app-server leases
// of the allocation's most recently charged hosts (API.md §4.1). It plans
// on a copy of the usage and writes only when the machine agent then fits.
func (e *Engine) preempt(ctx context.Context, tx Store, ps *poolSet, a licensing.Allocation, usage map[string]int64, from int,
	units int64, skipHost string, now time.Time) ([]Event, string, int64, bool, error) {
	victims, err := tx.PreemptibleHosts(ctx, a.ID)
	if err != nil {
		return nil, "", 0, false, err
	}
	sim := map[string]int64{}
	for k, v := range usage {
		sim[k] = v
	}
	type step struct {
		hc      HostCharge
		revoke  []Lease
		replace *HostCharge // the host's new charge for its remaining machine agents
	}
	var plan []step
	for _, v := range victims {
		if v.HostID == skipHost {
			continue
		}
		leases, err := tx.HostLeases(ctx, a.ID, v.HostID)
		if err != nil {
			return nil, "", 0, false, err
		}
		st := step{hc: v}
		var keep []Lease
		for _, l := range leases {
			if level(needOf(l.AgentType)) > 0 {
				st.revoke = append(st.revoke, l)
			} else {
				keep = append(keep, l)
			}
		}
		sim[v.Package] -= v.Units
		if len(keep) > 0 {
			if pkg, _, ok := place(sim, a, 0, v.Units, nil); ok {
				r := v
				r.Package = pkg
				st.replace = &r
				sim[pkg] += v.Units
			} else {
				st.revoke = append(st.revoke, keep...)
			}
		}
		plan = append(plan, st)
		if pkg, free, ok := place(sim, a, from, units, nil); ok {
			var evs []Event
			deltas := map[string]int64{}
			for _, st := range plan {
				deltas[st.hc.Package] -= st.hc.Units
				ids := make([]string, len(st.revoke))
				for i, l := range st.revoke {
					ids[i] = l.ID
					evs = append(evs, leaseEvent(EventPreempted, l, 0, "MACHINE_AGENT_PRIORITY", now))
				}
				if err := tx.RevokeLeases(ctx, a.AccountID, ids, CodePreempted); err != nil {
					return nil, "", 0, false, err
				}
				if err := preempted(ctx, tx, ps, a.Name, st.revoke, skipHost, now); err != nil {
					return nil, "", 0, false, err
				}
				if st.replace != nil {
					deltas[st.replace.Package] += st.replace.Units
					err = tx.SaveHostCharge(ctx, *st.replace)
				} else {
					err = tx.DeleteHostCharge(ctx, a.ID, st.hc.HostID)
				}
				if err != nil {
					return nil, "", 0, false, err
				}
			}
			if err := e.addUsage(ctx, tx, ps, a.ID, usage, deltas, now); err != nil {
				return nil, "", 0, false, err
			}
			for k, d := range deltas {
				usage[k] += d
			}
			return evs, pkg, free, true, nil
		}
	}
	return nil, "", 0, false, nil
}

// chargeRule is the ABL counting of API.md §4.2.
func (e *Engine) chargeRule(ctx context.Context, tx Store, ps *poolSet, r licensing.Rule, host Host,
	in Registration, now time.Time, dec *Decision) ([]Event, *refusal, error) {
	if !r.Enabled {
		return nil, &refusal{kind: fault.ErrForbidden, code: CodeRuleDisabled, detail: fmt.Sprintf("licence rule %q is disabled", r.Name)}, nil
	}
	ok, matched := ps.matchers[r.ID].Match(subject(in, host))
	dec.Explanation.MatchedFilters = matched
	if !ok {
		return nil, &refusal{kind: fault.ErrForbidden, code: CodeDeniedByFilter,
			detail: fmt.Sprintf("licence rule %q does not admit this agent's application or host", r.Name)}, nil
	}
	if ref := licenceRefusal(ps, now); ref != nil {
		return nil, ref, nil
	}
	module, hasModule := moduleOf[in.AgentType]
	limit, entitled := r.Licenses(module)
	dec.Package = module
	if !hasModule || !entitled {
		return nil, &refusal{kind: fault.ErrForbidden, code: CodePackageNotLicensed,
			detail: fmt.Sprintf("licence rule %q has no entitlement for %s", r.Name, in.AgentType)}, nil
	}
	usage, err := tx.LockPool(ctx, r.AccountID, PoolRule, r.ID)
	if err != nil {
		return nil, nil, err
	}
	cost := int64(1)
	if slices.Contains(perHostModules, module) {
		held, err := tx.HostHolds(ctx, r.ID, host.ID, module)
		if err != nil {
			return nil, nil, err
		}
		if held {
			cost = 0 // one licence per host
		}
	}
	dec.Explanation.Limit, dec.Explanation.UnitsAvailableBefore = limit, max(limit-usage[module], 0)
	if usage[module]+cost > limit {
		return nil, &refusal{kind: fault.ErrConflict, code: CodeNoMoreUnits,
			detail: fmt.Sprintf("licence rule %q has all %d %s licences in use", r.Name, limit, module)}, nil
	}
	dec.UnitsCharged = cost
	if !in.DryRun && cost > 0 {
		if err := e.addUsage(ctx, tx, ps, r.ID, usage, map[string]int64{module: cost}, now); err != nil {
			return nil, nil, err
		}
		total := cost
		for _, u := range usage {
			total = licensing.SatAdd(total, u)
		}
		if err := tx.SetPeakUsage(ctx, r.ID, total); err != nil {
			return nil, nil, err
		}
	}
	ev, err := e.grant(ctx, tx, r.AccountID, in.LicenseKey, in, host, now, dec)
	if err != nil {
		return nil, nil, err
	}
	return []Event{ev}, nil, nil
}

// release deletes a lease and gives back what it held: the host's charge
// when it was the host's last lease in an allocation, the licence of a
// rule (per host for per-host modules). The caller's transaction must not
// hold another pool's lock out of order: release locks the lease's pool.
func (e *Engine) release(ctx context.Context, tx Store, l Lease, kind, why string, now time.Time) error {
	if l.RevokedCode != nil { // already given back when it was revoked
		return deleteLease(ctx, tx, l)
	}
	// The pools (for the webhook levels), fresh as a registration sees
	// them, before the pool lock: locks are taken account first, as
	// registrations take them.
	ps, err := e.pools(ctx, tx, l.AccountID)
	if err != nil {
		return err
	}
	before, err := tx.LockPool(ctx, l.AccountID, l.PoolKind, l.PoolID)
	if err != nil {
		return err
	}
	if err := deleteLease(ctx, tx, l); err != nil {
		return err
	}
	var units int64
	switch l.PoolKind {
	case PoolAllocation:
		// The host's last lease in the pool: its charge goes.
		hc, gone, err := tx.ReleaseHostCharge(ctx, l.PoolID, l.HostID)
		if err != nil {
			return err
		}
		if gone {
			units = hc.Units
			l.Package = hc.Package
			if err := e.addUsage(ctx, tx, ps, l.PoolID, before, map[string]int64{hc.Package: -hc.Units}, now); err != nil {
				return err
			}
		}
	case PoolRule:
		units = 1
		if slices.Contains(perHostModules, l.Package) {
			held, err := tx.HostHolds(ctx, l.PoolID, l.HostID, l.Package)
			if err != nil {
				return err
			}
			if held {
				units = 0 // the host still holds the module's licence
			}
		}
		if units > 0 {
			if err := e.addUsage(ctx, tx, ps, l.PoolID, before, map[string]int64{l.Package: -units}, now); err != nil {
				return err
			}
		}
	}
	return tx.AddEvents(ctx, []Event{leaseEvent(kind, l, -units, why, now)})
}

// deleteLease deletes a lease release read. Gone meanwhile, a concurrent
// release (on PostgreSQL, in parallel) read it too and deleted it first:
// this one did not find it.
func deleteLease(ctx context.Context, tx Store, l Lease) error {
	if err := tx.DeleteLease(ctx, l.AccountID, l.ID); errors.Is(err, fault.ErrNotFound) {
		return registrationNotFound(l.ID)
	} else if err != nil {
		return err
	}
	return nil
}

func registrationNotFound(id string) error {
	return fault.New(fault.ErrNotFound, "REGISTRATION_NOT_FOUND", "no live registration %s", id)
}

// HeartbeatResult is a renewed lease.
type HeartbeatResult struct {
	RegistrationID string
	LeaseExpiresAt time.Time
	HostUnits      int64
	Package        string
	// VCPUApplied tells, when the heartbeat reported a vCPU for a host
	// charged in an allocation, whether the charge now follows it; Reason
	// says why not (NO_MORE_UNITS: the larger charge does not fit, and the
	// host stays undercounted).
	VCPUApplied *bool
	Reason      string
}

// Heartbeat renews a lease; a vCPU, when given, updates the host and
// re-charges it at once where it fits. Errors: ErrNotFound
// (REGISTRATION_NOT_FOUND), ErrConflict (PREEMPTED: the lease was revoked;
// it is gone after this answer).
func (e *Engine) Heartbeat(ctx context.Context, accountID int64, id string, vcpu *int64) (HeartbeatResult, error) {
	if vcpu != nil && (*vcpu < licensing.MinVCPU || *vcpu > licensing.MaxVCPU) {
		return HeartbeatResult{}, fault.Invalid("vCpu", fmt.Sprintf("must be %d-%d", licensing.MinVCPU, licensing.MaxVCPU))
	}
	if vcpu == nil {
		// The common heartbeat: renew a live lease and read its host's
		// charge, in one statement (shared with the heartbeats that arrive
		// meanwhile: renew.go). Anything else (no such
		// lease, revoked, expired, an inconsistent charge) takes the path
		// below, which tells why.
		r, ok, err := e.renewLive(ctx, accountID, id)
		if err != nil {
			return HeartbeatResult{}, fmt.Errorf("heartbeat %s: %w", id, err)
		}
		if l, hc := r.Lease, r.Charge; ok && (l.PoolKind != PoolAllocation || hc != nil) {
			res := HeartbeatResult{RegistrationID: l.ID, LeaseExpiresAt: l.ExpiresAt, Package: l.Package}
			if hc != nil && l.PoolKind == PoolAllocation {
				res.HostUnits, res.Package = hc.Units, hc.Package
			}
			return res, nil
		}
	}
	var (
		res     HeartbeatResult
		revoked *string
	)
	err := e.store.InTx(ctx, func(tx Store) error {
		now := e.now().UTC()
		l, err := tx.FindLease(ctx, accountID, id)
		switch {
		case errors.Is(err, fault.ErrNotFound):
			return registrationNotFound(id)
		case err != nil:
			return err
		case l.RevokedCode != nil:
			revoked = l.RevokedCode
			return tx.DeleteLease(ctx, l.AccountID, l.ID) // told once, then gone
		case !l.ExpiresAt.After(now):
			return registrationNotFound(id) // expired: the reaper gives it back
		}
		res = HeartbeatResult{RegistrationID: l.ID, LeaseExpiresAt: now.Add(e.opt.LeaseTTL), Package: l.Package}
		if err := tx.RenewLease(ctx, accountID, id, now, res.LeaseExpiresAt); err != nil {
			return err
		}
		if vcpu != nil {
			if _, err := tx.SeeHost(ctx, Host{AccountID: accountID, ID: l.HostID, Name: l.HostID, VCPU: vcpu, FirstSeenAt: now}); err != nil {
				return err
			}
		}
		if l.PoolKind != PoolAllocation {
			return nil
		}
		hc, why, err := e.recharge(ctx, tx, l, vcpu, now)
		if err != nil {
			return err
		}
		res.HostUnits, res.Package = hc.Units, hc.Package
		if vcpu != nil {
			applied := why == ""
			res.VCPUApplied, res.Reason = &applied, why
		}
		return nil
	})
	if err != nil {
		return HeartbeatResult{}, fmt.Errorf("heartbeat %s: %w", id, err)
	}
	if revoked != nil {
		return HeartbeatResult{}, fault.New(fault.ErrConflict, *revoked, "registration %s was revoked (%s): register again", id, *revoked)
	}
	return res, nil
}

// recharge moves a host's charge to a newly reported vCPU when it fits (in
// its package or a higher one); otherwise the charge stays as it is, an
// UNDERCOUNTED event records it, and why says so (NO_MORE_UNITS).
func (e *Engine) recharge(ctx context.Context, tx Store, l Lease, vcpu *int64, now time.Time) (HostCharge, string, error) {
	hc, why, err := e.rechargeHost(ctx, tx, l, vcpu, now)
	if err != nil || why != CodeNoMoreUnits {
		return hc, why, err
	}
	ev := leaseEvent(EventUndercounted, l, *vcpu-hc.Units, CodeNoMoreUnits, now)
	ev.Package = hc.Package
	return hc, why, tx.AddEvents(ctx, []Event{ev})
}

func (e *Engine) rechargeHost(ctx context.Context, tx Store, l Lease, vcpu *int64, now time.Time) (HostCharge, string, error) {
	hc, err := tx.FindHostCharge(ctx, l.PoolID, l.HostID)
	if err != nil || vcpu == nil || (hc.Units == *vcpu && !hc.Fallback) {
		return hc, "", err
	}
	ps, err := e.pools(ctx, tx, l.AccountID)
	if err != nil {
		return hc, "", err
	}
	var a *licensing.Allocation
	for i := range ps.Allocations {
		if ps.Allocations[i].ID == l.PoolID {
			a = &ps.Allocations[i]
		}
	}
	if a == nil {
		return hc, CodeAllocationDeleted, nil // nothing to re-charge against
	}
	usage, err := tx.LockPool(ctx, l.AccountID, PoolAllocation, l.PoolID)
	if err != nil {
		return hc, "", err
	}
	if hc, err = tx.FindHostCharge(ctx, l.PoolID, l.HostID); err != nil { // again, under the lock
		return hc, "", err
	}
	pkg, _, ok := place(usage, *a, level(hc.Package), *vcpu, &hc)
	if !ok {
		return hc, CodeNoMoreUnits, nil
	}
	next := hc
	next.Package, next.Units, next.Fallback = pkg, *vcpu, false
	if err := tx.SaveHostCharge(ctx, next); err != nil {
		return hc, "", err
	}
	deltas := map[string]int64{hc.Package: -hc.Units}
	deltas[pkg] += *vcpu
	if err := e.addUsage(ctx, tx, ps, l.PoolID, usage, deltas, now); err != nil {
		return hc, "", err
	}
	l.Package = pkg
	return next, "", tx.AddEvents(ctx, []Event{leaseEvent(EventChanged, l, *vcpu-hc.Units, "VCPU_KNOWN", now)})
}

// Revoked is a lease a batch heartbeat could not renew because it was revoked.
type Revoked struct {
	ID, Code string
}

// BatchResult is the answer to a batch heartbeat.
type BatchResult struct {
	Renewed int
	Unknown []string
	Revoked []Revoked
}

// MaxBatch is the largest batch heartbeat.
const MaxBatch = 10000

// HeartbeatBatch renews many leases with one statement. Revoked leases are
// reported once and deleted; unknown and expired ids are listed.
func (e *Engine) HeartbeatBatch(ctx context.Context, accountID int64, ids []string) (BatchResult, error) {
	if len(ids) == 0 || len(ids) > MaxBatch {
		return BatchResult{}, fault.Invalid("ids", fmt.Sprintf("must hold 1-%d registration ids", MaxBatch))
	}
	now := e.now().UTC()
	res := BatchResult{Unknown: []string{}, Revoked: []Revoked{}}
	err := e.store.InTx(ctx, func(tx Store) error {
		renewed, err := tx.RenewLeases(ctx, accountID, ids, now, now.Add(e.opt.LeaseTTL))
		if err != nil {
			return err
		}
		res.Renewed = len(renewed)
		known := make(map[string]bool, len(renewed))
		for _, id := range renewed {
			known[id] = true
		}
		if len(renewed) == len(ids) {
			return nil
		}
		rest := slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return known[id] })
		revoked, err := tx.RevokedLeases(ctx, accountID, rest)
		if err != nil {
			return err
		}
		for _, l := range revoked {
			known[l.ID] = true
			res.Revoked = append(res.Revoked, Revoked{ID: l.ID, Code: *l.RevokedCode})
			if err := tx.DeleteLease(ctx, l.AccountID, l.ID); err != nil {
				return err
			}
		}
		for _, id := range rest {
			if !known[id] {
				res.Unknown = append(res.Unknown, id)
				known[id] = true // list duplicates once
			}
		}
		return nil
	})
	if err != nil {
		return BatchResult{}, fmt.Errorf("batch heartbeat: %w", err)
	}
	return res, nil
}

// MaxLeasePage is the largest page of a lease listing.
const MaxLeasePage = 1000

// Leases lists live leases, at most MaxLeasePage+1 of them.
func (e *Engine) Leases(ctx context.Context, q LeaseQuery) ([]LeaseInfo, error) {
	q.Now = e.now().UTC()
	// A listing asks for one more than its page to know whether another
	// page follows.
	if q.Limit <= 0 || q.Limit > MaxLeasePage+1 {
		q.Limit = MaxLeasePage + 1
	}
	ls, err := e.store.Leases(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	if len(ls) == 0 {
		return []LeaseInfo{}, nil
	}
	ps, err := e.pools(ctx, e.store, q.AccountID)
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	names := map[string]string{}
	for _, p := range ps.byKey {
		names[p.id()] = p.name()
	}
	ids := make([]string, 0, len(ls))
	for _, l := range ls {
		ids = append(ids, l.HostID)
	}
	slices.Sort(ids)
	hosts, err := e.store.Hosts(ctx, q.AccountID, slices.Compact(ids))
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	byID := make(map[string]Host, len(hosts))
	for _, h := range hosts {
		byID[h.ID] = h
	}
	out := make([]LeaseInfo, len(ls))
	for i, l := range ls {
		h := byID[l.HostID]
		out[i] = LeaseInfo{Lease: l, PoolName: names[l.PoolID], HostName: cmp.Or(h.Name, l.HostID), HostVCPU: h.VCPU}
	}
	return out, nil
}

// LeaseInfo is a live lease with its pool's name and its host as last seen.
type LeaseInfo struct {
	Lease
	PoolName string
	HostName string
	HostVCPU *int64 // nil: unknown
}

// Reap releases leases whose TTL has passed, a batch at a time, and
// returns how many it released.
func (e *Engine) Reap(ctx context.Context) (int, error) {
	n, _, err := e.reap(ctx, e.now().UTC(), false)
	return n, err
}

// reap releases the leases expired at now; expiring tells that some lease
// is known to have expired by now. It also returns the earliest expiry
// still ahead (zero when there is none). While every replica has one clock
// and one TTL, expiries only move forward and no lease that exists now
// expires before it. Two things can make a lease expire sooner: a
// registration whose transaction took its time before now and commits
// after this pass (by up to that transaction's length), and a replica whose
// clock lags renewing a lease; RunReaper bounds both by looking at least
// once a minute.
func (e *Engine) reap(ctx context.Context, now time.Time, expiring bool) (int, time.Time, error) {
	if !expiring {
		// Mostly nothing has expired: the earliest expiry of all says
		// so, and is then the answer, in one scan.
		first, err := e.store.NextExpiry(ctx, time.Time{})
		if err != nil {
			return 0, time.Time{}, fmt.Errorf("find next expiry: %w", err)
		}
		if first.IsZero() || first.After(now) {
			return 0, first, nil
		}
	}
	total := 0
	for {
		expired, err := e.store.ExpiredLeases(ctx, now, 500)
		if err != nil {
			return total, time.Time{}, fmt.Errorf("find expired leases: %w", err)
		}
		byPool := map[string][]Lease{}
		for _, l := range expired {
			byPool[l.PoolID] = append(byPool[l.PoolID], l)
		}
		for pool, ls := range byPool {
			err := e.store.InTx(ctx, func(tx Store) error {
				for _, l := range ls {
					cur, err := tx.FindLease(ctx, l.AccountID, l.ID)
					if errors.Is(err, fault.ErrNotFound) {
						continue
					} else if err != nil {
						return err
					}
					if cur.ExpiresAt.After(now) { // renewed meanwhile
						continue
					}
					// Recorded at the expiry itself: analytics count the
					// lease until then, not until the reaper came by.
					if err := e.release(ctx, tx, cur, EventExpired, "EXPIRED", cur.ExpiresAt); err != nil {
						return err
					}
					// An expiry of an earlier day than today (the reaper was
					// down) may fall in a day whose analytics are rolled up;
					// one recorded later than half LateEventAge after it may
					// fall behind what replicas keep of today's replay (the
					// other half is for this pass's length and clocks apart).
					if txNow := e.now().UTC(); cur.ExpiresAt.Before(txNow.Truncate(24*time.Hour)) || cur.ExpiresAt.Before(txNow.Add(-LateEventAge/2)) {
						if err := tx.ReopenAnalytics(ctx, cur.AccountID, cur.ExpiresAt.Unix()/(24*60*60)); err != nil {
							return err
						}
					}
					total++
				}
				return nil
			})
			if err != nil {
				return total, time.Time{}, fmt.Errorf("reap pool %s: %w", pool, err)
			}
		}
		if len(expired) < 500 {
			next, err := e.store.NextExpiry(ctx, now)
			if err != nil {
				return total, time.Time{}, fmt.Errorf("find next expiry: %w", err)
			}
			return total, next, nil
		}
	}
}

// reaperMaxWait bounds how long the reaper trusts the earliest expiry it
// saw: a replica whose clock or LC_LEASE_TTL differs could grant a lease
// that expires sooner.
const reaperMaxWait = time.Minute

// RunReaper reaps until ctx ends; run it on the leader only. Finding expired
// leases scans the leases (an index on the expiry would make every heartbeat
// update an index), so it does not scan every interval: after a pass at t,
// nothing can expire before the earliest expiry it saw, nor before t + TTL
// for leases granted since. It looks again every interval once that time,
// or a minute, has come.
func (e *Engine) RunReaper(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var (
		due      time.Time
		expiring bool
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := e.now().UTC()
			// A due time further ahead than the longest wait means the
			// clock went back: look now rather than stall.
			if now.Before(due) && due.Sub(now) <= reaperMaxWait {
				continue
			}
			n, next, err := e.reap(ctx, now, expiring)
			switch {
			case err != nil && ctx.Err() == nil:
				e.log.Error("reaper", "error", err)
			case n > 0:
				e.log.Info("reaper released expired leases", "count", n)
			}
			due, expiring = reapDue(now, next, e.opt.LeaseTTL, err)
		}
	}
}

// reapDue is when a reaper pass that started at now, and found next as the
// earliest expiry ahead, needs a successor, and whether a lease expires
// then (so that the successor can skip looking whether one has).
func reapDue(now, next time.Time, ttl time.Duration, err error) (time.Time, bool) {
	if err != nil {
		return time.Time{}, false
	}
	due := now.Add(min(ttl, reaperMaxWait))
	if !next.IsZero() && !next.After(due) {
		return next, true
	}
	return due, false
}
