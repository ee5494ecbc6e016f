package usage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lcorp/licensing-controller/internal/engine"
	"github.com/lcorp/licensing-controller/internal/jobs"
)

// Analytics rollups: the leader rolls up each closed UTC day of an account
// once (DayRollup) and analytics read whole days from them, sweeping raw
// events only for the partial days at a window's edges. A day is closed
// RollupGrace after its end: by then every transaction that recorded an
// event of that day has committed. An expiry recorded later for a rolled
// up day (a reaper that was down) reopens the account's days from then
// (engine.Store.ReopenAnalytics), and the next pass rolls them up again.

// Day is a UTC day, counted since 1970-01-01.
type Day = int64

const daySeconds = 24 * 60 * 60

// DayOf is the UTC day of t.
func DayOf(t time.Time) Day {
	s := t.Unix()
	if s < 0 {
		return (s+1)/daySeconds - 1
	}
	return s / daySeconds
}

// DayStart is the start of day d.
func DayStart(d Day) time.Time { return time.Unix(d*daySeconds, 0).UTC() }

// RollupGrace is how long after its end a day is rolled up.
const RollupGrace = engine.LateEventAge

// JobAnalyticsRollup names the rollups in lc_background_job_failures_total.
const JobAnalyticsRollup = "analytics-rollup"

// ErrRollupMoved: the rollup state changed while a day was being built (a
// late expiry reopened a day): the day is built again.
var ErrRollupMoved = errors.New("analytics rollup state moved")

// Presence kinds.
const (
	PresenceHost = "h"
	PresenceApp  = "a"
)

// DayType is one agent type's day, of all pools (Pool "") or of one.
type DayType struct {
	Pool, AgentType string
	Seconds         int64
	Peak            int
	PeakAt          time.Time
	PeakPackages    []PackageCount
	Packages        []string
	// Hosts and Apps count the distinct hosts and applications with a
	// lease; -1 when not known (a day rolled up before they were kept).
	Hosts, Apps int
}

// Presence says a host or application had a lease of an agent type in a
// pool on a day.
type Presence struct {
	Pool, AgentType string
	Kind            string // PresenceHost or PresenceApp
	Item            string // host id or appKey
}

// DayLease is the seconds of one agent type and version on one host for
// one application in one package and pool on a day (Package); read back,
// summed over a window's days, packages and pools (Packages).
type DayLease struct {
	Pool    string
	AppKey  string
	Package string
	LeaseUsage
	Seconds int64
}

// DayRollup is one account's day.
type DayRollup struct {
	AccountID int64
	Day       Day
	Types     []DayType
	Presence  []Presence
	Leases    []DayLease
	// Open is the leases open at the day's end: each one's grant (or last
	// package change), by agent.
	Open []EventRow
}

// RollupStore keeps the rollups.
type RollupStore interface {
	AccountIDs(ctx context.Context) ([]int64, error)
	// RollupState is the first day not rolled up and the state's
	// generation, which every reopen moves; false when the account has no
	// state yet.
	RollupState(ctx context.Context, accountID int64) (through Day, gen int64, ok bool, err error)
	// InitRollupState gives the account a state starting at day first,
	// unless it has one.
	InitRollupState(ctx context.Context, accountID int64, first Day) error
	// SaveRollupDay replaces the day's rollups and makes the day after it
	// the account's first day not rolled up, in one short transaction, if
	// the state is still at r.Day and generation gen; else it returns
	// ErrRollupMoved and writes nothing.
	SaveRollupDay(ctx context.Context, r DayRollup, gen int64) error
	// OpenAtDay reads the leases open at the start of day d (of the pools,
	// nil: all) that a rollup saved: those of the days rolled up within
	// the event retention and of the first day not rolled up; false for
	// another day.
	OpenAtDay(ctx context.Context, accountID int64, d Day, pools []string) ([]EventRow, bool, error)
	// RollupTypes reads the days [d0, d1) of pool ("" for all pools).
	RollupTypes(ctx context.Context, accountID int64, pool string, d0, d1 Day) ([]DayType, error)
	// RollupPresence reads who was present on the days [d0, d1), once per
	// agent type, kind and item, of the pools (nil: all).
	RollupPresence(ctx context.Context, accountID int64, pools []string, d0, d1 Day) ([]Presence, error)
	// RollupLeases reads the lease usage of the days [d0, d1) of the pools
	// (nil: all), summed per agent type and version, host and application
	// over packages and pools (Packages sorted), ordered by host id,
	// AppKey, agent type and version.
	RollupLeases(ctx context.Context, accountID int64, pools []string, d0, d1 Day) ([]DayLease, error)
	// RollupsWritten refreshes the planner's statistics of the rollups after
	// a pass wrote days: a window's sums are grouped by hash only when the
	// planner knows how many rows a day has.
	RollupsWritten(ctx context.Context) error
	// PruneRollups deletes the account's rollups of the days before `before`.
	PruneRollups(ctx context.Context, accountID int64, before Day) (int64, error)
}

