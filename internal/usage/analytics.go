package usage

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lcorp/licensing-controller/internal/engine"
	"github.com/lcorp/licensing-controller/internal/fault"
	"github.com/lcorp/licensing-controller/internal/licensing"
)

// Usage analytics (API.md §7, the Parasoft model): who used what, when,
// how much, and who was refused, from the usage events.

// EventQuery selects the events analytics read.
type EventQuery struct {
	AccountID int64
	// Before bounds the events (the window's end); lifecycle events are
	// read from the beginning, so that leases granted before the window
	// count from its start.
	Before time.Time
	// Refusals reads REFUSED events from From on instead of lifecycle events,
	// in time order (those of one time in no set order; the others by id too).
	Refusals bool
	// From, for lifecycle events, reads only those from From on (zero: all).
	From time.Time
	// OpenAt reads, instead, the last grant or package change before From
	// of each lease still open at From.
	OpenAt bool
	// PoolIDs, when not nil, keeps only the events of these pools.
	PoolIDs []string
	// AgentIDs, with OpenAt and when not nil, looks at these agents only.
	AgentIDs []string
}

// EventRow is one usage event as analytics read it.
type EventRow struct {
	At           time.Time
	Kind         string
	PoolID       string
	Package      string
	Units        int64
	AgentID      string
	AgentType    string
	AgentVersion *string
	HostID       string
	HostName     string
	AppID        *int64
	AppName      *string
	Reason       string
}

// AnalyticsStore is what analytics read, and the rollups they keep.
type AnalyticsStore interface {
	AnalyticsEvents(ctx context.Context, q EventQuery) ([]EventRow, error)
	// EachAnalyticsEvent calls each with the events AnalyticsEvents reads,
	// in order, as they are read (a row is valid during the call only). A
	// read run again (a lost connection) calls reset first.
	EachAnalyticsEvent(ctx context.Context, q EventQuery, reset func(), each func(*EventRow)) error
	// HostNames maps the account's hosts whose name is not their id to
	// their name now.
	HostNames(ctx context.Context, accountID int64) (map[string]string, error)
	// OldestEvent is the time of the account's oldest lifecycle event
	// before `before` (of the pools, when not nil); false when none.
	OldestEvent(ctx context.Context, accountID int64, pools []string, before time.Time) (time.Time, bool, error)
	RollupStore
}

// Analytics answers the usage analytics of API.md §7.
type Analytics struct {
	store AnalyticsStore
	lic   *licensing.Service
	now   func() time.Time
	raw   bool // read events only, never the rollups
	cache *replayCache
}

// NewAnalytics returns Analytics; now may be nil (time.Now).
func NewAnalytics(store AnalyticsStore, lic *licensing.Service, now func() time.Time) *Analytics {
	if now == nil {
		now = time.Now
	}
	return &Analytics{store: store, lic: lic, now: now, cache: newReplayCache(DefaultAnalyticsCache)}
}

// AnalyticsQuery is a window and optional filters. A zero From is the
// oldest event, a zero To now.
type AnalyticsQuery struct {
	AccountID int64
	From, To  time.Time
	Pool      string // an allocation or rule id, licence key or access key
	Tag       string // allocations with this tag
}

// leaseAttrs is what one lease in one package is: the fields its segments
// are counted by. The segments of a lease share one.
type leaseAttrs struct {
	agentType, agentVersion string
	hostID, hostName        string
	appID                   *int64
	appName                 *string
	app                     string // appKey(appID, appName)
	pkg                     string
	pool                    string
	group                   *leaseGroup
}

// hasApp says whether the lease names an application.
func (l *leaseAttrs) hasApp() bool { return l.appID != nil || l.appName != nil }

// segment is a stretch of one lease in one package: [from, to) in Unix
// nanoseconds. It holds one pointer, so that the hundreds of thousands of
// a window cost the collector little.
type segment struct {
	*leaseAttrs
	lease    int // index of the lease, for concurrency
	from, to int64
}

// groupKey is what analytics group leases by: agent type and version,
// host and application (appKey, and whether the lease names one).
type groupKey struct {
	typ, version, host, app string
	hasApp                  bool
}

// leaseGroup is one groupKey of a sweep (and of the sweeps cloned from
// it), so that a window's hundreds of thousands of segments are grouped by
// a pointer, or by their set's dense ids.
type leaseGroup struct {
	groupKey
	set *groupSet // the set of ids it is numbered in
	id  int32
	// hostNum and appNum number the group's host and application (-1:
	// none) in its set, so that a window counts distinct ones by a slice,
	// not by hashing the strings of every group.
	hostNum, appNum int32
}

// groupSet is a numbering of groups; only its identity matters.
type groupSet struct{ _ byte }

// perSet keeps an []int32 per group set, indexed by the set's numbers
// (of groups, hosts or applications); the slice of the set met last is at
// hand.
type perSet struct {
	last *groupSet
	cur  []int32
	by   map[*groupSet][]int32
}

// cell is the entry of number id of set: 0 until written.
func (p *perSet) cell(set *groupSet, id int32) *int32 {
	if set != p.last {
		if p.by == nil {
			p.by = map[*groupSet][]int32{}
		} else if p.last != nil {
			p.by[p.last] = p.cur
		}
		p.last, p.cur = set, p.by[set]
	}
	if int(id) >= len(p.cur) { // grown as numbers are met, as sets are shared by clones
		p.cur = append(p.cur, make([]int32, int(id)+1-len(p.cur))...)
	}
	return &p.cur[id]
}

