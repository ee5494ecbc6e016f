// Command lc-seriesbench measures the usage time series (API.md §6) on a
// throwaway PostgreSQL: it loads 400 days of 5-minute samples for 50
// allocations × 3 packages (and the account) with set-based SQL, rolls
// them up, then times series queries through the HTTP router and sampler
// ticks over 100 000 live leases. Run it with `make bench-series`.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/lcorp/licensing-controller/internal/auth"
	"github.com/lcorp/licensing-controller/internal/engine"
	"github.com/lcorp/licensing-controller/internal/httpapi"
	"github.com/lcorp/licensing-controller/internal/licensing"
	"github.com/lcorp/licensing-controller/internal/pgtest"
	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/usage"
)

type options struct {
	dbURL       string
	days        int
	allocations int
	leases      int
	iterations  int
	ticks       int
	cpuProfile  string
}

func main() {
	var o options
	flag.StringVar(&o.dbURL, "database-url", "", "PostgreSQL to use (default: a throwaway server)")
	flag.IntVar(&o.days, "days", 400, "days of 5-minute samples to load")
	flag.IntVar(&o.allocations, "allocations", 50, "allocations (3 packages each)")
	flag.IntVar(&o.leases, "leases", 100000, "live leases for the sampler tick")
	flag.IntVar(&o.iterations, "iterations", 200, "requests per query kind")
	flag.IntVar(&o.ticks, "ticks", 5, "sampler ticks to time")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the queries to this file")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "lc-seriesbench:", err)
		os.Exit(1)
	}
}

const password = "bench-password"

