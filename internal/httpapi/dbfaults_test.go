package httpapi_test

import (
	"context"
	"database/sql"
	"log/slog"
	"net/http"
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