// groupSlots numbers the groups of a window's segments densely, from the
// ids of their sets: a slice read per segment, not a map lookup.
type groupSlots struct{ perSet }

// slot is g's slot; isNew says it is g's first time, and next is its slot then.
func (gs *groupSlots) slot(g *leaseGroup, next int) (slot int, isNew bool) {
	c := gs.cell(g.set, g.id)
	if *c != 0 {
		return int(*c - 1), false
	}
	*c = int32(next + 1)
	return next, true
}

// typeCounts counts the distinct hosts (or applications) of each agent type
// of a window: items are numbered by the window (a set's number of one is
// mapped once), and each type marks the window's numbers it met.
type typeCounts struct {
	items stringNumbers
	seen  [][]bool // per type, by the window's number
	n     []int    // per type
}

// add counts item for type k: its number in set, or only the string when
// local is -1.
func (d *typeCounts) add(k int32, set *groupSet, local int32, item string) {
	g := d.items.ofLocal(set, local, item)
	for int(k) >= len(d.seen) {
		d.seen, d.n = append(d.seen, nil), append(d.n, 0)
	}
	if int(g) >= len(d.seen[k]) {
		d.seen[k] = append(d.seen[k], make([]bool, int(g)+1-len(d.seen[k]))...)
	}
	if !d.seen[k][g] {
		d.seen[k][g] = true
		d.n[k]++
	}
}

// count is type k's number of distinct items.
func (d *typeCounts) count(k int32) int {
	if int(k) < len(d.n) {
		return d.n[k]
	}
	return 0
}

// interner makes the keys and groups of one sweep's leases.
type interner struct {
	apps   map[appRef]string
	groups map[groupKey]*leaseGroup
	set    *groupSet
	// hosts and appNums number the groups' hosts and applications in set.
	hosts, appNums map[string]int32
}

// clone is a copy of in that goes on numbering groups in in's set: the
// groups it has are in's, which the segments made with in hold (in then
// makes no more).
func (in *interner) clone() *interner {
	return &interner{apps: maps.Clone(in.apps), groups: maps.Clone(in.groups), set: in.set,
		hosts: maps.Clone(in.hosts), appNums: maps.Clone(in.appNums)}
}

func newInterner() *interner {
	return &interner{apps: map[appRef]string{}, groups: map[groupKey]*leaseGroup{}, set: &groupSet{},
		hosts: map[string]int32{}, appNums: map[string]int32{}}
}

// numberIn is s's number in m, a new one the first time.
func numberIn(m map[string]int32, s string) int32 {
	n, ok := m[s]
	if !ok {
		n = int32(len(m))
		m[s] = n
	}
	return n
}

// attrsOf builds the fields of ev's lease; in interns their keys. The
// strings are the group's: those of the row read are not kept.
func attrsOf(ev *EventRow, in *interner) *leaseAttrs {
	k := groupKey{typ: ev.AgentType, version: deref(ev.AgentVersion), host: ev.HostID, app: internApp(in.apps, ev.AppID, ev.AppName),
		hasApp: ev.AppID != nil || ev.AppName != nil}
	g, ok := in.groups[k]
	if !ok {
		g = &leaseGroup{groupKey: k, set: in.set, id: int32(len(in.groups)), hostNum: numberIn(in.hosts, k.host), appNum: -1}
		if k.hasApp {
			g.appNum = numberIn(in.appNums, k.app)
		}
		in.groups[k] = g
	}
	return &leaseAttrs{agentType: g.typ, agentVersion: g.version, hostID: g.host, hostName: ev.HostName,
		appID: ev.AppID, appName: ev.AppName, app: g.app, pkg: ev.Package, pool: ev.PoolID, group: g}
}

// appRef is an application as events name it, for interning its key.
type appRef struct {
	id     int64
	name   string
	byName bool
}

// internApp is appKey(id, name), one string per application.
func internApp(apps map[appRef]string, id *int64, name *string) string {
	var r appRef
	switch {
	case id != nil:
		r.id = *id
	case name != nil:
		r.name, r.byName = *name, true
	default:
		return appKey(nil, nil)
	}
	k, ok := apps[r]
	if !ok {
		k = appKey(id, name)
		apps[r] = k
	}
	return k
}

// window resolves the query's bounds (to is exclusive) and pools.
func (a *Analytics) window(ctx context.Context, q AnalyticsQuery) (from, to time.Time, pools []string, err error) {
	now := a.now().UTC()
	to = q.To
	if to.IsZero() {
		to = now
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return time.Time{}, time.Time{}, nil, fault.Invalid("endDate", "must be after startDate")
	}
	// Nothing has happened after now: a live lease counts to now, not to
	// an endDate still ahead (a window wholly ahead is empty).
	if to.After(now) {
		to = now
	}
	from = q.From
	if !from.IsZero() && from.After(to) {
		from = to
	}
	pools, err = a.pools(ctx, q)
	return from, to, pools, err
}

