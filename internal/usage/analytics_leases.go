package usage

import (
	"context"
	"math/bits"
	"slices"
	"strings"
)

// The leases answer is a row per agent type and version, host and
// application, in the order of those strings. A window's segments come
// from kept replays, each with its groups in that order (sorted once, the
// first time a request needs them), from a request's own replay, and
// whole days from the rollups, in that order too. The rows are those
// sorted lists merged. A kept replay's segment adds its seconds to its row
// through the replay's numbers: no map, no sort and no copy of the kept
// segments per request. Only the groups a request has of its own (a
// fork's new leases, a replay not kept: the cache off, a filter of several
// pools) are sorted for it, and their segments found by map.

// rowIndex is lease groups in the leases answer's order (compareGroups),
// and each one's place in it by its set and id.
type rowIndex struct {
	groups []*leaseGroup
	keys   []rowStrings          // the groups' strings, at hand for the merge
	bySet  map[*groupSet][]int32 // place + 1, by id
}

// newRowIndex orders groups (distinct ones; groups is spent).
func newRowIndex(groups []*leaseGroup) *rowIndex {
	slices.SortFunc(groups, compareGroups)
	x := &rowIndex{groups: groups, keys: make([]rowStrings, len(groups)), bySet: map[*groupSet][]int32{}}
	for i, g := range groups {
		x.keys[i] = rowStrings{g.host, g.app, g.typ, g.version}
		p := x.bySet[g.set]
		if int(g.id) >= len(p) {
			p = append(p, make([]int32, int(g.id)+1-len(p))...)
		}
		p[g.id] = int32(i + 1)
		x.bySet[g.set] = p
	}
	return x
}

// find is g's place, or -1. It only reads x: kept ones are shared.
func (x *rowIndex) find(g *leaseGroup) int32 {
	if p := x.bySet[g.set]; int(g.id) < len(p) {
		return p[g.id] - 1
	}
	return -1
}

// compareGroups orders rows by host, application key, agent type, then
// version.
func compareGroups(x, y *leaseGroup) int {
	return compareRows(rowStrings{x.host, x.app, x.typ, x.version}, rowStrings{y.host, y.app, y.typ, y.version})
}

// rowStrings is what a leases row is: its host, application key, agent
// type and version.
type rowStrings struct{ host, app, typ, version string }

func compareRows(x, y rowStrings) int {
	if c := strings.Compare(x.host, y.host); c != 0 {
		return c
	}
	if c := strings.Compare(x.app, y.app); c != 0 {
		return c
	}
	if c := strings.Compare(x.typ, y.typ); c != 0 {
		return c
	}
	return strings.Compare(x.version, y.version)
}

// tableRows is the rows of a sweep's table: its groups in order, and the
// place of each lease's fields' group and the number of its package.
type tableRows struct {
	idx   *rowIndex
	rowOf []int32 // by index in the table
	pkgOf []int32
	pkgs  []string // by number
}

func newTableRows(table []*leaseAttrs) *tableRows {
	var seen perSet
	var groups []*leaseGroup
	for _, l := range table {
		if c := seen.cell(l.group.set, l.group.id); *c == 0 {
			*c = 1
			groups = append(groups, l.group)
		}
	}
	t := &tableRows{idx: newRowIndex(groups), rowOf: make([]int32, len(table)), pkgOf: make([]int32, len(table))}
	var pkgs numbering[string]
	for i, l := range table {
		t.rowOf[i] = t.idx.find(l.group)
		t.pkgOf[i] = pkgs.of(l.pkg)
	}
	t.pkgs = pkgs.list
	return t
}

// keptRows is the entry's tableRows, made once.
func (e *replayEntry) keptRows() *tableRows {
	e.rowsOnce.Do(func() { e.rows = newTableRows(e.sw.table) })
	return e.rows
}

// Bytes counted for the budget per kept lease's fields and group, for
// the tableRows of a kept replay.
const (
	rowOfBytes    = 8
	rowGroupBytes = 80
)

// leaseRows is the rows of one leases answer being built.
type leaseRows struct {
	lists []rowList
	// By row, in the answer's order: the seconds, the fields of the
	// first segment met (nil: none) and of the rolled-up row (index + 1).
	secs   []int64
	first  []*leaseAttrs
	rolled []int32
	// The request's packages, numbered in their order, and the set of
	// each row's (words bits a row).
	pkgs  []string
	words int
	bits  []uint64
}