func run(ctx context.Context, o options) error {
	if o.dbURL == "" {
		u, stop, err := pgtest.Server(ctx)
		if err != nil {
			return fmt.Errorf("start PostgreSQL: %w", err)
		}
		defer stop()
		o.dbURL = u
	}
	st, err := store.Open(ctx, store.Options{URL: o.dbURL})
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		return err
	}
	authSvc, err := auth.NewService(ctx, st.Auth(), auth.Options{BcryptCost: bcrypt.MinCost})
	if err != nil {
		return err
	}
	if _, _, err := authSvc.Bootstrap(ctx, password); err != nil {
		return err
	}
	verifier, err := licensing.NewVerifier(nil)
	if err != nil {
		return err
	}
	lic := licensing.NewService(st.Licensing(), verifier, nil)
	if err := lic.InstallTrial(ctx, 1); err != nil { // 100 units of each package
		return err
	}
	var pools []string
	for i := range o.allocations {
		a, err := lic.CreateAllocation(ctx, 1, licensing.AllocationInput{Name: fmt.Sprintf("alloc-%02d", i),
			Limits: []licensing.Limit{{Package: "INFRA", Units: 1}, {Package: "PREMIUM", Units: 1}, {Package: "ENTERPRISE", Units: 1}}})
		if err != nil {
			return fmt.Errorf("allocation %d: %w", i, err)
		}
		pools = append(pools, a.ID)
	}
	db, err := sql.Open("pgx", o.dbURL)
	if err != nil {
		return err
	}
	defer db.Close()

	now := time.Now().UTC().Truncate(24 * time.Hour)
	from := now.Add(-time.Duration(o.days) * 24 * time.Hour)
	start := time.Now()
	rows, err := load(ctx, db, pools, from.Unix(), now.Unix())
	if err != nil {
		return err
	}
	fmt.Printf("loaded %d samples (%d days × %d series) and their rollups in %s\n", rows, o.days, (len(pools)+1)*3,
		time.Since(start).Round(time.Second))

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := prometheus.NewRegistry()
	clk := now.Add(time.Hour)
	nowFn := func() time.Time { return clk }
	eng := engine.New(st.Engine(), lic, engine.Options{Now: nowFn, Registry: reg, Logger: log})
	series := usage.NewSeries(st.Series(), lic, 5*time.Minute)
	h := httpapi.New(httpapi.Deps{Auth: authSvc, Licensing: lic, Engine: eng, Usage: usage.NewService(st.Engine(), nowFn),
		Series: series, Lint: usage.NewLinter(st.Lint(), lic, nowFn), WhatIf: usage.NewWhatIf(st.WhatIf(), lic, nowFn), Analytics: usage.NewAnalytics(st.Analytics(), lic, nowFn), Ready: st.Ready, Logger: log, Registry: reg, Version: "bench"})
	allocs, err := lic.Allocations(ctx, 1, licensing.AllocationQuery{})
	if err != nil {
		return err
	}
	keys := map[string]string{}
	for _, a := range allocs {
		keys[a.ID] = a.LicenseKey
	}

	rnd := rand.New(rand.NewPCG(1, 2))
	day := 24 * time.Hour
	window := func(span time.Duration) (time.Time, time.Time) {
		free := max(int((now.Sub(from)-span)/day), 0)
		f := from.Add(time.Duration(rnd.IntN(free+1)) * day)
		return f, f.Add(span)
	}
	type query struct {
		name   string
		span   time.Duration
		g      int
		target time.Duration
		path   func() string
		extra  string
	}
	queries := []query{
		{"30 days at 60 min, one allocation", 30 * day, 60, 50 * time.Millisecond,
			func() string { return "/account/1/allocation/" + keys[pools[rnd.IntN(len(pools))]] }, ""},
		{"30 days at 60 min, account", 30 * day, 60, 100 * time.Millisecond, func() string { return "/account/1" }, ""},
		{"366 days at 1440 min, account", 366 * day, 1440, 100 * time.Millisecond, func() string { return "/account/1" }, ""},
		{"366 days at 1440 min, one allocation", 366 * day, 1440, 100 * time.Millisecond,
			func() string { return "/account/1/allocation/" + keys[pools[rnd.IntN(len(pools))]] }, ""},
		{"2 days at 5 min (raw), account", 2 * day, 5, 0, func() string { return "/account/1" }, ""},
	}
	for _, q := range slices.Clone(queries) {
		q.name += " +types,UNIT_HOURS"
		q.extra, q.target = "&includeEntityTypes=true&includeConsumptionBased=true", 0
		queries = append(queries, q)
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	for _, q := range queries {
		var took []time.Duration
		points := 0
		for i := range o.iterations + 5 {
			f, t := window(q.span)
			u := fmt.Sprintf("/controller/licensing/v1/usage%s?dateFrom=%s&dateTo=%s&granularityMinutes=%d%s",
				q.path(), url.QueryEscape(f.Format(time.RFC3339)), url.QueryEscape(t.Format(time.RFC3339)), q.g, q.extra)
			r := httptest.NewRequest(http.MethodGet, u, nil)
			r.SetBasicAuth("admin@customer1", password)
			w := httptest.NewRecorder()
			t0 := time.Now()
			h.ServeHTTP(w, r)
			d := time.Since(t0)
			if w.Code != http.StatusOK {
				return fmt.Errorf("%s: %d %s", u, w.Code, w.Body.String())
			}
			if i >= 5 { // warm-up: the first requests also check the password
				took = append(took, d)
				points = w.Body.Len()
			}
		}
		report(q.name, took, q.target, fmt.Sprintf("%d bytes", points))
	}

	pprof.StopCPUProfile()
	if err := loadLeases(ctx, db, pools, o.leases, clk); err != nil {
		return err
	}
	sampler := engine.NewSampler(st.Series(), lic, engine.SamplerOptions{Interval: 5 * time.Minute, Now: nowFn, Logger: log})
	var ticks []time.Duration
	for range o.ticks {
		clk = clk.Add(5 * time.Minute)
		t0 := time.Now()
		ok, err := sampler.Sample(ctx)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("tick at %s sampled nothing", clk)
		}
		ticks = append(ticks, time.Since(t0))
	}
	report(fmt.Sprintf("sampler tick, %d live leases", o.leases), ticks, 2*time.Second, "")
	return nil
}

func report(name string, took []time.Duration, target time.Duration, note string) {
	slices.Sort(took)
	p := func(q float64) time.Duration { return took[int(q*float64(len(took)-1))].Round(10 * time.Microsecond) }
	verdict := ""
	if target > 0 {
		verdict = fmt.Sprintf("  target p95 ≤ %s: ", target)
		if p(0.95) <= target {
			verdict += "OK"
		} else {
			verdict += "MISSED"
		}
	}
	fmt.Printf("%-40s n=%-4d p50 %-10s p95 %-10s max %-10s%s %s\n", name, len(took), p(0.5), p(0.95), took[len(took)-1].Round(10*time.Microsecond), verdict, note)
}

