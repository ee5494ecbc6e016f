package usage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// The replay cache: a window that cuts days (RFC 3339 bounds, "the last
// 24 hours") needs the segments of the parts the rollups do not answer,
// and replaying them from the events costs a day of events and the
// leases open at its start. Each replica keeps, within a memory budget:
//
//   - the whole replay of a rolled-up day: its events are final, and only
//     a reopen (a reaper's late expiry), which moves the account's rollup
//     generation, changes them;
//   - the replay of the days not rolled up yet, up to a watermark
//     RollupGrace behind now: an event is recorded at most that far
//     behind its commit unless it reopens its day (engine.LateEventAge).
//     A request replays the events after the watermark on a fork of it.
//
// Entries are checked against the generation read with the plan, so a
// reopen on any replica is seen by the next request of every replica.

// DefaultAnalyticsCache is the replay cache's default budget in bytes.
const DefaultAnalyticsCache = 256 << 20

// tailStep is how far the watermark of a kept replay falls behind before
// a request moves it on; tailSpan how far back the days not rolled up
// may start for their replay to be kept (a leader that has not caught up
// would make it weeks long).
const (
	tailStep = time.Minute
	tailSpan = 3 * 24 * time.Hour
)

// Bytes counted for the budget: per entry besides what follows, per kept
// segment, open lease, leaseAttrs (with its strings), group and
// application interned, and host or application numbered.
const (
	entryBytes   = 4 << 10
	segmentBytes = 24
	openBytes    = 64
	attrsBytes   = 208
	groupBytes   = 168
	appBytes     = 64
	numberBytes  = 48
)

type replayKey struct {
	account int64
	pools   string // the pool filter, joined
	day     Day    // the rolled-up day, or the first day not rolled up
	tail    bool
}

// replayEntry is one kept replay, immutable once ready.
type replayEntry struct {
	ready chan struct{} // closed once built
	err   error
	sw    *sweep
	gen   int64
	w     int64 // a tail's watermark, Unix ns
	size  int64
	used  uint64
	// rows is the leases rows of sw's table, made by the first request
	// that needs them (keptRows).
	rowsOnce sync.Once
	rows     *tableRows
}

type replayCache struct {
	mu      sync.Mutex
	budget  int64
	size    int64
	clock   uint64
	entries map[replayKey]*replayEntry
}

func newReplayCache(budget int64) *replayCache {
	if budget <= 0 {
		return nil
	}
	return &replayCache{budget: budget, entries: map[replayKey]*replayEntry{}}
}

// SetCacheBytes sets the memory the replica keeps replays in (0: none).
// Call it before the first request.
func (a *Analytics) SetCacheBytes(n int64) { a.cache = newReplayCache(n) }

