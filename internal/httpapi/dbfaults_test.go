package httpapi_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lcorp/licensing-controller/internal/httpapi"
	"github.com/lcorp/licensing-controller/internal/pgtest"
	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
)

// TestReadOnlyDatabase: pointed at a server that refuses writes (a standby,
// here default_transaction_read_only), the service is not ready, writes
// answer 503 READ_ONLY with Retry-After, and it does not lead.
func TestReadOnlyDatabase(t *testing.T) {
	url := pgtest.URL(t)
	rw := storetest.Open(t, store.Options{URL: url})
	newFixture(t, rw) // bootstrap the account and trial licence
	ro := storetest.Open(t, store.Options{URL: url + "&default_transaction_read_only=on"})
	f := newFixture(t, ro)

	wantProblem(t, f.do(t, req{method: "GET", path: "/readyz"}), http.StatusServiceUnavailable, "READ_ONLY")
	r := f.do(t, admin("POST", allocations, alloc("team-a", 10, "")))
	wantProblem(t, r, http.StatusServiceUnavailable, "READ_ONLY")
	if r.header.Get("Retry-After") == "" {
		t.Error("no Retry-After on READ_ONLY")
	}
	if r := f.do(t, admin("GET", lv1+"/info", nil)); r.status != http.StatusOK {
		t.Errorf("reads still work: %d %s", r.status, r.body)
	}

	var led atomic.Bool
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	ro.Lead(ctx, 4242, 50*time.Millisecond, slog.New(slog.DiscardHandler), func(context.Context) { led.Store(true) })
	if led.Load() {
		t.Error("an instance on a read-only database took the leader lock")
	}
}

// TestHungDatabaseTimesOut: a request waiting on a lock that is never
// released ends at the request deadline with 503 TIMEOUT.
func TestHungDatabaseTimesOut(t *testing.T) {
	url := pgtest.URL(t)
	st := storetest.Open(t, store.Options{URL: url})
	f := newFixtureDeps(t, st, func(d *httpapi.Deps) { d.RequestTimeout = 300 * time.Millisecond })
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.Exec("LOCK TABLE allocations IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := f.do(t, admin("GET", allocations, nil))
	wantProblem(t, r, http.StatusServiceUnavailable, "TIMEOUT")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("answered after %s", d)
	}
}

// TestLostConnectionsAreRetried: when the server closes every connection of
// the pool (as a restart does), reads and registrations run again on a
// fresh connection instead of failing with 500 "conn closed".
func TestLostConnectionsAreRetried(t *testing.T) {
	url := pgtest.URL(t)
	st := storetest.Open(t, store.Options{URL: url})
	f := newFixture(t, st)
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	kill := func() {
		t.Helper()
		// Warm the pool, then terminate its sessions.
		for range 3 {
			f.do(t, admin("GET", lv1+"/info", nil))
		}
		if _, err := db.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid()`); err != nil {
			t.Fatal(err)
		}
	}
	for i, r := range []req{
		admin("GET", lv1+"/info", nil),
		admin("GET", allocations, nil),
		admin("GET", rules, nil),
		admin("POST", registrations, agent{AgentID: "a1", AgentType: "APP_AGENT", Host: onHost("h1", 2)}),
		admin("GET", lv1+"/grouped-usage/host?hostId=h1", nil),
	} {
		kill()
		if got := f.do(t, r); got.status >= 500 {
			t.Errorf("request %d (%s %s) after the sessions were terminated: %d %s", i, r.method, r.path, got.status, got.body)
		}
	}
}

// TestRegistrationsSurviveAnImmediateRestart: two instances register
// agents while PostgreSQL crashes and restarts (pg_ctl restart -m
// immediate). Every acknowledged registration is stored, every failure is
// a 503 problem with Retry-After, and both instances serve again without a
// restart of their own.
func TestRegistrationsSurviveAnImmediateRestart(t *testing.T) {
	// The throwaway server runs with synchronous_commit off for speed; a
	// crash then loses the last commits, acknowledged or not. Production
	// keeps it on, and so does this test.
	url := pgtest.URL(t) + "&synchronous_commit=on"
	f1 := newFixture(t, storetest.Open(t, store.Options{URL: url}))
	f2 := newFixture(t, storetest.Open(t, store.Options{URL: url}))
	withLicence(t, f1, 1_000_000)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		acked    []string
		failures = map[string]int{}
		stop     atomic.Bool
		next     atomic.Int64
	)
	for w := range 8 {
		wg.Go(func() {
			f := []*fixture{f1, f2}[w%2]
			for !stop.Load() {
				id := fmt.Sprintf("agent-%d", next.Add(1))
				r := register(t, f, agent{AgentID: id, AgentType: "APP_AGENT", Host: onHost(id, 1)}, "")
				mu.Lock()
				switch {
				case r.status == http.StatusCreated || r.status == http.StatusOK:
					acked = append(acked, id)
				case r.status == http.StatusServiceUnavailable && r.header.Get("Retry-After") != "" &&
					r.header.Get("Content-Type") == "application/problem+json":
					failures["503"]++
				default:
					failures[fmt.Sprintf("%d %s", r.status, r.body)]++
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	if err := pgtest.Restart("immediate"); err != nil {
		stop.Store(true)
		wg.Wait()
		t.Skip(err)
	}
	time.Sleep(500 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	for k, n := range failures {
		if k != "503" {
			t.Errorf("%d registrations answered %s", n, k)
		}
	}
	t.Logf("%d acknowledged, %d answered 503 during the restart", len(acked), failures["503"])
	// Both instances serve again, and every acknowledged lease is stored.
	for i, f := range []*fixture{f1, f2} {
		within(t, 10*time.Second, fmt.Sprintf("instance %d answers", i+1), func() bool {
			r := register(t, f, agent{AgentID: fmt.Sprintf("after-%d", i), AgentType: "APP_AGENT", Host: onHost("after", 1)}, "")
			if r.status/100 != 2 {
				t.Logf("instance %d: %d %.200s", i+1, r.status, r.body)
			}
			return r.status/100 == 2
		})
	}
	stored := map[string]bool{}
	for next := registrations + "?size=1000"; next != ""; {
		r := f1.do(t, admin("GET", next, nil))
		if r.status != http.StatusOK {
			t.Fatalf("list: %d %s", r.status, r.body)
		}
		var page struct {
			Data []struct{ AgentID string }
			Next *string
		}
		if err := json.Unmarshal(r.body, &page); err != nil {
			t.Fatal(err)
		}
		for _, l := range page.Data {
			stored[l.AgentID] = true
		}
		next = ""
		if page.Next != nil {
			next = *page.Next
		}
	}
	for _, id := range acked {
		if !stored[id] {
			t.Errorf("acknowledged registration %s is not stored", id)
		}
	}
}

// within fails the test unless cond holds within d.
func within(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Errorf("%s: not within %s", what, d)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
