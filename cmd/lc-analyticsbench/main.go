// Command lc-analyticsbench measures the usage analytics (API.md §7) on a
// throwaway PostgreSQL: it writes, with set-based SQL, the events of an
// estate of hosts × agents with daily churn over many days (each agent's
// leases back to back, the last one still live), then times every
// analytics endpoint through the HTTP router for 1-, 30- and 90-day
// windows, and one event retention pass. Run it with `make bench-analytics`.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
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

const password = "bench-password"

type options struct {
	dbURL      string
	hosts      int
	agents     int
	days       int
	leaseHours int
	iterations int
	cpuProfile string
	memProfile string
	only       string
	endpoints  string
	windows    string
	existing   bool
	retention  bool
}

func main() {
	var o options
	flag.StringVar(&o.dbURL, "database-url", "", "PostgreSQL to use (default: a throwaway server)")
	flag.IntVar(&o.hosts, "hosts", 10000, "hosts")
	flag.IntVar(&o.agents, "agents", 100000, "agents (spread over the hosts)")
	flag.IntVar(&o.days, "days", 90, "days of history")
	flag.IntVar(&o.leaseHours, "lease-hours", 43, "length of each lease: an agent re-registers after it (the churn)")
	flag.IntVar(&o.iterations, "iterations", 20, "requests per endpoint and window")
	flag.StringVar(&o.endpoints, "endpoints", "agents,packages,leases,rejections", "the endpoints to time, comma-separated")
	flag.StringVar(&o.windows, "windows", "all", "the windows to time: all, dates (yyyy-MM-dd bounds) or times (RFC 3339 bounds inside days)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the rollups and the queries to this file")
	flag.StringVar(&o.only, "window", "", `time only this window: "1 day", "30 days", "90 days", "1 date", "30 dates" or "89 dates"`)
	flag.StringVar(&o.memProfile, "memprofile", "", "write a profile of the memory the timed queries allocated to this file")
	flag.BoolVar(&o.existing, "existing", false, "time the queries on the estate an earlier run with the same --database-url loaded (and --retention=false kept): no load")
	flag.BoolVar(&o.retention, "retention", true, "time one event retention pass at the end (it deletes the older half of the events)")
	flag.Parse()
	if o.only != "" && !slices.Contains([]string{"1 day", "30 days", "90 days", "1 date", "30 dates", "89 dates"}, o.only) {
		fmt.Fprintf(os.Stderr, "lc-analyticsbench: --window %q: want 1 day, 30 days, 90 days, 1 date, 30 dates or 89 dates\n", o.only)
		os.Exit(2)
	}
	if !slices.Contains([]string{"all", "dates", "times"}, o.windows) {
		fmt.Fprintf(os.Stderr, "lc-analyticsbench: --windows %q: want all, dates or times\n", o.windows)
		os.Exit(2)
	}
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "lc-analyticsbench:", err)
		os.Exit(1)
	}
}

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
	verifier, err := licensing.NewVerifier(nil)
	if err != nil {
		return err
	}
	lic := licensing.NewService(st.Licensing(), verifier, nil)
	db, err := sql.Open("pgx", o.dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	var now time.Time
	if o.existing {
		// The load's clock: every live lease heartbeat then.
		if err := db.QueryRowContext(ctx, "SELECT MAX(heartbeat_at) FROM leases").Scan(&now); err != nil {
			return fmt.Errorf("read the estate's clock (was it loaded with --retention=false?): %w", err)
		}
		now = now.UTC()
		fmt.Printf("timing the estate loaded for %s\n", now.Format(time.RFC3339))
	} else if now, err = setUp(ctx, o, authSvc, lic, db); err != nil {
		return err
	}

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := prometheus.NewRegistry()
	nowFn := func() time.Time { return now }
	eng := engine.New(st.Engine(), lic, engine.Options{Now: nowFn, Registry: reg, Logger: log})
	analytics := usage.NewAnalytics(st.Analytics(), lic, nowFn)
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	t0 := time.Now()
	days, err := analytics.RollUp(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("the leader rolled up %d days of analytics in %s (%s per day)\n", days, time.Since(t0).Round(time.Second),
		(time.Since(t0) / time.Duration(max(days, 1))).Round(time.Millisecond))
	h := httpapi.New(httpapi.Deps{Auth: authSvc, Licensing: lic, Engine: eng, Usage: usage.NewService(st.Engine(), nowFn),
		Series: usage.NewSeries(st.Series(), lic, 5*time.Minute), Analytics: analytics, Lint: usage.NewLinter(st.Lint(), lic, nowFn), WhatIf: usage.NewWhatIf(st.WhatIf(), lic, nowFn),
		Ready: st.Ready, Logger: log, Registry: reg, Version: "bench"})
	// Served over loopback as the service serves: the leases answer is
	// written in chunks to the connection, not kept whole in a recorder.
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := &http.Client{Timeout: time.Minute}

	day := 24 * time.Hour
	failed := 0
	if o.memProfile != "" {
		runtime.MemProfileRate = 64 << 10
		runtime.GC() // the load's and the rollup's allocations out of the figures
		defer func() {
			if err := writeHeapProfile(o.memProfile); err != nil {
				fmt.Fprintf(os.Stderr, "lc-analyticsbench: %v\n", err)
			}
		}()
	}
	for _, w := range []struct {
		name   string
		span   time.Duration
		target time.Duration
		dates  bool // yyyy-MM-dd bounds: whole days, up to yesterday
	}{{"1 day", day, 100 * time.Millisecond, false}, {"30 days", 30 * day, 0, false}, {"90 days", 90 * day, 300 * time.Millisecond, false},
		{"1 date", day, 100 * time.Millisecond, true}, {"30 dates", 30 * day, 0, true}, {"89 dates", 89 * day, 300 * time.Millisecond, true}} {
		if (o.windows == "dates" && !w.dates) || (o.windows == "times" && w.dates) || (o.only != "" && o.only != w.name) {
			continue
		}
		for _, kind := range strings.Split(o.endpoints, ",") {
			var took []time.Duration
			size := 0
			for i := range o.iterations + 2 {
				to := now.Add(-time.Duration(i%5) * time.Hour)
				from := to.Add(-w.span)
				start, end := from.Format(time.RFC3339), to.Format(time.RFC3339)
				if w.dates {
					to = now.Truncate(day).Add(-time.Duration(i%3) * day)
					start, end = to.Add(-w.span).Format(time.DateOnly), to.Format(time.DateOnly)
				}
				u := fmt.Sprintf("/controller/licensing/v1/account/1/analytics/%s?startDate=%s&endDate=%s", kind,
					url.QueryEscape(start), url.QueryEscape(end))
				s := time.Now()
				code, size1, body, err := fetch(client, srv.URL+u)
				d := time.Since(s)
				if err != nil {
					return fmt.Errorf("%s: %w", u, err)
				}
				if code != http.StatusOK {
					// Reported, and the run goes on: the other figures still tell.
					fmt.Printf("%-26s FAILED: %s: %d %.200s\n", fmt.Sprintf("%s, %s", kind, w.name), u, code, body)
					failed++
					took = nil
					break
				}
				if i >= 2 {
					took = append(took, d)
					size = int(size1)
				}
			}
			if len(took) > 0 {
				report(fmt.Sprintf("%s, %s", kind, w.name), took, w.target, fmt.Sprintf("%d bytes", size))
			}
		}
	}
	entries, bytes := analytics.CacheStats()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("analytics replay cache: %d replays kept, %.0f MiB estimated (Go heap in use %.0f MiB)\n", entries,
		float64(bytes)/(1<<20), float64(ms.HeapInuse)/(1<<20))
	if o.retention {
		t0 = time.Now()
		pruned, err := eng.PruneEvents(ctx, time.Duration(o.days/2)*day)
		if err != nil {
			return err
		}
		fmt.Printf("one retention pass (keep %d days) pruned %d events in %s\n", o.days/2, pruned, time.Since(t0).Round(time.Millisecond))
	}
	if failed > 0 {
		return fmt.Errorf("%d endpoint and window pairs failed", failed)
	}
	return nil
}

// writeHeapProfile writes the allocations profile to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("memory profile: %w", err)
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		_ = f.Close()
		return fmt.Errorf("memory profile: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("memory profile: %w", err)
	}
	return nil
}

