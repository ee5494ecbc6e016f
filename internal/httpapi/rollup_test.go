package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lcorp/licensing-controller/internal/engine"
	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
	"github.com/lcorp/licensing-controller/internal/usage"
)

// TestAnalyticsRollupsMatchEvents: analytics read whole days from the
// leader's rollups and only the partial edges from events; for any window
// and pool the answers are those of a sweep over all the events. The
// history spans five days of grants, releases, re-registrations and
// expiries, and one expiry is recorded after its day was rolled up (a
// reaper that was down), which reopens that day.
func TestAnalyticsRollupsMatchEvents(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		f := newFixture(t, st, func(o *engine.Options) { o.LeaseTTL = 10 * time.Hour })
		// The history starts two days before an epoch of the lease sums (32
		// days, migration 21): windows end in the next epoch, or start in the
		// first one after its first day.
		epoch := usage.DayOf(time.Now().Add(-10*24*time.Hour)) / 32 * 32
		t0 := usage.DayStart(epoch - 2)
		f.clock.Set(t0)
		withLicence(t, f, 1000)
		pools := []string{
			createAllocation(t, f, `{"name":"a","limits":[{"package":"PREMIUM","units":60}],"tags":["t"]}`),
			createAllocation(t, f, `{"name":"b","limits":[{"package":"PREMIUM","units":40}],"tags":["t"]}`),
		}
		rng := rand.New(rand.NewPCG(7, 14))
		live := map[string]string{} // agent id -> registration id
		versions := []string{"21.1", "22.4"}
		step := 0
		// One lease lives through every day (it heartbeats): a rollup that
		// lost the leases open at a day's start loses it for good.
		f.clock.Set(t0.Add(time.Minute))
		sticky := wantGranted(t, register(t, f, agent{AgentID: "sticky", AgentType: "MACHINE_AGENT", LicenseKey: pools[0],
			Host: onHost("h-sticky", 2)}, ""), http.StatusCreated)["registrationId"].(string)
		for at := t0.Add(3 * time.Minute); at.Before(t0.Add(5 * 24 * time.Hour)); at = at.Add(time.Duration(20+rng.IntN(50)) * time.Minute) {
			f.clock.Set(at)
			step++
			if r := f.do(t, admin("POST", registrations+"/"+sticky+"/heartbeat", nil)); r.status != http.StatusOK {
				t.Fatalf("heartbeat: %d %s", r.status, r.body)
			}
			switch op := rng.IntN(10); {
			case op < 6 || len(live) == 0:
				id := fmt.Sprintf("ag-%d", rng.IntN(60))
				typ := []string{"APP_AGENT", "MACHINE_AGENT", "DB_AGENT"}[rng.IntN(3)]
				a := agent{AgentID: id, AgentType: typ, AgentVersion: &versions[rng.IntN(2)], LicenseKey: pools[rng.IntN(2)],
					Host: onHost(fmt.Sprintf("h%d", rng.IntN(9)), 2+rng.IntN(3))}
				if typ != "MACHINE_AGENT" {
					n := 1 + rng.IntN(3)
					a.Application = app(n, fmt.Sprintf("app-%d", n))
				}
				r := register(t, f, a, "")
				if r.status == http.StatusCreated || r.status == http.StatusOK {
					live[id] = r.json(t)["registrationId"].(string)
				}
			case op < 8:
				for id, reg := range live {
					if r := f.do(t, admin("DELETE", registrations+"/"+reg, nil)); r.status != http.StatusNoContent && r.status != http.StatusNotFound {
						t.Fatalf("release: %d %s", r.status, r.body)
					}
					delete(live, id)
					break
				}
			default:
				if _, err := f.eng.Reap(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
		// One lease lives on into day 5 and expires at 5d 04:00, but the
		// days are rolled up before the reaper records that.
		f.clock.Set(t0.Add(4*24*time.Hour + 18*time.Hour))
		wantGranted(t, register(t, f, agent{AgentID: "late-expiry", AgentType: "APP_AGENT", LicenseKey: pools[0], Host: onHost("hx", 2)}, ""), http.StatusCreated)
		// Another lives from 5d 20:00 into day 6 (still open when day 5 is
		// rolled up): windows from day 6 on start from the open leases the
		// rollup saved.
		f.clock.Set(t0.Add(5*24*time.Hour + 20*time.Hour))
		night := wantGranted(t, register(t, f, agent{AgentID: "overnight", AgentType: "DB_AGENT", LicenseKey: pools[1], Host: onHost("hy", 2),
			Application: app(9, "night")}, ""), http.StatusCreated)["registrationId"].(string)
		f.clock.Set(t0.Add(6*24*time.Hour + 5*time.Hour)) // it lives on to 6d 15:00
		if r := f.do(t, admin("POST", registrations+"/"+night+"/heartbeat", nil)); r.status != http.StatusOK {
			t.Fatalf("heartbeat: %d %s", r.status, r.body)
		}
		f.clock.Set(t0.Add(7 * 24 * time.Hour))
		days, err := f.analytics.RollUp(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if days != 6 { // days 0 to 5: day 6 closes at 7d + the grace
			t.Fatalf("rolled up %d days, want every closed day since %s", days, t0.Format(time.DateOnly))
		}
		if _, err := f.eng.Reap(ctx); err != nil {
			t.Fatal(err)
		}
		if days, err = f.analytics.RollUp(ctx); err != nil || days == 0 {
			t.Fatalf("the late expiry reopened no day: %d days rolled up again, %v", days, err)
		}

		raw := f.analytics.Raw()
		type window struct{ from, to time.Time }
		windows := []window{
			{t0.Add(-24 * time.Hour), t0.Add(7 * 24 * time.Hour)},                                // every day whole
			{t0.Add(3*time.Hour + 17*time.Second), t0.Add(50*time.Hour + 1234*time.Millisecond)}, // both edges partial
			{t0.Add(24 * time.Hour), t0.Add(3 * 24 * time.Hour)},                                 // whole days only
			{t0.Add(24 * time.Hour), t0.Add(2 * 24 * time.Hour)},                                 // one whole day
			{t0.Add(3 * 24 * time.Hour), t0.Add(5 * 24 * time.Hour)},                             // whole days, not from the epoch's first
			{t0.Add(10 * time.Hour), t0.Add(20 * time.Hour)},                                     // inside a day
			{t0.Add(4*24*time.Hour + time.Hour), t0.Add(6 * 24 * time.Hour)},                     // the reopened day
			{time.Time{}, t0.Add(3*24*time.Hour + 5*time.Hour)},                                  // from the oldest event
			{t0.Add(6 * 24 * time.Hour), t0.Add(6*24*time.Hour + 12*time.Hour)},                  // from the saved open leases
			{t0.Add(2*24*time.Hour + 7*time.Hour), t0.Add(7 * 24 * time.Hour)},                   // rolled days, then the saved open leases
			{t0.Add(5*24*time.Hour + 7*time.Hour), t0.Add(6*24*time.Hour + 3*time.Hour)},         // the same, after the last event
			{t0.Add(4*24*time.Hour + 9*time.Hour), t0.Add(4*24*time.Hour + 20*time.Hour)},        // inside a day whose open leases are saved
		}
		compare := func(when string) {
			t.Helper()
			for _, w := range windows {
				compareWindow(t, ctx, raw, f.analytics, when, w.from, w.to, pools)
			}
		}
		compare("")
		// The open leases at every rolled-up day's start are saved, not
		// only those of the last few days: the windows above that start
		// inside days 1 to 3 replayed one day of events, not an index probe
		// per agent.
		saved := func(d usage.Day) bool {
			t.Helper()
			_, ok, err := st.Analytics().OpenAtDay(ctx, 1, d, nil)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		for d := usage.DayOf(t0) + 1; d <= usage.DayOf(t0)+6; d++ {
			if !saved(d) {
				t.Errorf("the open leases at the start of day %d are not saved", d-usage.DayOf(t0))
			}
		}

		// A reopen of a day older than the open leases saved (a reaper that
		// was down for days): the days are rolled up again from the events
		// and answer as before.
		if err := st.Engine().ReopenAnalytics(ctx, 1, usage.DayOf(t0)+1); err != nil {
			t.Fatal(err)
		}
		if n, err := f.analytics.RollUp(ctx); err != nil || n != 5 {
			t.Fatalf("after a reopen of the second day: %d days rolled up again (%v), want 5", n, err)
		}
		compare("after a reopen of the second day: ")

		// A reopen while a day is being built (the reaper of a new leader
		// catching up) makes its save fail, and the day is built again:
		// the build read the events before the expiry committed.
		as := st.Analytics()
		through, gen, ok, err := as.RollupState(ctx, 1)
		if err != nil || !ok {
			t.Fatalf("rollup state: %v %v", ok, err)
		}
		built, err := f.analytics.BuildDay(ctx, 1, through-1)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Engine().ReopenAnalytics(ctx, 1, through-1); err != nil {
			t.Fatal(err)
		}
		if err := as.SaveRollupDay(ctx, built, gen); !errors.Is(err, usage.ErrRollupMoved) {
			t.Errorf("saving a day built before a reopen: %v, want ErrRollupMoved", err)
		}
		if n, err := f.analytics.RollUp(ctx); err != nil || n != 1 {
			t.Errorf("after the reopen: %d days rolled up again (%v), want 1", n, err)
		}

		// The whole days are read from the rollups: changing one changes the
		// answer.
		db, err := st.DB()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec("UPDATE analytics_days SET seconds = seconds + 3600 WHERE pool_id = ''"); err != nil {
			t.Fatal(err)
		}
		q := usage.AnalyticsQuery{AccountID: 1, From: windows[2].from, To: windows[2].to}
		want, _ := raw.Agents(ctx, q)
		got, err := f.analytics.Agents(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if cmp.Equal(want, got) {
			t.Errorf("the rollups were not read: %v", got)
		}

		// Retention of the rollups: cut at the epoch's first day, lease
		// usage from it on is unchanged, and the lease keys only older days
		// used go; cut after every day, none is left.
		keys := func() (n int) {
			if err := db.QueryRow("SELECT COUNT(*) FROM analytics_lease_keys").Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		q = usage.AnalyticsQuery{AccountID: 1, From: usage.DayStart(epoch), To: usage.DayStart(epoch + 3)}
		before, err := f.analytics.Leases(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		n0 := keys()
		if _, err := as.PruneRollups(ctx, 1, epoch); err != nil {
			t.Fatal(err)
		}
		after, err := f.analytics.Leases(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(before, after); diff != "" {
			t.Errorf("leases after pruning the days before the epoch (-before +after):\n%s", diff)
		}
		if n := keys(); n >= n0 || n == 0 { // the history's agents come and go: some keys are of the first two days only

			t.Errorf("%d lease keys after pruning the first epoch, %d before", n, n0)
		}
		if _, err := as.PruneRollups(ctx, 1, epoch+64); err != nil {
			t.Fatal(err)
		}
		if n := keys(); n != 0 {
			t.Errorf("%d lease keys left after pruning every day", n)
		}

		// Event retention drops the open leases of the days whose events
		// it cut into (a window starting then would miss their ends), and
		// keeps the later ones: now is 7d, events before 4d 06:00 go.
		if _, err := f.eng.PruneEvents(ctx, 7*24*time.Hour-(4*24+6)*time.Hour); err != nil {
			t.Fatal(err)
		}
		for d := usage.DayOf(t0) + 1; d <= usage.DayOf(t0)+6; d++ {
			if want := d > usage.DayOf(t0)+4; saved(d) != want {
				t.Errorf("after event retention to 4d 06:00: open leases of day %d saved %v, want %v", d-usage.DayOf(t0), !want, want)
			}
		}
		var sets int
		if err := db.QueryRow("SELECT COUNT(*) FROM analytics_open_sets").Scan(&sets); err != nil {
			t.Fatal(err)
		}
		if sets != 2 {
			t.Errorf("%d open lease sets left after event retention, want days 5 and 6", sets)
		}
	})
}

// compareWindow checks that the analytics of the window (of every pool
// and each of pools) from the rollups (got) are those of the events (raw).
func compareWindow(t *testing.T, ctx context.Context, raw, got *usage.Analytics, when string, from, to time.Time, pools []string) {
	t.Helper()
	for _, pool := range append([]string{""}, pools...) {
		q := usage.AnalyticsQuery{AccountID: 1, From: from, To: to, Pool: pool}
		name := fmt.Sprintf("%s[%s, %s) pool %q", when, from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano), pool)
		wantAgents, err := raw.Agents(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		gotAgents, err := got.Agents(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(wantAgents, gotAgents); diff != "" {
			t.Errorf("%s agents (-events +rollups):\n%s", name, diff)
		}
		wantPkgs, err := raw.Packages(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		gotPkgs, err := got.Packages(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(wantPkgs, gotPkgs); diff != "" {
			t.Errorf("%s packages (-events +rollups):\n%s", name, diff)
		}
		wantLeases, err := raw.Leases(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		gotLeases, err := got.Leases(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(wantLeases, gotLeases); diff != "" {
			t.Errorf("%s leases (-events +rollups):\n%s", name, diff)
		}
		if len(wantLeases) == 0 && pool == "" {
			t.Errorf("%s: no usage at all; the history is not what the test means", name)
		}
	}
}

// A window starting inside the first day kept (no leases saved as open at
// its start) finds them going back from those saved at the next day's
// start; a lease whose package changed between the two is looked up among
// the events. The events are written straight to the store: a change of
// package on a heartbeat and an end at exact times.
func TestAnalyticsWindowInTheFirstDay(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		f := newFixture(t, st)
		d0 := usage.DayOf(time.Now()) - 10
		t0 := usage.DayStart(d0)
		f.clock.Set(t0)
		withLicence(t, f, 1000)
		pool := createAllocation(t, f, `{"name":"a","limits":[{"package":"PREMIUM","units":60},{"package":"INFRA","units":40}]}`)
		h := time.Hour
		ev := func(at time.Duration, kind, agent, pkg, why string) engine.Event {
			return engine.Event{At: t0.Add(at), AccountID: 1, Kind: kind, PoolKind: "ALLOCATION", PoolID: pool, Package: pkg,
				AgentID: agent, AgentType: "MACHINE_AGENT", HostID: "host-" + agent, Reason: why}
		}
		evs := []engine.Event{
			ev(30*time.Minute, "GRANTED", "e", "PREMIUM", ""),
			ev(1*h, "GRANTED", "a", "PREMIUM", ""),
			ev(2*h, "GRANTED", "b", "PREMIUM", ""),
			ev(3*h, "GRANTED", "c", "PREMIUM", ""),
			ev(9*h, "CHANGED", "e", "PREMIUM", "VCPU_KNOWN"),
			ev(10*h, "CHANGED", "a", "INFRA", "VCPU_KNOWN"), // a's package changes
			ev(12*h, "RELEASED", "b", "PREMIUM", ""),
			ev(20*h, "GRANTED", "d", "PREMIUM", ""),
			ev(22*h, "EXPIRED", "d", "PREMIUM", ""),
			ev(26*h, "RELEASED", "a", "INFRA", ""),
			ev(49*h, "RELEASED", "c", "PREMIUM", ""),
			ev(50*h, "RELEASED", "e", "PREMIUM", ""),
		}
		if err := st.Engine().AddEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
		f.clock.Set(t0.Add(3*24*h + h))
		if n, err := f.analytics.RollUp(ctx); err != nil || n != 3 {
			t.Fatalf("rolled up %d days (%v), want 3", n, err)
		}
		as := st.Analytics()
		if _, ok, err := as.OpenAtDay(ctx, 1, d0, nil); err != nil || ok {
			t.Fatalf("open leases of the first day saved: %v %v; the test means a day without", ok, err)
		}
		raw := f.analytics.Raw()
		for _, w := range [][2]time.Duration{{5 * h, 23 * h}, {5 * h, 30 * h}, {11 * h, 36 * h}, {21 * h, 60 * h}, {5*h + 17*time.Second, 3 * 24 * h}} {
			compareWindow(t, ctx, raw, f.analytics, "", t0.Add(w[0]), t0.Add(w[1]), []string{pool})
		}
		// By hand: from 05:00 to 23:00, a was PREMIUM to 10:00, then INFRA.
		ls, err := f.analytics.Leases(ctx, usage.AnalyticsQuery{AccountID: 1, From: t0.Add(5 * h), To: t0.Add(23 * h)})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			if l.HostID == "host-a" && (!slices.Equal(l.Packages, []string{"INFRA", "PREMIUM"}) || l.UsageHours != 18) {
				t.Errorf("a from 05:00 to 23:00: %v, %v hours; want INFRA and PREMIUM, 18 hours", l.Packages, l.UsageHours)
			}
		}
	})
}

// The leases answer of whole days follows the days rolled up after it was
// first asked: a new day's hosts appear, and an application renamed that
// day shows its new name on the older days too.
func TestAnalyticsLeasesFollowTheRollups(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		f := newFixture(t, st)
		d0 := usage.DayOf(time.Now()) - 10
		t0 := usage.DayStart(d0)
		f.clock.Set(t0)
		withLicence(t, f, 1000)
		allocation := func(name string) string { // its id, as events name it
			t.Helper()
			r := f.do(t, admin("POST", allocations, `{"name":"`+name+`","limits":[{"package":"PREMIUM","units":60}]}`))
			if r.status != http.StatusCreated {
				t.Fatalf("allocation: %d %s", r.status, r.body)
			}
			return r.json(t)["id"].(string)
		}
		pool, other := allocation("a"), allocation("b")
		h := time.Hour
		appID := int64(1)
		ev := func(at time.Duration, kind, agent, pool, appName string) engine.Event {
			return engine.Event{At: t0.Add(at), AccountID: 1, Kind: kind, PoolKind: "ALLOCATION", PoolID: pool, Package: "PREMIUM",
				AgentID: agent, AgentType: "APP_AGENT", HostID: "host-" + agent, AppID: &appID, AppName: &appName}
		}
		leases := func(d0, d1 usage.Day, pool string) string {
			t.Helper()
			ls, err := f.analytics.Leases(ctx, usage.AnalyticsQuery{AccountID: 1, From: usage.DayStart(d0), To: usage.DayStart(d1), Pool: pool})
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for _, l := range ls {
				fmt.Fprintf(&b, "%s %s %s %v %gh;", l.HostID, *l.AppName, l.AgentType, l.Packages, l.UsageHours)
			}
			return b.String()
		}
		rollUp := func(days int, now time.Time) {
			t.Helper()
			f.clock.Set(now)
			if n, err := f.analytics.RollUp(ctx); err != nil || n != days {
				t.Fatalf("rolled up %d days (%v), want %d", n, err, days)
			}
		}
		if err := st.Engine().AddEvents(ctx, []engine.Event{
			ev(1*h, "GRANTED", "a", pool, "shop"), ev(3*h, "RELEASED", "a", pool, "shop"),
		}); err != nil {
			t.Fatal(err)
		}
		rollUp(1, t0.Add(25*h))
		if got, want := leases(d0, d0+1, ""), "host-a shop APP_AGENT [PREMIUM] 2h;"; got != want {
			t.Errorf("day 0: %q, want %q", got, want)
		}
		// Day 1: a new host, the application renamed, a in another pool too.
		if err := st.Engine().AddEvents(ctx, []engine.Event{
			ev(25*h, "GRANTED", "b", pool, "shop 2"), ev(29*h, "RELEASED", "b", pool, "shop 2"),
			ev(30*h, "GRANTED", "a", other, "shop 2"), ev(31*h, "RELEASED", "a", other, "shop 2"),
		}); err != nil {
			t.Fatal(err)
		}
		rollUp(1, t0.Add(49*h))
		for _, c := range []struct {
			d0, d1 usage.Day
			pool   string
			want   string
		}{
			{d0, d0 + 2, "", "host-a shop 2 APP_AGENT [PREMIUM] 3h;host-b shop 2 APP_AGENT [PREMIUM] 4h;"},
			{d0, d0 + 1, "", "host-a shop 2 APP_AGENT [PREMIUM] 2h;"},
			{d0 + 1, d0 + 2, "", "host-a shop 2 APP_AGENT [PREMIUM] 1h;host-b shop 2 APP_AGENT [PREMIUM] 4h;"},
			{d0, d0 + 2, other, "host-a shop 2 APP_AGENT [PREMIUM] 1h;"},
		} {
			if got := leases(c.d0, c.d1, c.pool); got != c.want {
				t.Errorf("days %d to %d, pool %q: %q, want %q", c.d0-d0, c.d1-d0, c.pool, got, c.want)
			}
		}
	})
}
