package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lcorp/licensing-controller/internal/engine"
	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
)

// TestEventRetention: LC_EVENT_RETENTION was parsed and ignored, so the
// event table grew forever. Events older than the retention go (in
// batches: more of them than one batch holds); newer ones stay.
func TestEventRetention(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st, longLeases, func(o *engine.Options) { o.EventPruneBatch = 20 })
		now := f.clock.Now()
		f.clock.Set(now.Add(-3 * 24 * time.Hour))
		old := 3*20 + 10         // more than three batches
		for i := range old / 2 { // a grant and a release each
			id := wantGranted(t, register(t, f, agent{AgentID: fmt.Sprintf("old-%d", i), AgentType: "MACHINE_AGENT", Host: onHost("h", nil)}, ""), http.StatusCreated)["registrationId"].(string)
			if r := f.do(t, admin("DELETE", registrations+"/"+id, nil)); r.status != http.StatusNoContent {
				t.Fatalf("release: %d %s", r.status, r.body)
			}
		}
		// A lease granted then, still live: its grant must stay, or analytics
		// would lose it.
		wantGranted(t, register(t, f, agent{AgentID: "long-lived", AgentType: "APP_AGENT", Host: onHost("h2", 2)}, ""), http.StatusCreated)
		f.clock.Set(now)
		wantGranted(t, register(t, f, agent{AgentID: "new", AgentType: "MACHINE_AGENT", Host: onHost("h", nil)}, ""), http.StatusCreated)
		count := func() (old, recent int64) {
			t.Helper()
			db, err := st.DB()
			if err != nil {
				t.Fatal(err)
			}
			cut := now.Add(-24 * time.Hour)
			if err := db.QueryRow(fmt.Sprintf("SELECT COUNT(*) FROM usage_events WHERE at < %s", placeholder(st, 1)), cut).Scan(&old); err != nil {
				t.Fatal(err)
			}
			if err := db.QueryRow(fmt.Sprintf("SELECT COUNT(*) FROM usage_events WHERE at >= %s", placeholder(st, 1)), cut).Scan(&recent); err != nil {
				t.Fatal(err)
			}
			return old, recent
		}
		if o, _ := count(); o < int64(old) {
			t.Fatalf("only %d old events to prune", o)
		}
		n, err := f.eng.PruneEvents(context.Background(), 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		o, r := count()
		if o != 1 || r != 1 || n < int64(old) {
			t.Errorf("after pruning %d: %d old and %d recent events, want 1 (the live lease's grant) and 1", n, o, r)
		}
		r2 := f.do(t, admin("GET", lv1+"/analytics/agents?startDate="+now.Add(-time.Hour).Format(time.RFC3339), nil))
		if r2.status != http.StatusOK || !strings.Contains(string(r2.body), `"agentType":"APP_AGENT"`) {
			t.Errorf("the live lease is gone from analytics: %d %s", r2.status, r2.body)
		}
	})
}

// placeholder is the n-th bind parameter of st's SQL dialect.
func placeholder(st *store.Store, n int) string {
	if st.Dialect() == store.Postgres {
		return fmt.Sprintf("$%d", n)
	}
	return "?"
}

// TestEventRetentionUnderLoad: one retention pass removes three-day-old
// events in many small batches while 32 clients keep registering and
// releasing; no registration waits a second, and the analytics of the last
// day are what they were.
func TestEventRetentionUnderLoad(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st, longLeases, func(o *engine.Options) { o.EventPruneBatch = 50 })
		now := f.clock.Now()
		f.clock.Set(now.Add(-3 * 24 * time.Hour))
		const old = 600
		for i := range old { // a grant and a release each
			id := wantGranted(t, register(t, f, agent{AgentID: fmt.Sprintf("old-%d", i), AgentType: "MACHINE_AGENT", Host: onHost(fmt.Sprintf("h%d", i%50), nil)}, ""), http.StatusCreated)["registrationId"].(string)
			if r := f.do(t, admin("DELETE", registrations+"/"+id, nil)); r.status != http.StatusNoContent {
				t.Fatalf("release: %d %s", r.status, r.body)
			}
		}
		f.clock.Set(now.Add(-2 * time.Hour))
		for i := range 5 {
			wantGranted(t, register(t, f, agent{AgentID: fmt.Sprintf("recent-%d", i), AgentType: "APP_AGENT", Host: onHost(fmt.Sprintf("r%d", i), 2),
				Application: app(i, "shop")}, ""), http.StatusCreated)
		}
		f.clock.Set(now)
		lastDay := func() string {
			t.Helper()
			r := f.do(t, admin("GET", analyticsPath("leases", now.Add(-24*time.Hour), now, ""), nil))
			if r.status != http.StatusOK {
				t.Fatalf("analytics: %d %s", r.status, r.body)
			}
			return string(r.body)
		}
		before := lastDay()

		done := make(chan struct{})
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			slowest time.Duration
			calls   int
		)
		for w := range 32 {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-done:
						return
					default:
					}
					began := time.Now()
					r := register(t, f, agent{AgentID: fmt.Sprintf("load-%d-%d", w, i), AgentType: "MACHINE_AGENT", Host: onHost(fmt.Sprintf("l%d", w), nil)}, "")
					took := time.Since(began)
					if r.status != http.StatusCreated {
						t.Errorf("registration under retention: %d %s", r.status, r.body)
						return
					}
					mu.Lock()
					slowest, calls = max(slowest, took), calls+1
					mu.Unlock()
				}
			})
		}
		n, err := f.eng.PruneEvents(context.Background(), 24*time.Hour)
		close(done)
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		if n < 2*old {
			t.Errorf("pruned %d events, want the %d old ones", n, 2*old)
		}
		if slowest > time.Second {
			t.Errorf("slowest of %d registrations during retention: %s, want under 1s", calls, slowest)
		}
		t.Logf("pruned %d events in batches of 50 while %d registrations ran (slowest %s)", n, calls, slowest)
		if after := lastDay(); after != before {
			t.Errorf("analytics of the last day changed:\nbefore %s\nafter  %s", before, after)
		}
	})
}

// TestRetentionKeepsOpenLeases: a lease open at the retention cut keeps
// its grant even once it has ended, so that a window before its end still
// counts it (a rollup rebuilt after a reopen reads the same events).
func TestRetentionKeepsOpenLeases(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st, longLeases)
		now := f.clock.Now().Truncate(time.Second)
		f.clock.Set(now.Add(-3 * 24 * time.Hour))
		id := wantGranted(t, register(t, f, agent{AgentID: "long", AgentType: "MACHINE_AGENT", Host: onHost("h", nil)}, ""), http.StatusCreated)["registrationId"].(string)
		f.clock.Set(now.Add(-time.Hour))
		if r := f.do(t, admin("DELETE", registrations+"/"+id, nil)); r.status != http.StatusNoContent {
			t.Fatalf("release: %d %s", r.status, r.body)
		}
		f.clock.Set(now)
		if _, err := f.eng.PruneEvents(context.Background(), 24*time.Hour); err != nil {
			t.Fatal(err)
		}
		r := f.do(t, admin("GET", analyticsPath("agents", now.Add(-2*24*time.Hour), now.Add(-24*time.Hour), ""), nil))
		if r.status != http.StatusOK || !strings.Contains(string(r.body), `"usageHours":24`) {
			t.Errorf("the day before the release after retention: %d %s, want 24 usage hours", r.status, r.body)
		}
	})
}