// pools resolves the pool and tag filters to pool ids (nil: no filter).
func (a *Analytics) pools(ctx context.Context, q AnalyticsQuery) ([]string, error) {
	if q.Pool == "" && q.Tag == "" {
		return nil, nil
	}
	allocs, err := a.lic.Allocations(ctx, q.AccountID, licensing.AllocationQuery{})
	if err != nil {
		return nil, fmt.Errorf("analytics pools: %w", err)
	}
	rules, err := a.lic.Rules(ctx, q.AccountID)
	if err != nil {
		return nil, fmt.Errorf("analytics pools: %w", err)
	}
	out := []string{}
	for _, al := range allocs {
		if (q.Pool == "" || q.Pool == al.ID || q.Pool == al.LicenseKey) && (q.Tag == "" || slices.Contains(al.Tags, q.Tag)) {
			out = append(out, al.ID)
		}
	}
	if q.Tag == "" {
		for _, r := range rules {
			if q.Pool == r.ID || q.Pool == r.AccessKey {
				out = append(out, r.ID)
			}
		}
	}
	if q.Pool != "" && len(out) == 0 {
		return nil, fault.New(fault.ErrNotFound, "POOL_NOT_FOUND", "no allocation or licence rule %q", q.Pool)
	}
	return out, nil
}

// resolve resolves the query's window: to is exclusive; a zero start is
// the oldest event (of the pools); from == to is an empty window.
func (a *Analytics) resolve(ctx context.Context, q AnalyticsQuery) (from, to time.Time, pools []string, err error) {
	from, to, pools, err = a.window(ctx, q)
	if err != nil || !from.IsZero() {
		return from, to, pools, err
	}
	oldest, ok, err := a.store.OldestEvent(ctx, q.AccountID, pools, to)
	if err != nil || !ok {
		return to, to, pools, err
	}
	return oldest, to, pools, nil
}

// openAt reads the leases open at from (their last grant or package
// change before it), or those open at the start of from's day when a
// rollup saved them; since is then that start, and the events from it on
// bring them to from.
func (a *Analytics) openAt(ctx context.Context, accountID int64, pools []string, from, to time.Time) (rows []EventRow, since time.Time, err error) {
	if d := DayOf(from); !a.raw {
		rows, ok, err := a.store.OpenAtDay(ctx, accountID, d, pools)
		if err != nil || ok {
			return rows, DayStart(d), err
		}
		if rows, ok, err = a.openBefore(ctx, accountID, pools, from, d+1); err != nil || ok {
			return rows, from, err
		}
	}
	// No event before from (a window that starts before the history):
	// nothing is open then, and the search below would probe every agent.
	if _, any, err := a.store.OldestEvent(ctx, accountID, pools, from); err != nil || !any {
		return nil, from, err
	}
	rows, err = a.store.AnalyticsEvents(ctx, EventQuery{AccountID: accountID, Before: to, From: from, OpenAt: true, PoolIDs: pools})
	return rows, from, err
}

// openBefore finds the leases open at from going back from those saved as
// open at the start of the next day, d (a window starting in the first
// day kept, whose own start has no saved set): the events of [from, d)
// taken backwards undo the grants and bring back the leases that ended
// then, with the fields their end recorded; a lease whose package changed
// then is looked up among the events as before. False when d's leases are
// not saved.
func (a *Analytics) openBefore(ctx context.Context, accountID int64, pools []string, from time.Time, d Day) ([]EventRow, bool, error) {
	after, ok, err := a.store.OpenAtDay(ctx, accountID, d, pools)
	if err != nil || !ok {
		return nil, false, err
	}
	evs, err := a.store.AnalyticsEvents(ctx, EventQuery{AccountID: accountID, Before: DayStart(d), From: from, PoolIDs: pools})
	if err != nil {
		return nil, false, err
	}
	open := make(map[string]EventRow, len(after))
	for _, ev := range after {
		open[ev.AgentID] = ev
	}
	changed := map[string]bool{}
	for i := len(evs) - 1; i >= 0; i-- {
		ev := evs[i]
		switch ev.Kind {
		case engine.EventGranted: // not open before its grant
			delete(open, ev.AgentID)
			delete(changed, ev.AgentID)
		case engine.EventChanged: // the package before is not recorded
			changed[ev.AgentID] = true
		default: // released, expired, pre-empted: open before, granted before from unless a grant is met
			ev.Kind, ev.At = engine.EventGranted, from
			open[ev.AgentID] = ev
			delete(changed, ev.AgentID)
		}
	}
	if len(changed) > 0 {
		ids := make([]string, 0, len(changed))
		for id := range changed {
			delete(open, id)
			ids = append(ids, id)
		}
		slices.Sort(ids)
		rows, err := a.store.AnalyticsEvents(ctx, EventQuery{AccountID: accountID, Before: DayStart(d), From: from, OpenAt: true,
			PoolIDs: pools, AgentIDs: ids})
		if err != nil {
			return nil, false, err
		}
		for _, ev := range rows {
			open[ev.AgentID] = ev
		}
	}
	out := make([]EventRow, 0, len(open))
	for _, ev := range open {
		out = append(out, ev)
	}
	slices.SortFunc(out, CompareOpenLeases)
	return out, true, nil
}

// CompareOpenLeases orders the leases open at a time as they are read
// back: by grant time, then agent id.
func CompareOpenLeases(x, y EventRow) int {
	if c := x.At.Compare(y.At); c != 0 {
		return c
	}
	return strings.Compare(x.AgentID, y.AgentID)
}

