package httpapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/lcorp/licensing-controller/internal/engine"
	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
	"github.com/lcorp/licensing-controller/internal/usage"
)

// TestAnalyticsKeptReplaysFollowNewAndLateEvents: a replica keeps the
// replays of the days windows cut (a rolled-up day whole, today up to a
// watermark behind now); the answers stay those of a sweep over all the
// events as events come after the watermark, as the watermark moves on,
// and when the reaper records an expiry far behind its time (today's, or
// a rolled-up day's), on both stores.
func TestAnalyticsKeptReplaysFollowNewAndLateEvents(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		f := newFixture(t, st, func(o *engine.Options) { o.LeaseTTL = 30 * time.Minute })
		t0 := usage.DayStart(usage.DayOf(time.Now()) - 10)
		f.clock.Set(t0)
		withLicence(t, f, 1000)
		pool := createAllocation(t, f, `{"name":"a","limits":[{"package":"PREMIUM","units":60}]}`)
		raw := f.analytics.Raw()
		at := func(d time.Duration) time.Time { return t0.Add(d) }
		reg := func(id, typ string, when time.Duration) {
			t.Helper()
			f.clock.Set(at(when))
			a := agent{AgentID: id, AgentType: typ, LicenseKey: pool, Host: onHost("h-"+id, 2)}
			if typ != "MACHINE_AGENT" {
				a.Application = app(3, "shop")
			}
			wantGranted(t, register(t, f, a, ""), http.StatusCreated)
		}
		reap := func() {
			t.Helper()
			if _, err := f.eng.Reap(ctx); err != nil {
				t.Fatal(err)
			}
		}
		rollUp := func(want int) {
			t.Helper()
			if n, err := f.analytics.RollUp(ctx); err != nil || n != want {
				t.Fatalf("rolled up %d days (%v), want %d", n, err, want)
			}
		}
		// The last 24 hours, and a window cutting the rolled-up day
		// before today, both ending now.
		compare := func(when string) {
			t.Helper()
			now := f.clock.Now()
			compareWindow(t, ctx, raw, f.analytics, when, now.Add(-24*time.Hour), now, []string{pool})
			compareWindow(t, ctx, raw, f.analytics, when, usage.DayStart(usage.DayOf(now)-1).Add(5*time.Hour+7*time.Second), now, []string{pool})
		}

		reg("a", "APP_AGENT", time.Hour)
		reg("b", "MACHINE_AGENT", 2*time.Hour)
		reg("c", "APP_AGENT", 25*time.Hour)
		f.clock.Set(at(36 * time.Hour))
		reap() // a and b expired on day 0
		rollUp(1)
		reg("e", "DB_AGENT", 36*time.Hour)
		f.clock.Set(at(37 * time.Hour))
		compare("e live: ")
		// e expired at 36:30, recorded at 37:00: behind the watermark.
		reap()
		compare("e's expiry recorded 30 minutes late: ")
		// Events after the watermark, within a step of it, and later.
		reg("f", "APP_AGENT", 37*time.Hour+20*time.Second)
		f.clock.Set(at(37*time.Hour + 40*time.Second))
		compare("f after the watermark: ")
		reg("g", "MACHINE_AGENT", 37*time.Hour+5*time.Minute)
		f.clock.Set(at(37*time.Hour + 50*time.Minute))
		compare("the watermark moved on: ")

		// h lives into day 2 and i expires late on day 1; both are
		// recorded after day 1 is rolled up.
		reg("i", "DB_AGENT", 47*time.Hour)
		reg("h", "APP_AGENT", 47*time.Hour+50*time.Minute)
		f.clock.Set(at(48*time.Hour + 15*time.Minute))
		rollUp(1)
		f.clock.Set(at(62 * time.Hour))
		compare("f, g, h and i live: ")
		reap() // f, g and i expired in day 1, h at 48:20 in day 2
		compare("day 1 reopened by the expiries: ")
		rollUp(1)
		compare("day 1 rolled up again: ")

		// A host renamed by a registration (h's, in the kept replay of
		// today): named as it is named now.
		f.clock.Set(at(62*time.Hour + time.Minute))
		wantGranted(t, register(t, f, agent{AgentID: "j", AgentType: "MACHINE_AGENT", LicenseKey: pool,
			Host: map[string]any{"id": "h-h", "name": "renamed", "vCpu": 2}}, ""), http.StatusCreated)
		compare("h-h renamed: ")

		// Event retention cuts into day 0: a kept replay of it is read again.
		old := []time.Time{at(3 * time.Hour), at(30 * time.Hour)}
		compareWindow(t, ctx, raw, f.analytics, "day 0 kept: ", old[0], old[1], []string{pool})
		if n, err := f.eng.PruneEvents(ctx, f.clock.Now().Sub(at(20*time.Hour))); err != nil || n == 0 {
			t.Fatalf("event retention: %d events pruned, %v", n, err)
		}
		compareWindow(t, ctx, raw, f.analytics, "day 0 cut by retention: ", old[0], old[1], []string{pool})
	})
}