// rowList is one sorted list merged into the rows: its length, the
// strings of its i-th row and, once merged, the row of each.
type rowList struct {
	n   int
	key func(i int) rowStrings
	row []int32
}

// merge numbers the rows of every list in the answer's order: equal
// strings, in one list or several, are one row.
func (r *leaseRows) merge() {
	type head struct {
		i   int
		key rowStrings
	}
	heads := make([]head, len(r.lists))
	for j := range r.lists {
		l := &r.lists[j]
		l.row = make([]int32, l.n)
		if l.n > 0 {
			heads[j].key = l.key(0)
		}
	}
	var last rowStrings
	rows := 0
	for {
		best := -1
		for j := range heads {
			if heads[j].i < r.lists[j].n && (best < 0 || compareRows(heads[j].key, heads[best].key) < 0) {
				best = j
			}
		}
		if best < 0 {
			break
		}
		h := &heads[best]
		if rows == 0 || h.key != last {
			rows++
			last = h.key
		}
		l := &r.lists[best]
		l.row[h.i] = int32(rows - 1)
		if h.i++; h.i < l.n {
			h.key = l.key(h.i)
		}
	}
	r.words = (len(r.pkgs) + 63) / 64
	r.secs, r.first, r.rolled, r.bits = make([]int64, rows), make([]*leaseAttrs, rows), make([]int32, rows), make([]uint64, rows*r.words)
}

// indexList adds the rows of x to be merged, and returns its list.
func (r *leaseRows) indexList(x *rowIndex) int {
	r.lists = append(r.lists, rowList{n: len(x.keys), key: func(i int) rowStrings { return x.keys[i] }})
	return len(r.lists) - 1
}

// add counts a segment of l, [from, to), in package p in row i.
func (r *leaseRows) add(i int32, l *leaseAttrs, p int32, from, to int64) {
	if r.first[i] == nil {
		r.first[i] = l
	}
	r.bits[int(i)*r.words+int(p>>6)] |= 1 << (p & 63)
	r.secs[i] += seconds(from, to)
}

// packages is row i's packages, sorted, appended to the arena.
func (r *leaseRows) packages(i int, arena []string) (pkgs, rest []string) {
	n := len(arena)
	for w, b := range r.bits[i*r.words : (i+1)*r.words] {
		for ; b != 0; b &= b - 1 {
			if p := r.pkgs[w*64+bits.TrailingZeros64(b)]; p != "" {
				arena = append(arena, p)
			}
		}
	}
	return arena[n:len(arena):len(arena)], arena
}