// load writes the series, samples and rollups with a few set-based
// statements (generate_series), as the sampler would have over the days.
func load(ctx context.Context, db *sql.DB, pools []string, from, to int64) (int64, error) {
	stmts := []string{
		`INSERT INTO usage_series (account_id, pool_id, package)
		 SELECT 1, p, k FROM unnest($1::text[]) p, unnest(ARRAY['INFRA','PREMIUM','ENTERPRISE']) k`,
		// Used units wander deterministically; provisioned is the limit
		// (the account's licensed units at the account level).
		`INSERT INTO usage_samples (series_id, at, provisioned, used)
		 SELECT s.id, t, CASE WHEN s.pool_id = '' THEN 100 ELSE 40 END,
		        (s.id * 7 + t / 300 + (t / 3600) % 13) % 40
		 FROM usage_series s, generate_series($1::bigint, $2::bigint - 300, 300) t
		 ORDER BY s.id, t`,
		`INSERT INTO usage_sample_times (at) SELECT generate_series($1::bigint, $2::bigint - 300, 300)`,
		`INSERT INTO usage_rollups SELECT 3600, series_id, at - at % 3600, MIN(provisioned), MAX(provisioned), SUM(provisioned),
		   MIN(used), MAX(used), SUM(used), COUNT(*) FROM usage_samples GROUP BY series_id, at - at % 3600`,
		`INSERT INTO usage_rollups SELECT 86400, series_id, bucket - bucket % 86400, MIN(prov_min), MAX(prov_max), SUM(prov_sum),
		   MIN(used_min), MAX(used_max), SUM(used_sum), SUM(n) FROM usage_rollups WHERE resolution = 3600
		   GROUP BY series_id, bucket - bucket % 86400`,
		`ANALYZE`,
	}
	all := append([]string{""}, pools...)
	for i, q := range stmts {
		var args []any
		switch i {
		case 0:
			args = []any{all}
		case 1, 2:
			args = []any{from, to}
		}
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			return 0, fmt.Errorf("load statement %d: %w", i, err)
		}
	}
	var n int64
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM usage_samples").Scan(&n); err != nil {
		return 0, err
	}
	return n, nil
}

// loadLeases makes n live leases on n/2 hosts of 4 vCPU across the pools;
// every tenth host also runs an agent under the next allocation (charged
// by both), with their host charges and pool counters.
func loadLeases(ctx context.Context, db *sql.DB, pools []string, n int, now time.Time) error {
	stmts := []string{
		`INSERT INTO pools (id, account_id, kind) SELECT p, 1, 'ALLOCATION' FROM unnest($1::text[]) p ON CONFLICT DO NOTHING`,
		`INSERT INTO leases (id, account_id, agent_id, agent_type, pool_kind, pool_id, license_key, package, units_charged, host_id,
		   granted_at, heartbeat_at, expires_at)
		 SELECT 'lease-' || g, 1, 'agent-' || g, CASE WHEN g % 3 = 0 THEN 'MACHINE_AGENT' ELSE 'APP_AGENT' END, 'ALLOCATION',
		   ($1::text[])[1 + ((g / 2) + CASE WHEN g % 2 = 1 AND (g / 2) % 10 = 0 THEN 1 ELSE 0 END) % cardinality($1::text[])],
		   'key', 'PREMIUM', 0, 'host-' || (g / 2), $3::timestamptz, $3::timestamptz, $3::timestamptz + interval '1 hour'
		 FROM generate_series(0, $2 - 1) g`,
		`INSERT INTO host_charges (pool_id, host_id, account_id, package, units, fallback, charged_at)
		 SELECT DISTINCT pool_id, host_id, 1, 'PREMIUM', 4, false, $1::timestamptz FROM leases`,
		`INSERT INTO pool_usage (pool_id, item, used) SELECT pool_id, package, SUM(units) FROM host_charges GROUP BY pool_id, package
		 ON CONFLICT (pool_id, item) DO UPDATE SET used = excluded.used`,
		`ANALYZE`,
	}
	for i, q := range stmts {
		var args []any
		switch i {
		case 0:
			args = []any{pools}
		case 1:
			args = []any{pools, n, now}
		case 2:
			args = []any{now}
		}
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("lease statement %d: %w", i, err)
		}
	}
	return nil
}