// segments rebuilds the leases that overlap [from, to) from their
// lifecycle events, cut to the window: a lease counts from its grant (or
// the window start) to its release, expiry or pre-emption (or the window
// end); a package change starts a new segment. Leases are numbered from
// n0 on.
func (a *Analytics) segments(ctx context.Context, accountID int64, pools []string, from, to time.Time, n0 int) ([]segment, error) {
	segs, _, err := a.segmentsFrom(ctx, accountID, pools, from, to, n0, nil)
	return segs, err
}

// segmentsFrom is segments given the leases open at from (by agent id;
// nil: read them), and returns also those open at to.
func (a *Analytics) segmentsFrom(ctx context.Context, accountID int64, pools []string, from, to time.Time, n0 int,
	openAtFrom map[string]segment) ([]segment, map[string]segment, error) {
	if !from.Before(to) {
		return nil, openAtFrom, nil
	}
	sw, err := a.replay(ctx, accountID, pools, from, to, n0, openAtFrom)
	if err != nil {
		return nil, nil, err
	}
	openAtTo := make(map[string]segment, len(sw.open))
	for id, i := range sw.open {
		openAtTo[id] = sw.segment(sw.live[i])
	}
	return sw.finish(to.UnixNano()), openAtTo, nil
}

// replay replays the leases of [from, to) into a sweep: those open at
// from (their last grant or package change before it) and the events
// inside the window; no event older than that is read. With the leases
// open at the start of from's day, the events are read from then: those
// before the window only move leases in and out.
func (a *Analytics) replay(ctx context.Context, accountID int64, pools []string, from, to time.Time, n0 int,
	openAtFrom map[string]segment) (*sweep, error) {
	since := from
	var starts []EventRow
	if openAtFrom == nil {
		var err error
		if starts, since, err = a.openAt(ctx, accountID, pools, from, to); err != nil {
			return nil, err
		}
	}
	sw := &sweep{}
	// The state starts with the leases open at from, and starts over when
	// the events are read again.
	begin := func() {
		*sw = newSweep(from.UnixNano(), n0, len(starts)+len(openAtFrom))
		for i := range starts {
			sw.grant(&starts[i])
		}
		ids := make([]string, 0, len(openAtFrom))
		for id := range openAtFrom {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			sw.carry(id, openAtFrom[id])
		}
	}
	begin()
	err := a.store.EachAnalyticsEvent(ctx, EventQuery{AccountID: accountID, Before: to, From: since, PoolIDs: pools}, begin, sw.apply)
	if err != nil {
		return nil, err
	}
	return sw, nil
}

// sweep replays lifecycle events into segments: a lease counts from its
// grant (or the sweep's start) to its release, expiry or pre-emption; a
// package change starts a new segment. A fork shares its parent's state
// read-only and keeps its own changes, so that a replay kept in the cache
// goes on for one request without being copied whole.
type sweep struct {
	f0   int64     // the start: no segment starts before it
	out  []keptSeg // the segments ended, in the order they ended
	live []keptSeg // the leases' current segments, in the order they began; lease is gone once ended
	// table holds the leases' fields that the segments name by index; a
	// fork or clone appends to a copy (it is capped at its length).
	table []*leaseAttrs
	// open maps the agent ids of the open leases to their index in live;
	// a fork's own map shadows its parent's (base), gone for those ended.
	open map[string]int32
	base map[string]int32
	n    int // the last lease number
	in   *interner
}

// keptSeg is a segment as a sweep keeps it: its lease's fields by index in
// the sweep's table, so that the millions of segments a replica keeps are
// memory the collector does not scan.
type keptSeg struct {
	attr, lease int32
	from, to    int64
}

// gone is a live entry whose lease ended.
const gone = -1

func newSweep(f0 int64, n0, size int) sweep {
	return sweep{f0: f0, n: n0, out: make([]keptSeg, 0, 2*size+1024), live: make([]keptSeg, 0, size+1024),
		table: make([]*leaseAttrs, 0, size+1024), open: make(map[string]int32, size), in: newInterner()}
}

// fork is a sweep that goes on from s, which it leaves as it is.
func (s *sweep) fork() *sweep {
	return &sweep{f0: s.f0, live: slices.Clone(s.live), table: s.table[:len(s.table):len(s.table)], open: map[string]int32{},
		base: s.open, n: s.n, in: newInterner()}
}

// clone is a copy of s that shares nothing it changes (s is not a fork).
func (s *sweep) clone() *sweep {
	return &sweep{f0: s.f0, out: slices.Clone(s.out), live: slices.Clone(s.live), table: s.table[:len(s.table):len(s.table)],
		open: maps.Clone(s.open), n: s.n, in: s.in.clone()}
}

// lookup is the index in live of the agent's open lease.
func (s *sweep) lookup(id string) (int32, bool) {
	i, ok := s.open[id]
	if !ok && s.base != nil {
		i, ok = s.base[id]
	}
	return i, ok && i != gone
}

// attrs adds a lease's fields to the table.
func (s *sweep) attrs(l *leaseAttrs) int32 {
	s.table = append(s.table, l)
	return int32(len(s.table) - 1)
}

// segment is k with its lease's fields.
func (s *sweep) segment(k keptSeg) segment {
	return segment{leaseAttrs: s.table[k.attr], lease: int(k.lease), from: k.from, to: k.to}
}