// fetch GETs u as the bench's admin and reads the whole answer: the time
// measured is a client's, to the last byte over a real connection. It
// returns the answer's size and its first bytes: a client in the bench's
// own process that kept megabytes of answers would load the collector of
// the service it measures.
func fetch(client *http.Client, u string) (code int, size int64, head []byte, err error) {
	r, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return 0, 0, nil, err
	}
	r.SetBasicAuth("admin@customer1", password)
	res, err := client.Do(r)
	if err != nil {
		return 0, 0, nil, err
	}
	defer res.Body.Close()
	head = make([]byte, 200)
	n, err := io.ReadFull(res.Body, head)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return res.StatusCode, int64(n), head[:n], nil
	}
	if err != nil {
		return 0, 0, nil, err
	}
	rest, err := io.Copy(io.Discard, res.Body)
	return res.StatusCode, int64(n) + rest, head, err
}

// setUp creates the account, its trial licence and one allocation, and
// loads the estate's events; it returns the load's clock.
func setUp(ctx context.Context, o options, authSvc *auth.Service, lic *licensing.Service, db *sql.DB) (time.Time, error) {
	if _, _, err := authSvc.Bootstrap(ctx, password); err != nil {
		return time.Time{}, err
	}
	if err := lic.InstallTrial(ctx, 1); err != nil {
		return time.Time{}, err
	}
	a, err := lic.CreateAllocation(ctx, 1, licensing.AllocationInput{Name: "estate", Tags: []string{"bench"},
		Limits: []licensing.Limit{{Package: "PREMIUM", Units: 100}}})
	if err != nil {
		return time.Time{}, err
	}
	now := time.Now().UTC().Truncate(time.Hour)
	start := now.Add(-time.Duration(o.days) * 24 * time.Hour)
	t0 := time.Now()
	n, err := load(ctx, db, o, a.ID, a.LicenseKey, start, now)
	if err != nil {
		return time.Time{}, err
	}
	fmt.Printf("loaded %d events (%d agents on %d hosts, %d days, %d-hour leases) and %d live leases in %s\n",
		n, o.agents, o.hosts, o.days, o.leaseHours, o.agents, time.Since(t0).Round(time.Second))
	return now, nil
}

