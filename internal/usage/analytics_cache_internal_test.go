package usage

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

// built is an entry of a sweep with n segments.
func built(n int) *replayEntry {
	return &replayEntry{sw: &sweep{out: make([]keptSeg, n)}}
}

func TestReplayCacheBuildsOnceAndKeepsTheLatestUsedWithinItsBudget(t *testing.T) {
	ctx := context.Background()
	const per = entryBytes + 100*segmentBytes
	c := newReplayCache(3 * per) // room for three entries of 100 segments
	always := func(*replayEntry) bool { return true }
	var builds atomic.Int32
	build := func(*replayEntry) (*replayEntry, error) { builds.Add(1); return built(100), nil }

	// Concurrent requests for one key build it once.
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.get(ctx, replayKey{day: 1}, always, build); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := builds.Load(); n != 1 {
		t.Fatalf("16 concurrent requests of one key built it %d times", n)
	}
	// Days 2 and 3 fill the budget; day 1 used again; day 4 evicts day 2,
	// the least recently used.
	for _, d := range []Day{2, 3, 1, 4} {
		if _, err := c.get(ctx, replayKey{day: d}, always, build); err != nil {
			t.Fatal(err)
		}
	}
	if builds.Load() != 4 {
		t.Fatalf("%d builds, want 4 (day 1 kept)", builds.Load())
	}
	if _, ok := c.entries[replayKey{day: 2}]; ok || len(c.entries) != 3 || c.size != 3*per {
		t.Errorf("after day 4: day 2 kept %v, %d entries of %d bytes; want days 1, 3 and 4", ok, len(c.entries), c.size)
	}
	// An entry no longer valid is built again, from the old one.
	var old *replayEntry
	e, err := c.get(ctx, replayKey{day: 3}, func(*replayEntry) bool { return false }, func(o *replayEntry) (*replayEntry, error) {
		old = o
		return built(50), nil
	})
	if err != nil || old == nil || len(e.sw.out) != 50 || c.size != 2*per+entryBytes+50*segmentBytes {
		t.Errorf("rebuild: %v, old %v, size %d", err, old != nil, c.size)
	}
	// A failed build is not kept; one bigger than the budget is served
	// and not kept.
	boom := errors.New("boom")
	if _, err := c.get(ctx, replayKey{day: 5}, always, func(*replayEntry) (*replayEntry, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("failed build: %v", err)
	}
	if e, err := c.get(ctx, replayKey{day: 6}, always, func(*replayEntry) (*replayEntry, error) { return built(1000), nil }); err != nil || len(e.sw.out) != 1000 {
		t.Errorf("big build: %v", err)
	}
	for _, d := range []Day{5, 6} {
		if _, ok := c.entries[replayKey{day: d}]; ok {
			t.Errorf("day %d kept", d)
		}
	}
	if c.size != 2*per+entryBytes+50*segmentBytes {
		t.Errorf("size %d after the failed and the big builds", c.size)
	}
	// A rebuild that fails, or panics, leaves the old entry as it was.
	if _, err := c.get(ctx, replayKey{day: 3}, func(*replayEntry) bool { return false },
		func(*replayEntry) (*replayEntry, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("failed rebuild: %v", err)
	}
	func() {
		defer func() { _ = recover() }()
		_, _ = c.get(ctx, replayKey{day: 3}, func(*replayEntry) bool { return false },
			func(*replayEntry) (*replayEntry, error) { panic("boom") })
	}()
	if e, err := c.get(ctx, replayKey{day: 3}, always, build); err != nil || len(e.sw.out) != 50 || builds.Load() != 4 {
		t.Errorf("after a failed and a panicked rebuild: %v, %d builds", err, builds.Load())
	}
}