// grant opens a lease of ev's fields from its time.
func (s *sweep) grant(ev *EventRow) {
	s.n++
	s.open[ev.AgentID] = int32(len(s.live))
	s.live = append(s.live, keptSeg{attr: s.attrs(attrsOf(ev, s.in)), lease: int32(s.n), from: ev.At.UnixNano()})
}

// carry opens the lease of a segment carried over from another sweep.
func (s *sweep) carry(id string, seg segment) {
	s.n++
	s.open[id] = int32(len(s.live))
	s.live = append(s.live, keptSeg{attr: s.attrs(seg.leaseAttrs), lease: int32(s.n), from: seg.from, to: seg.to})
}

func (s *sweep) closeAt(seg keptSeg, at int64) {
	seg.to, seg.from = at, max(seg.from, s.f0)
	if seg.to > seg.from {
		s.out = append(s.out, seg)
	}
}

// end ends the agent's live lease at at.
func (s *sweep) end(id string, i int32, at int64) {
	s.closeAt(s.live[i], at)
	s.live[i].lease = gone
	if s.base != nil {
		s.open[id] = gone
	} else {
		delete(s.open, id)
	}
}

// apply applies one lifecycle event.
func (s *sweep) apply(ev *EventRow) {
	at := ev.At.UnixNano()
	i, ok := s.lookup(ev.AgentID)
	switch ev.Kind {
	case engine.EventGranted:
		if ok { // a grant without an end seen: the old one ended here
			s.end(ev.AgentID, i, at)
		}
		s.grant(ev)
	case engine.EventChanged:
		if ok && ev.Package != "" && ev.Package != s.table[s.live[i].attr].pkg {
			cur := s.live[i]
			s.closeAt(cur, at)
			attrs := *s.table[cur.attr]
			attrs.pkg = ev.Package
			s.live[i] = keptSeg{attr: s.attrs(&attrs), lease: cur.lease, from: at}
		}
	default: // released, expired, pre-empted
		if ok {
			s.end(ev.AgentID, i, at)
		} else if at > s.f0 {
			// The grant is older than the events kept (retention): the
			// lease counts from the start.
			s.n++
			s.closeAt(keptSeg{attr: s.attrs(attrsOf(ev, s.in)), lease: int32(s.n), from: s.f0}, at)
		}
	}
}

// closeLive ends the live leases at t0; s keeps only its ended segments.
func (s *sweep) closeLive(t0 int64) {
	for _, seg := range s.live {
		if seg.lease != gone {
			s.closeAt(seg, t0)
		}
	}
	s.live = nil
}

// finish ends the live leases at t0 and returns every segment: those
// ended in the order they ended, then those still live in the order they
// began. No consumer depends on the order, but it is the same for the
// same events. s is spent.
func (s *sweep) finish(t0 int64) []segment {
	s.closeLive(t0)
	out := make([]segment, len(s.out))
	for i, k := range s.out {
		out[i] = s.segment(k)
	}
	return out
}

// emit appends s's segments cut to [lo, hi) (each), with their lease
// numbers moved by off.
func (s *sweep) emit(dst []segment, lo, hi int64, off int) []segment {
	dst = slices.Grow(dst, len(s.out)+len(s.live)) // at most; once, not doubling as it goes
	s.each(lo, hi, func(k keptSeg) {
		seg := s.segment(k)
		seg.lease += off
		dst = append(dst, seg)
	})
	return dst
}

// each calls fn with s's segments cut to [lo, hi), those ended in the
// order they ended, then the live ones as if they went on; a fork's
// parent's ended segments are not its own: each leaves them to the parent.
func (s *sweep) each(lo, hi int64, fn func(keptSeg)) {
	for _, k := range s.out {
		if k.from, k.to = max(k.from, lo), min(k.to, hi); k.to > k.from {
			fn(k)
		}
	}
	for _, k := range s.live {
		if k.lease == gone {
			continue
		}
		if k.from, k.to = max(k.from, lo), hi; k.to > k.from {
			fn(k)
		}
	}
}

// AgentUsage is one agent type's usage in a window (toolsUsage).
type AgentUsage struct {
	AgentType          string
	MaxConcurrent      int
	MaxConcurrentAt    *time.Time
	PackagesAtMax      []PackageCount
	UniqueHosts        int
	UniqueApplications int
	UsageHours         float64
}

// PackageCount is the number of leases in a package.
type PackageCount struct {
	Package string
	Count   int
}

// seconds is the whole seconds from from to to: both are cut to the
// second first, so that the seconds of a stretch are the sum of those of
// its parts at any whole second (a day's end).
func seconds(from, to int64) int64 { return unixSeconds(to) - unixSeconds(from) }

// unixSeconds is time.Unix(0, ns).Unix(): whole seconds, rounded down.
func unixSeconds(ns int64) int64 {
	if ns < 0 {
		return (ns+1)/1e9 - 1
	}
	return ns / 1e9
}