// Raw returns the analytics that read events only, never the rollups:
// the reference the rollups are checked and measured against.
func (a *Analytics) Raw() *Analytics {
	r := *a
	r.raw = true
	return &r
}

// windowPlan is a resolved window: the whole days [d0, d1) come from the
// rollups when rolled, the rest from events.
type windowPlan struct {
	from, to time.Time
	pools    []string
	rolled   bool
	d0, d1   Day
	// kept: the edges come from the replay cache, checked against the
	// account's rollup state read with the plan: the first day not rolled
	// up (through) and its generation.
	kept    bool
	through Day
	gen     int64
}

// rollupPool is the pool whose DayType rows hold the plan's figures.
func (w windowPlan) rollupPool() string {
	if len(w.pools) == 1 {
		return w.pools[0]
	}
	return ""
}

// plan resolves q and decides which days the rollups answer. The highest
// concurrency of several pools together is not in the rollups (only that
// of each pool and of all of them), so a filter matching several pools
// reads events.
func (a *Analytics) plan(ctx context.Context, q AnalyticsQuery) (windowPlan, error) {
	from, to, pools, err := a.resolve(ctx, q)
	w := windowPlan{from: from, to: to, pools: pools}
	if err != nil || a.raw || !from.Before(to) || (pools != nil && len(pools) != 1) {
		return w, err
	}
	through, gen, ok, err := a.store.RollupState(ctx, q.AccountID)
	if err != nil || !ok {
		return w, err
	}
	w.kept, w.through, w.gen = a.cache != nil, through, gen
	w.d0 = DayOf(from)
	if DayStart(w.d0).Before(from) {
		w.d0++
	}
	w.d1 = min(DayOf(to), through)
	w.rolled = w.d0 < w.d1
	return w, nil
}

// edges rebuilds the segments of the plan that the rollups do not answer.
func (a *Analytics) edges(ctx context.Context, accountID int64, w windowPlan) ([]segment, error) {
	if w.kept {
		return a.cachedEdges(ctx, accountID, w)
	}
	if !w.rolled {
		return a.segments(ctx, accountID, w.pools, w.from, w.to, 0)
	}
	head, err := a.segments(ctx, accountID, w.pools, w.from, DayStart(w.d0), 0)
	if err != nil {
		return nil, err
	}
	tail, err := a.segments(ctx, accountID, w.pools, DayStart(w.d1), w.to, len(head)+1)
	if err != nil {
		return nil, err
	}
	return append(head, tail...), nil
}

// BuildDay computes the rollups of one day of an account from its events.
func (a *Analytics) BuildDay(ctx context.Context, accountID int64, d Day) (DayRollup, error) {
	r, _, err := a.buildDay(ctx, accountID, d, nil)
	return r, err
}

// buildDay is BuildDay given the leases open at the day's start (nil: read
// them); it returns those open at its end too.
func (a *Analytics) buildDay(ctx context.Context, accountID int64, d Day, open map[string]segment) (DayRollup, map[string]segment, error) {
	segs, open, err := a.segmentsFrom(ctx, accountID, nil, DayStart(d), DayStart(d+1), 0, open)
	if err != nil {
		return DayRollup{}, nil, fmt.Errorf("roll up day %s: %w", DayStart(d).Format(time.DateOnly), err)
	}
	r := DayRollup{AccountID: accountID, Day: d}
	type tk struct{ pool, typ string }
	byType := map[tk][]int32{} // segment indices
	seen := map[Presence]bool{}
	type lk struct{ pool, typ, version, host, app, pkg string }
	leases := map[lk]int{}
	for i, s := range segs {
		byType[tk{"", s.agentType}] = append(byType[tk{"", s.agentType}], int32(i))
		byType[tk{s.pool, s.agentType}] = append(byType[tk{s.pool, s.agentType}], int32(i))
		seen[Presence{Pool: s.pool, AgentType: s.agentType, Kind: PresenceHost, Item: s.hostID}] = true
		app := s.app
		if s.hasApp() {
			seen[Presence{Pool: s.pool, AgentType: s.agentType, Kind: PresenceApp, Item: app}] = true
		}
		k := lk{s.pool, s.agentType, s.agentVersion, s.hostID, app, s.pkg}
		i, ok := leases[k]
		if !ok {
			i = len(r.Leases)
			leases[k] = i
			r.Leases = append(r.Leases, DayLease{Pool: s.pool, AppKey: app, Package: s.pkg, LeaseUsage: LeaseUsage{AgentType: s.agentType,
				AgentVersion: s.agentVersion, HostID: s.hostID, HostName: s.hostName, AppID: s.appID, AppName: s.appName}})
		}
		r.Leases[i].Seconds += seconds(s.from, s.to)
	}
	for k, idx := range byType {
		t := DayType{Pool: k.pool, AgentType: k.typ}
		used, hosts, apps := map[string]bool{}, map[string]bool{}, map[string]bool{}
		for _, i := range idx {
			s := &segs[i]
			t.Seconds += seconds(s.from, s.to)
			if s.pkg != "" {
				used[s.pkg] = true
			}
			hosts[s.hostID] = true
			if s.hasApp() {
				apps[s.app] = true
			}
		}
		t.Hosts, t.Apps = len(hosts), len(apps)
		var at *time.Time
		t.Peak, at, t.PeakPackages = maxConcurrency(segs, idx)
		if at != nil {
			t.PeakAt = *at
		}
		t.Packages = sortedKeys(used)
		r.Types = append(r.Types, t)
	}
	slices.SortFunc(r.Types, func(x, y DayType) int {
		return cmp.Or(cmp.Compare(x.Pool, y.Pool), cmp.Compare(x.AgentType, y.AgentType))
	})
	for p := range seen {
		r.Presence = append(r.Presence, p)
	}
	for id, s := range open {
		ev := EventRow{At: nanoTime(s.from), Kind: "GRANTED", PoolID: s.pool, Package: s.pkg, AgentID: id, AgentType: s.agentType,
			HostID: s.hostID, HostName: s.hostName, AppID: s.appID, AppName: s.appName}
		if s.agentVersion != "" {
			v := s.agentVersion
			ev.AgentVersion = &v
		}
		r.Open = append(r.Open, ev)
	}
	slices.SortFunc(r.Open, func(x, y EventRow) int { return cmp.Compare(x.AgentID, y.AgentID) })
	return r, open, nil
}