func report(name string, took []time.Duration, target time.Duration, note string) {
	slices.Sort(took)
	p := func(q float64) time.Duration { return took[int(q*float64(len(took)-1))].Round(100 * time.Microsecond) }
	verdict := ""
	if target > 0 {
		verdict = fmt.Sprintf("  target p95 ≤ %s: ", target)
		if p(0.95) <= target {
			verdict += "OK"
		} else {
			verdict += "MISSED"
		}
	}
	fmt.Printf("%-26s n=%-3d p50 %-10s p95 %-10s%s %s\n", name, len(took), p(0.5), p(0.95), verdict, note)
}

// load writes each agent's leases back to back from start (offset per
// agent) as GRANTED and RELEASED events, the last lease of each agent as
// a live lease, and a refusal per host and day.
func load(ctx context.Context, db *sql.DB, o options, poolID, key string, start, now time.Time) (int64, error) {
	lease := int64(o.leaseHours) * 3600
	span := now.Unix() - start.Unix()
	leases := span/lease + 1
	q := `
WITH slots AS (
  SELECT i, k, $3::bigint + (i * 7919) % $4 + k * $4 AS s FROM generate_series(0, $1 - 1) i, generate_series(0, $2 - 1) k
), spans AS (SELECT i, s, s + $4 - 60 AS e FROM slots WHERE s < $5) -- a minute between two leases of an agent
INSERT INTO usage_events (at, account_id, kind, pool_kind, pool_id, package, units, agent_id, agent_type, agent_version, host_id, app_id, app_name, reason)
SELECT to_timestamp(t), 1, kind, 'ALLOCATION', $6, 'PREMIUM', CASE WHEN kind = 'GRANTED' THEN 1 ELSE -1 END, 'agent-' || i,
  (ARRAY['APP_AGENT','MACHINE_AGENT','PHP_APP_AGENT'])[1 + i % 3], '24.1', 'host-' || (i % $7), i % 500, 'app-' || (i % 500), ''
FROM (SELECT i, s AS t, 'GRANTED' AS kind FROM spans UNION ALL SELECT i, e, 'RELEASED' FROM spans WHERE e < $5) ev`
	res, err := db.ExecContext(ctx, q, o.agents, leases, start.Unix(), lease, now.Unix(), poolID, o.hosts)
	if err != nil {
		return 0, fmt.Errorf("load events: %w", err)
	}
	n, _ := res.RowsAffected()
	// The live lease of each agent: the one that started last.
	_, err = db.ExecContext(ctx, `INSERT INTO leases (id, account_id, agent_id, agent_type, agent_version, pool_kind, pool_id,
		license_key, package, units_charged, host_id, app_id, app_name, granted_at, heartbeat_at, expires_at)
		SELECT gen_random_uuid()::text, 1, 'agent-' || i, (ARRAY['APP_AGENT','MACHINE_AGENT','PHP_APP_AGENT'])[1 + i % 3], '24.1',
		  'ALLOCATION', $1, $2, 'PREMIUM', 1, 'host-' || (i % $3), i % 500, 'app-' || (i % 500),
		  to_timestamp($4::bigint + (i * 7919) % $5 + (($6::bigint - ($4::bigint + (i * 7919) % $5)) / $5) * $5), to_timestamp($6), to_timestamp($6 + 86400)
		FROM generate_series(0, $7 - 1) i`, poolID, key, o.hosts, start.Unix(), lease, now.Unix(), o.agents)
	if err != nil {
		return n, fmt.Errorf("load live leases: %w", err)
	}
	r2, err := db.ExecContext(ctx, `INSERT INTO usage_events (at, account_id, kind, pool_kind, pool_id, package, units, agent_id,
		agent_type, agent_version, host_id, app_id, app_name, reason)
		SELECT to_timestamp($1::bigint + d * 86400 + h % 86400), 1, 'REFUSED', 'ALLOCATION', $2, 'PREMIUM', 0, 'refused-' || h,
		  'APP_AGENT', '24.1', 'host-' || h, h % 500, 'app-' || (h % 500), 'NO_MORE_UNITS'
		FROM generate_series(0, $3 - 1) d, generate_series(0, $4 - 1) h`, start.Unix(), poolID, o.days, o.hosts/10)
	if err != nil {
		return n, fmt.Errorf("load refusals: %w", err)
	}
	m, _ := r2.RowsAffected()
	if _, err := db.ExecContext(ctx, "ANALYZE usage_events; ANALYZE leases"); err != nil {
		return n + m, fmt.Errorf("analyze: %w", err)
	}
	return n + m, nil
}