// get returns the ready entry of k that valid accepts, building it with
// build when there is none (one build at a time per key; the others wait
// for it and take it when valid accepts it, kept or not).
func (c *replayCache) get(ctx context.Context, k replayKey, valid func(*replayEntry) bool,
	build func(old *replayEntry) (*replayEntry, error)) (*replayEntry, error) {
	for {
		c.mu.Lock()
		e := c.entries[k]
		if e == nil {
			c.mu.Unlock()
			return c.build(ctx, k, nil, valid, build)
		}
		select {
		case <-e.ready:
			if e.err == nil && valid(e) {
				c.clock++
				e.used = c.clock
				c.mu.Unlock()
				return e, nil
			}
			c.mu.Unlock()
			return c.build(ctx, k, e, valid, build)
		default:
		}
		c.mu.Unlock()
		select {
		case <-e.ready:
			if e.err == nil && valid(e) {
				return e, nil
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// errBuildPanicked is the error of a build that panicked, for its waiters.
var errBuildPanicked = errors.New("analytics replay build panicked")

// build replaces old (nil: none) as k's entry by a new one. A build that
// fails leaves old as it was.
func (c *replayCache) build(ctx context.Context, k replayKey, old *replayEntry, valid func(*replayEntry) bool,
	build func(old *replayEntry) (*replayEntry, error)) (*replayEntry, error) {
	e := &replayEntry{ready: make(chan struct{})}
	c.mu.Lock()
	if cur := c.entries[k]; cur != old { // another request got there first
		c.mu.Unlock()
		return c.get(ctx, k, valid, build)
	}
	if old != nil {
		c.size -= old.size
	}
	c.entries[k] = e
	c.mu.Unlock()
	// undo puts old back (or nothing), for a build that failed.
	undo := func(err error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		e.err = err
		if c.entries[k] == e {
			if old != nil && old.err == nil {
				c.entries[k] = old
				c.size += old.size
			} else {
				delete(c.entries, k)
			}
		}
		close(e.ready)
	}
	finished := false
	defer func() {
		if !finished { // a panic: the waiters must not wait for ever
			undo(errBuildPanicked)
		}
	}()
	from := old
	if from != nil && from.err != nil {
		from = nil
	}
	built, err := build(from)
	finished = true
	if err != nil {
		undo(err)
		return nil, err
	}
	sw := built.sw
	sw.out, sw.live, sw.table = compact(sw.out), compact(sw.live), compact(sw.table)
	c.mu.Lock()
	defer c.mu.Unlock()
	e.sw, e.gen, e.w = sw, built.gen, built.w
	e.size = entryBytes + int64(cap(sw.out)+cap(sw.live))*segmentBytes + int64(len(sw.open))*openBytes +
		int64(cap(sw.table))*(attrsBytes+rowOfBytes)
	if sw.in != nil {
		e.size += int64(len(sw.in.groups))*(groupBytes+rowGroupBytes) + int64(len(sw.in.apps))*appBytes +
			int64(len(sw.in.hosts)+len(sw.in.appNums))*numberBytes
	}
	c.clock++
	e.used = c.clock
	close(e.ready)
	if e.size > c.budget { // too big to keep: this request's and its waiters' only
		delete(c.entries, k)
		return e, nil
	}
	c.size += e.size
	for c.size > c.budget {
		var lru replayKey
		var oldest *replayEntry
		for key, x := range c.entries {
			select {
			case <-x.ready:
			default:
				continue // being built: counted once ready
			}
			if x != e && (oldest == nil || x.used < oldest.used) {
				lru, oldest = key, x
			}
		}
		if oldest == nil {
			break
		}
		delete(c.entries, lru)
		c.size -= oldest.size
	}
	return e, nil
}

// compact is s without the room a replay left for more.
func compact[T any](s []T) []T {
	if cap(s)-len(s) <= len(s)/8 {
		return s
	}
	return slices.Clone(s)
}

// poolsKey is the pool filter as a cache key.
func poolsKey(pools []string) string {
	if pools == nil {
		return "*"
	}
	return strings.Join(pools, "\x00")
}

// keptPart is a stretch [lo, hi) of a window that the replay cache
// answers: sw's segments cut to it, with their lease numbers moved by off.
// e is the kept replay sw is, a view of (its ended segments only) or a
// fork of (its table starts with e's). A stretch too long to keep has no
// e and no sw: segs is its replay, read for the request.
type keptPart struct {
	e      *replayEntry
	sw     *sweep
	lo, hi int64
	off    int
	segs   []segment
}

// cachedEdges is edges from the replay cache: the rolled-up days a part
// cuts from their kept replays, the days not rolled up from the kept
// replay of them and the events after its watermark.
func (a *Analytics) cachedEdges(ctx context.Context, accountID int64, w windowPlan) ([]segment, error) {
	var out []segment
	err := a.keptParts(ctx, accountID, w, func(p keptPart) {
		if p.sw == nil {
			out = append(out, p.segs...)
		} else {
			out = p.sw.emit(out, p.lo, p.hi, p.off)
		}
	})
	return out, err
}

// keptParts calls fn with the parts of the window the rollups do not
// answer, in the window's order.
func (a *Analytics) keptParts(ctx context.Context, accountID int64, w windowPlan, fn func(keptPart)) error {
	spans := [][2]time.Time{{w.from, w.to}}
	if w.rolled {
		spans = [][2]time.Time{{w.from, DayStart(w.d0)}, {DayStart(w.d1), w.to}}
	}
	off := 0 // the lease numbers used
	for _, sp := range spans {
		for p := sp[0]; p.Before(sp[1]); {
			d := DayOf(p)
			if d < w.through {
				end := DayStart(d + 1)
				if sp[1].Before(end) {
					end = sp[1]
				}
				e, err := a.keptDay(ctx, accountID, w, d)
				if err != nil {
					return err
				}
				fn(keptPart{e: e, sw: e.sw, lo: p.UnixNano(), hi: end.UnixNano(), off: off})
				off += e.sw.n + 1
				p = end
				continue
			}
			var err error
			if off, err = a.keptTail(ctx, accountID, w, p, sp[1], off, fn); err != nil {
				return err
			}
			break
		}
	}
	return nil
}

// keptDay is the kept replay of the rolled-up day d.
func (a *Analytics) keptDay(ctx context.Context, accountID int64, w windowPlan, d Day) (*replayEntry, error) {
	k := replayKey{account: accountID, pools: poolsKey(w.pools), day: d}
	return a.cache.get(ctx, k, func(e *replayEntry) bool { return e.gen == w.gen }, func(*replayEntry) (*replayEntry, error) {
		sw, err := a.replay(ctx, accountID, w.pools, DayStart(d), DayStart(d+1), 0, nil)
		if err != nil {
			return nil, fmt.Errorf("analytics replay of %s: %w", DayStart(d).Format(time.DateOnly), err)
		}
		sw.closeLive(DayStart(d + 1).UnixNano())
		sw.open = nil
		return &replayEntry{sw: sw, gen: w.gen}, nil
	})
}

// keptTail calls fn with the parts of [from, to), in the days not rolled
// up, and returns the lease numbers used.
func (a *Analytics) keptTail(ctx context.Context, accountID int64, w windowPlan, from, to time.Time, off int, fn func(keptPart)) (int, error) {
	start := DayStart(w.through)
	now := a.now().UTC()
	lo, hi := from.UnixNano(), to.UnixNano()
	if start.Before(now.Add(-tailSpan)) { // too long to keep: read as it is
		segs, err := a.segments(ctx, accountID, w.pools, from, to, off)
		if err != nil {
			return 0, err
		}
		fn(keptPart{lo: lo, hi: hi, off: off, segs: segs})
		return off + len(segs) + 1, nil
	}
	mark := now.Add(-RollupGrace)
	if mark.Before(start) {
		mark = start
	}
	k := replayKey{account: accountID, pools: poolsKey(w.pools), day: w.through, tail: true}
	valid := func(e *replayEntry) bool {
		// Kept while the watermark is less than a step from this
		// request's: one further ahead is of a clock set back.
		d := mark.UnixNano() - e.w
		return e.gen == w.gen && d < int64(tailStep) && d > -int64(tailStep)
	}
	e, err := a.cache.get(ctx, k, valid, func(old *replayEntry) (*replayEntry, error) {
		if old != nil && old.gen == w.gen && old.w <= mark.UnixNano() {
			// On from the old watermark.
			sw := old.sw.clone()
			err := a.store.EachAnalyticsEvent(ctx, EventQuery{AccountID: accountID, Before: mark, From: nanoTime(old.w), PoolIDs: w.pools},
				func() { sw = old.sw.clone() }, func(ev *EventRow) { sw.apply(ev) })
			if err != nil {
				return nil, fmt.Errorf("analytics replay of today: %w", err)
			}
			return &replayEntry{sw: sw, gen: w.gen, w: mark.UnixNano()}, nil
		}
		sw, err := a.replay(ctx, accountID, w.pools, start, mark, 0, nil)
		if err != nil {
			return nil, fmt.Errorf("analytics replay of today: %w", err)
		}
		return &replayEntry{sw: sw, gen: w.gen, w: mark.UnixNano()}, nil
	})
	if err != nil {
		return 0, err
	}
	if hi <= e.w {
		fn(keptPart{e: e, sw: e.sw, lo: lo, hi: hi, off: off})
		return off + e.sw.n + 1, nil
	}
	// The events after the watermark, on a fork.
	var f *sweep
	err = a.store.EachAnalyticsEvent(ctx, EventQuery{AccountID: accountID, Before: to, From: nanoTime(e.w), PoolIDs: w.pools},
		func() { f = e.sw.fork() }, func(ev *EventRow) {
			if f == nil {
				f = e.sw.fork()
			}
			f.apply(ev)
		})
	if err != nil {
		return 0, err
	}
	if f == nil {
		fn(keptPart{e: e, sw: e.sw, lo: lo, hi: hi, off: off})
		return off + e.sw.n + 1, nil
	}
	base := *e.sw
	base.live = nil // the fork's live segments are its own
	fn(keptPart{e: e, sw: &base, lo: lo, hi: hi, off: off})
	fn(keptPart{e: e, sw: f, lo: lo, hi: hi, off: off})
	return off + f.n + 1, nil
}

// CacheStats is what the replay cache holds: entries and their bytes.
func (a *Analytics) CacheStats() (entries int, bytes int64) {
	if a.cache == nil {
		return 0, 0
	}
	a.cache.mu.Lock()
	defer a.cache.mu.Unlock()
	return len(a.cache.entries), a.cache.size
}