// nanoTime is the time of Unix nanoseconds ns, in UTC.
func nanoTime(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// hours is whole seconds in hours.
func hours(s int64) float64 { return float64(s) / 3600 }

// Agents answers GET analytics/agents. Errors: ErrInvalid, ErrNotFound.
func (a *Analytics) Agents(ctx context.Context, q AnalyticsQuery) ([]AgentUsage, error) {
	w, err := a.plan(ctx, q)
	if err != nil {
		return nil, err
	}
	segs, err := a.edges(ctx, q.AccountID, w)
	if err != nil {
		return nil, err
	}
	type acc struct {
		u    AgentUsage
		secs int64
		k    int32 // its index in list
		segs []int32
	}
	by := map[string]*acc{}
	var list []*acc
	get := func(typ string) *acc {
		if by[typ] == nil {
			by[typ] = &acc{u: AgentUsage{AgentType: typ, PackagesAtMax: []PackageCount{}}, k: int32(len(list))}
			list = append(list, by[typ])
		}
		return by[typ]
	}
	// peak keeps the higher concurrency, of two equal ones the earlier.
	peak := func(x *acc, n int, at *time.Time, pkgs []PackageCount) {
		if n > x.u.MaxConcurrent || (n == x.u.MaxConcurrent && n > 0 && at != nil && x.u.MaxConcurrentAt != nil && at.Before(*x.u.MaxConcurrentAt)) {
			x.u.MaxConcurrent, x.u.MaxConcurrentAt, x.u.PackagesAtMax = n, at, pkgs
		}
	}
	// Each group of leases is looked at once: its type, hosts and
	// applications; a segment then finds its type through its group.
	var (
		groups      groupSlots
		hosts, apps typeCounts
		typeOf      []int32 // group slot -> its type's index in list
		segType     = make([]int32, len(segs))
		perType     []int
	)
	for i := range segs {
		s := &segs[i]
		g, isNew := groups.slot(s.group, len(typeOf))
		if isNew {
			x := get(s.agentType)
			typeOf = append(typeOf, x.k)
			if len(perType) < len(list) {
				perType = append(perType, 0)
			}
			hosts.add(x.k, s.group.set, s.group.hostNum, s.hostID)
			if s.hasApp() {
				apps.add(x.k, s.group.set, s.group.appNum, s.app)
			}
		}
		k := typeOf[g]
		segType[i] = k
		list[k].secs += seconds(s.from, s.to)
		perType[k]++
	}
	// Each type's segments by index: lists the collector need not scan.
	for k, x := range list {
		x.segs = make([]int32, 0, perType[k])
	}
	for i, k := range segType {
		list[k].segs = append(list[k].segs, int32(i))
	}
	for _, x := range list {
		n, at, pkgs := maxConcurrency(segs, x.segs)
		peak(x, n, at, pkgs)
		x.segs = nil
	}
	counted := false // the unique counts come from the rollups' day rows
	if w.rolled {
		days, err := a.store.RollupTypes(ctx, q.AccountID, w.rollupPool(), w.d0, w.d1)
		if err != nil {
			return nil, err
		}
		// One whole day alone: its rows count its hosts and applications.
		counted = len(segs) == 0 && w.d1 == w.d0+1
		for _, d := range days {
			x := get(d.AgentType)
			x.secs += d.Seconds
			at := d.PeakAt
			peak(x, d.Peak, &at, d.PeakPackages)
			x.u.UniqueHosts, x.u.UniqueApplications = d.Hosts, d.Apps
			counted = counted && d.Hosts >= 0 && d.Apps >= 0
		}
		var seen []Presence
		if !counted {
			if seen, err = a.store.RollupPresence(ctx, q.AccountID, w.pools, w.d0, w.d1); err != nil {
				return nil, err
			}
		}
		for _, p := range seen {
			x := get(p.AgentType)
			if p.Kind == PresenceHost {
				hosts.add(x.k, nil, -1, p.Item)
			} else {
				apps.add(x.k, nil, -1, p.Item)
			}
		}
	}
	out := make([]AgentUsage, 0, len(by))
	for _, x := range by {
		x.u.UsageHours = hours(x.secs)
		if !counted {
			x.u.UniqueHosts, x.u.UniqueApplications = hosts.count(x.k), apps.count(x.k)
		}
		out = append(out, x.u)
	}
	slices.SortFunc(out, func(x, y AgentUsage) int { return cmp.Compare(x.AgentType, y.AgentType) })
	return out, nil
}

func appKey(id *int64, name *string) string {
	if id != nil {
		return "#" + strconv.FormatInt(*id, 10)
	}
	return "n:" + deref(name)
}

// maxConcurrency sweeps the segments' start and end points: every point in
// time is applied whole (ends before starts: a segment is [from, to)) and
// the count taken after it. The maximum's time is the first moment it was
// reached; the packages are those of the leases live then.
func maxConcurrency(ss []segment, idx []int32) (int, *time.Time, []PackageCount) {
	if len(idx) == 0 {
		return 0, nil, []PackageCount{}
	}
	// The starts and the ends, each sorted by time alone: the ends come
	// mostly in order already (segments are listed as they ended), which
	// the sort finds; the order within one time does not matter, as the
	// count is taken after all of its points. A point carries its lease
	// and package numbers, so that the sweep reads no segment.
	type point struct {
		at         int64 // Unix nanoseconds
		lease, pkg int32 // the lease less the lowest one; the package's index in names
	}
	lo, hi := ss[idx[0]].lease, ss[idx[0]].lease
	for _, i := range idx {
		lo, hi = min(lo, ss[i].lease), max(hi, ss[i].lease)
	}
	var names packageNames
	starts, ends := make([]point, len(idx)), make([]point, len(idx))
	for k, i := range idx {
		s := &ss[i]
		l, p := int32(s.lease-lo), names.index(s.pkg)
		starts[k], ends[k] = point{s.from, l, p}, point{s.to, l, p}
	}
	byTime := func(x, y point) int { return cmp.Compare(x.at, y.at) }
	slices.SortFunc(starts, byTime)
	slices.SortFunc(ends, byTime)
	live := make([]int32, hi-lo+1)       // lease -> live segments (a package change ends and starts one at once)
	pkgs := make([]int, len(names.list)) // package -> live segments
	best, count := 0, 0
	var bestAt int64
	for i, j := 0, 0; i < len(starts); { // every start is before its end: the ends left after the last start lower the count
		at := starts[i].at
		if j < len(ends) && ends[j].at < at {
			at = ends[j].at
		}
		for ; j < len(ends) && ends[j].at == at; j++ {
			e := ends[j]
			if live[e.lease]--; live[e.lease] == 0 {
				count--
			}
			pkgs[e.pkg]--
		}
		for ; i < len(starts) && starts[i].at == at; i++ {
			s := starts[i]
			if live[s.lease]++; live[s.lease] == 1 {
				count++
			}
			pkgs[s.pkg]++
		}
		if count > best {
			best, bestAt = count, at
			// The packages live at the maximum: a handful, copied at each
			// new maximum into the counts kept.
			names.keep(pkgs)
		}
	}
	if best == 0 {
		return 0, nil, []PackageCount{}
	}
	t := nanoTime(bestAt)
	return best, &t, names.kept()
}

// packageNames numbers the packages of one concurrency sweep.
type packageNames struct {
	list []string
	by   map[string]int32 // past a few packages
	best []int            // the counts per package at the maximum
}

// index is the number of package p.
func (n *packageNames) index(p string) int32 {
	if n.by == nil {
		for k, q := range n.list {
			if q == p {
				return int32(k)
			}
		}
		if len(n.list) < 8 {
			n.list = append(n.list, p)
			return int32(len(n.list) - 1)
		}
		n.by = make(map[string]int32, 2*len(n.list))
		for k, q := range n.list {
			n.by[q] = int32(k)
		}
	}
	k, ok := n.by[p]
	if !ok {
		k = int32(len(n.list))
		n.by[p] = k
		n.list = append(n.list, p)
	}
	return k
}

func (n *packageNames) keep(counts []int) { n.best = append(n.best[:0], counts...) }

// kept is the packages live at the maximum with their counts, by name.
func (n *packageNames) kept() []PackageCount {
	out := []PackageCount{}
	for k, c := range n.best {
		if c > 0 {
			out = append(out, PackageCount{n.list[k], c})
		}
	}
	slices.SortFunc(out, func(x, y PackageCount) int { return cmp.Compare(x.Package, y.Package) })
	return out
}

// AgentPackages is the packages one agent type used (featuresUsage).
type AgentPackages struct {
	AgentType string
	Packages  []string
}

// Packages answers GET analytics/packages. Errors: ErrInvalid, ErrNotFound.
func (a *Analytics) Packages(ctx context.Context, q AnalyticsQuery) ([]AgentPackages, error) {
	w, err := a.plan(ctx, q)
	if err != nil {
		return nil, err
	}
	segs, err := a.edges(ctx, q.AccountID, w)
	if err != nil {
		return nil, err
	}
	by := map[string]map[string]bool{}
	add := func(typ string, pkgs ...string) {
		if by[typ] == nil {
			by[typ] = map[string]bool{}
		}
		for _, p := range pkgs {
			if p != "" {
				by[typ][p] = true
			}
		}
	}
	for _, s := range segs {
		add(s.agentType, s.pkg)
	}
	if w.rolled {
		days, err := a.store.RollupTypes(ctx, q.AccountID, w.rollupPool(), w.d0, w.d1)
		if err != nil {
			return nil, err
		}
		for _, d := range days {
			add(d.AgentType, d.Packages...)
		}
	}
	out := make([]AgentPackages, 0, len(by))
	for typ, pk := range by {
		out = append(out, AgentPackages{AgentType: typ, Packages: sortedKeys(pk)})
	}
	slices.SortFunc(out, func(x, y AgentPackages) int { return cmp.Compare(x.AgentType, y.AgentType) })
	return out, nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// LeaseUsage is the usage of one agent type and version on one host for one
// application (licenseUsage).
type LeaseUsage struct {
	AgentType, AgentVersion string
	Packages                []string
	UsageHours              float64
	HostID, HostName        string
	AppID                   *int64
	AppName                 *string
}

// numbering numbers a window's items densely, in the order first met.
type numbering[K comparable] struct {
	num  map[K]int32
	list []K // by number
}

func (n *numbering[K]) of(k K) int32 {
	if n.num == nil {
		n.num = map[K]int32{}
	}
	i, ok := n.num[k]
	if !ok {
		i = int32(len(n.list))
		n.num[k] = i
		n.list = append(n.list, k)
	}
	return i
}

// stringNumbers numbers a window's strings, and maps the numbers of the
// sets its groups come from to its own once per string and set.
type stringNumbers struct {
	numbering[string]
	local perSet
}

// ofLocal is the number of s, which is number local of set (-1: none).
func (n *stringNumbers) ofLocal(set *groupSet, local int32, s string) int32 {
	if local < 0 {
		return n.of(s)
	}
	c := n.local.cell(set, local)
	if *c == 0 {
		*c = n.of(s) + 1
	}
	return *c - 1
}

// RequestKey is what a refused registration asked for.
type RequestKey struct {
	AgentType, AgentVersion, RequestedPackage, Pool string
}

// RejectionHost is the refusals of one host and application.
type RejectionHost struct {
	HostID, HostName string
	AppID            *int64
	AppName          *string
	Count            int
	Times            []time.Time
}

// RejectionGroup is the refusals of one request key.
type RejectionGroup struct {
	Key       RequestKey
	Count     int
	HostCount int
	Hosts     []RejectionHost
}

// Rejections is every refusal of a window, grouped by reason.
type Rejections struct {
	NoMoreUnits, PackageNotLicensed, DeniedByFilter, Other []RejectionGroup
}

// Rejections answers GET analytics/rejections. Errors: ErrInvalid, ErrNotFound.
func (a *Analytics) Rejections(ctx context.Context, q AnalyticsQuery) (Rejections, error) {
	from, to, pools, err := a.window(ctx, q)
	if err != nil {
		return Rejections{}, err
	}
	names, err := a.poolNames(ctx, q.AccountID)
	if err != nil {
		return Rejections{}, err
	}
	// A host and application of a group: the application by id, or by
	// name when it has none.
	type hostKey struct {
		host    string
		hasID   bool
		id      int64
		appName string
	}
	var (
		groups  map[string]map[RequestKey]*RejectionGroup
		hostIdx map[*RejectionGroup]map[hostKey]int
	)
	reset := func() {
		groups, hostIdx = map[string]map[RequestKey]*RejectionGroup{}, map[*RejectionGroup]map[hostKey]int{}
	}
	reset()
	err = a.store.EachAnalyticsEvent(ctx, EventQuery{AccountID: q.AccountID, Before: to, Refusals: true, From: from, PoolIDs: pools}, reset,
		func(ev *EventRow) {
			reason := ev.Reason
			switch reason {
			case engine.CodeNoMoreUnits, engine.CodePackageNotLicensed, engine.CodeDeniedByFilter:
			default:
				reason = "OTHER"
			}
			pool, ok := names[ev.PoolID]
			if !ok || pool == "" {
				pool = ev.PoolID
			}
			k := RequestKey{AgentType: ev.AgentType, AgentVersion: deref(ev.AgentVersion), RequestedPackage: ev.Package, Pool: pool}
			byKey := groups[reason]
			if byKey == nil {
				byKey = map[RequestKey]*RejectionGroup{}
				groups[reason] = byKey
			}
			g := byKey[k]
			if g == nil {
				g = &RejectionGroup{Key: k}
				byKey[k] = g
				hostIdx[g] = map[hostKey]int{}
			}
			g.Count++
			hk := hostKey{host: ev.HostID}
			if ev.AppID != nil {
				hk.hasID, hk.id = true, *ev.AppID
			} else {
				hk.appName = deref(ev.AppName)
			}
			i, ok := hostIdx[g][hk]
			if !ok {
				i = len(g.Hosts)
				hostIdx[g][hk] = i
				g.Hosts = append(g.Hosts, RejectionHost{HostID: ev.HostID, HostName: ev.HostName, AppID: ev.AppID, AppName: ev.AppName})
			}
			g.Hosts[i].Count++
			g.Hosts[i].Times = append(g.Hosts[i].Times, ev.At)
		})
	if err != nil {
		return Rejections{}, err
	}
	list := func(reason string) []RejectionGroup {
		out := []RejectionGroup{}
		for _, g := range groups[reason] {
			hosts := map[string]bool{}
			for _, h := range g.Hosts {
				hosts[h.HostID] = true
			}
			g.HostCount = len(hosts)
			// By first refusal; of refusals at the same time (the events
			// come in time order only), by host and application.
			slices.SortStableFunc(g.Hosts, func(x, y RejectionHost) int {
				return cmp.Or(x.Times[0].Compare(y.Times[0]), strings.Compare(x.HostID, y.HostID),
					strings.Compare(appKey(x.AppID, x.AppName), appKey(y.AppID, y.AppName)))
			})
			out = append(out, *g)
		}
		slices.SortFunc(out, func(x, y RejectionGroup) int {
			return cmp.Or(cmp.Compare(y.Count, x.Count), cmp.Compare(x.Key.AgentType, y.Key.AgentType),
				cmp.Compare(x.Key.AgentVersion, y.Key.AgentVersion), cmp.Compare(x.Key.RequestedPackage, y.Key.RequestedPackage),
				cmp.Compare(x.Key.Pool, y.Key.Pool))
		})
		return out
	}
	return Rejections{NoMoreUnits: list(engine.CodeNoMoreUnits), PackageNotLicensed: list(engine.CodePackageNotLicensed),
		DeniedByFilter: list(engine.CodeDeniedByFilter), Other: list("OTHER")}, nil
}

// poolNames maps the account's allocation and rule ids to their names.
func (a *Analytics) poolNames(ctx context.Context, accountID int64) (map[string]string, error) {
	out := map[string]string{}
	allocs, err := a.lic.Allocations(ctx, accountID, licensing.AllocationQuery{})
	if err != nil {
		return nil, fmt.Errorf("analytics pools: %w", err)
	}
	for _, al := range allocs {
		out[al.ID] = al.Name
	}
	rules, err := a.lic.Rules(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("analytics pools: %w", err)
	}
	for _, r := range rules {
		out[r.ID] = r.Name
	}
	return out, nil
}