// Leases answers GET analytics/leases. Errors: ErrInvalid, ErrNotFound.
func (a *Analytics) Leases(ctx context.Context, q AnalyticsQuery) ([]LeaseUsage, error) {
	w, err := a.plan(ctx, q)
	if err != nil {
		return nil, err
	}
	// The parts of the window the rollups do not answer, in its order.
	var parts []keptPart
	if w.kept {
		if err := a.keptParts(ctx, q.AccountID, w, func(p keptPart) { parts = append(parts, p) }); err != nil {
			return nil, err
		}
	} else {
		segs, err := a.edges(ctx, q.AccountID, w)
		if err != nil {
			return nil, err
		}
		parts = []keptPart{{segs: segs}}
	}
	var rolled []DayLease
	if w.rolled {
		if rolled, err = a.store.RollupLeases(ctx, q.AccountID, w.pools, w.d0, w.d1); err != nil {
			return nil, err
		}
	}
	if len(parts) == 0 || (len(parts) == 1 && parts[0].e == nil && len(parts[0].segs) == 0) {
		// Whole days: the rollups' rows are the answer, in its order.
		out := make([]LeaseUsage, len(rolled))
		for i := range rolled {
			out[i] = rolled[i].LeaseUsage
			out[i].UsageHours = hours(rolled[i].Seconds)
		}
		return out, nil
	}
	var r leaseRows
	// A list for each kept replay's groups, one for the groups only this
	// request has (a fork's own leases, a replay too long to keep), and
	// the rolled-up rows; and every package named.
	kept := map[*replayEntry]int{} // -> list
	var (
		extraSeen perSet
		extra     []*leaseGroup
		pkgSeen   = map[string]bool{}
	)
	addExtra := func(l *leaseAttrs) {
		pkgSeen[l.pkg] = true
		if c := extraSeen.cell(l.group.set, l.group.id); *c == 0 {
			*c = 1
			extra = append(extra, l.group)
		}
	}
	for _, p := range parts {
		if p.e == nil {
			for i := range p.segs {
				addExtra(p.segs[i].leaseAttrs)
			}
			continue
		}
		t := p.e.keptRows()
		if _, ok := kept[p.e]; !ok {
			kept[p.e] = r.indexList(t.idx)
			for _, pkg := range t.pkgs {
				pkgSeen[pkg] = true
			}
		}
		for _, l := range p.sw.table[len(t.rowOf):] { // a fork's own leases
			if pkgSeen[l.pkg] = true; t.idx.find(l.group) >= 0 {
				continue
			}
			addExtra(l)
		}
	}
	for i := range rolled {
		for _, pkg := range rolled[i].Packages {
			pkgSeen[pkg] = true
		}
	}
	r.pkgs = sortedKeys(pkgSeen)
	pkgNum := make(map[string]int32, len(r.pkgs))
	for i, p := range r.pkgs {
		pkgNum[p] = int32(i)
	}
	extras := newRowIndex(extra)
	extraList := r.indexList(extras)
	r.lists = append(r.lists, rowList{n: len(rolled), key: func(i int) rowStrings {
		l := &rolled[i]
		return rowStrings{l.HostID, l.AppKey, l.AgentType, l.AgentVersion}
	}})
	r.merge()
	extraRow := func(g *leaseGroup) int32 { return r.lists[extraList].row[extras.find(g)] }

	// The segments, in the window's order: a row's first segment names it.
	for _, p := range parts {
		if p.e == nil {
			for i := range p.segs {
				s := &p.segs[i]
				r.add(extraRow(s.group), s.leaseAttrs, pkgNum[s.pkg], s.from, s.to)
			}
			continue
		}
		t := p.e.keptRows()
		rows := r.lists[kept[p.e]].row
		pkgs := make([]int32, len(t.pkgs))
		for i, pkg := range t.pkgs {
			pkgs[i] = pkgNum[pkg]
		}
		// The rows and packages of a fork's own leases' fields.
		table, n := p.sw.table, int32(len(t.rowOf))
		own := make([]int32, 2*(len(table)-int(n)))
		for i, l := range table[n:] {
			if k := t.idx.find(l.group); k >= 0 {
				own[2*i] = rows[k]
			} else {
				own[2*i] = extraRow(l.group)
			}
			own[2*i+1] = pkgNum[l.pkg]
		}
		p.sw.each(p.lo, p.hi, func(k keptSeg) {
			if k.attr < n {
				r.add(rows[t.rowOf[k.attr]], table[k.attr], pkgs[t.pkgOf[k.attr]], k.from, k.to)
			} else {
				i := 2 * (k.attr - n)
				r.add(own[i], table[k.attr], own[i+1], k.from, k.to)
			}
		})
	}
	for i, row := range r.lists[len(r.lists)-1].row {
		r.rolled[row] = int32(i + 1)
		r.secs[row] += rolled[i].Seconds
		for _, pkg := range rolled[i].Packages {
			p := pkgNum[pkg]
			r.bits[int(row)*r.words+int(p>>6)] |= 1 << (p & 63)
		}
	}

	var names map[string]string
	if w.kept {
		// The kept replays name hosts as they were named when read: name
		// them as they are named now, as events and rollups are read.
		if names, err = a.store.HostNames(ctx, q.AccountID); err != nil {
			return nil, err
		}
	}
	n, npkgs := 0, 0
	for i := range r.secs {
		if r.first[i] != nil || r.rolled[i] != 0 {
			n++
			for _, b := range r.bits[i*r.words : (i+1)*r.words] {
				npkgs += bits.OnesCount64(b)
			}
		}
	}
	out := make([]LeaseUsage, 0, n)
	arena := make([]string, 0, npkgs)
	for i, l := range r.first {
		var u LeaseUsage
		switch {
		case l != nil:
			u = LeaseUsage{AgentType: l.agentType, AgentVersion: l.agentVersion, HostID: l.hostID, HostName: l.hostName,
				AppID: l.appID, AppName: l.appName}
		case r.rolled[i] != 0:
			u = rolled[r.rolled[i]-1].LeaseUsage
		default:
			continue
		}
		if names != nil {
			if name, ok := names[u.HostID]; ok {
				u.HostName = name
			} else {
				u.HostName = u.HostID
			}
		}
		u.UsageHours = hours(r.secs[i])
		u.Packages, arena = r.packages(i, arena)
		out = append(out, u)
	}
	return out, nil
}