// RollUp rolls up every account's closed days not rolled up yet, and
// returns how many days it rolled up. An account is rolled up from the day
// of its oldest event on, one day per transaction. Run it on the leader.
func (a *Analytics) RollUp(ctx context.Context) (int, error) { return a.rollUp(ctx, 0) }

// rollUp rolls up, and deletes the rollups older than retention when it
// is not 0.
func (a *Analytics) rollUp(ctx context.Context, retention time.Duration) (int, error) {
	ids, err := a.store.AccountIDs(ctx)
	if err != nil {
		return 0, fmt.Errorf("analytics rollups: %w", err)
	}
	closed := DayOf(a.now().UTC().Add(-RollupGrace)) // days before it are closed
	total := 0
	var errs []error
	for _, id := range ids {
		n, err := a.rollUpAccount(ctx, id, closed)
		total += n
		if err == nil && retention > 0 {
			_, err = a.store.PruneRollups(ctx, id, DayOf(a.now().UTC().Add(-retention)))
		}
		if err != nil {
			// The other accounts go on: their events must not age out
			// un-rolled because of this one.
			errs = append(errs, fmt.Errorf("analytics rollups of account %d: %w", id, err))
		}
	}
	if total > 0 {
		if err := a.store.RollupsWritten(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return total, errors.Join(errs...)
}

// rollUpAccount rolls up the account's days before closed. Each day is
// built from the events outside any transaction (the embedded store has
// one connection, and registrations must not wait for a day's sweep) and
// saved in a short one that checks that no expiry reopened a day
// meanwhile; when one did, the pass starts again from the state.
func (a *Analytics) rollUpAccount(ctx context.Context, id int64, closed Day) (int, error) {
	d, gen, ok, err := a.store.RollupState(ctx, id)
	if err != nil {
		return 0, err
	}
	if !ok {
		oldest, any, err := a.store.OldestEvent(ctx, id, nil, DayStart(closed))
		if err != nil || !any {
			return 0, err
		}
		// The state exists before the first day is read: a reopen from
		// here on moves its generation.
		if err := a.store.InitRollupState(ctx, id, DayOf(oldest)); err != nil {
			return 0, err
		}
		if d, gen, _, err = a.store.RollupState(ctx, id); err != nil {
			return 0, err
		}
	}
	// Consecutive days carry the leases open from one to the next.
	var open map[string]segment
	openDay := Day(-1)
	total, moved := 0, 0
	for d < closed {
		carried := open
		if openDay != d {
			carried = nil
		}
		r, next, err := a.buildDay(ctx, id, d, carried)
		if err != nil {
			return total, err
		}
		switch err := a.store.SaveRollupDay(ctx, r, gen); {
		case errors.Is(err, ErrRollupMoved):
			if moved++; moved > 10 {
				return total, err
			}
			if d, gen, _, err = a.store.RollupState(ctx, id); err != nil {
				return total, err
			}
			open, openDay = nil, -1
			continue
		case err != nil:
			return total, err
		}
		total++
		d, open, openDay = d+1, next, d+1
	}
	return total, nil
}

// RunRollups rolls up closed days at start and then every interval, and
// deletes the rollups older than retention, until ctx ends. Run it on the
// leader.
func (a *Analytics) RunRollups(ctx context.Context, interval, retention time.Duration, failures *jobs.Failures) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		_, err := a.rollUp(ctx, retention)
		switch {
		case err != nil && ctx.Err() == nil:
			failures.Fail(ctx, JobAnalyticsRollup, "all accounts", err)
		case err == nil:
			failures.OK(ctx, JobAnalyticsRollup, "all accounts")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
