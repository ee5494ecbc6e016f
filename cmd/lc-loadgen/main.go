// Command lc-loadgen builds a realistic estate through the public API of a
// licensing-controller on PostgreSQL and measures the usage engine:
// registrations/s while building it, agents renewed/s by batch heartbeats,
// latency of grouped usage by 100 application ids and by 100 host ids, and
// the service's memory (RSS) with the full estate.
//
// By default it starts a throwaway PostgreSQL (as the tests do) and the
// built binary:
//
//	go run ./cmd/lc-loadgen --binary bin/licensing-controller
package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lcorp/licensing-controller/internal/licensing"
	"github.com/lcorp/licensing-controller/internal/pgtest"
	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/pkg/client"
)

type options struct {
	binary, dbURL, store         string
	agents, hosts, apps, allocs  int
	concurrency, queries, rounds int
	queriesOnly, webhooks        bool
	singleTime                   time.Duration
	ceiling                      bool
	fsync, sharedBuffers         string
}

// servicePID is the service's process, for its CPU time.
var servicePID int

// measured are the rates the ceiling's ratios are taken of.
var measured struct {
	registrations, heartbeats16 float64
}

func main() {
	var o options
	flag.StringVar(&o.binary, "binary", "bin/licensing-controller", "service binary")
	flag.StringVar(&o.dbURL, "database-url", "", "PostgreSQL URL of an empty database (default: a throwaway server)")
	flag.StringVar(&o.store, "store", "postgres", "postgres, or sqlite: the embedded store in a temporary directory")
	flag.IntVar(&o.agents, "agents", 100000, "agents")
	flag.IntVar(&o.hosts, "hosts", 10000, "hosts (2-64 vCPU)")
	flag.IntVar(&o.apps, "apps", 2000, "applications")
	flag.IntVar(&o.allocs, "allocations", 50, "allocations")
	flag.IntVar(&o.concurrency, "concurrency", 32, "parallel registrations")
	flag.IntVar(&o.queries, "queries", 200, "grouped-usage queries of each kind")
	flag.IntVar(&o.rounds, "heartbeat-rounds", 3, "rounds of batch heartbeats over every agent")
	flag.BoolVar(&o.ceiling, "ceiling", true, "measure the PostgreSQL ceiling (pgbench) before and after, and print the ratios")
	flag.StringVar(&o.fsync, "fsync", "on", "on (production settings) or off: the throwaway PostgreSQL's fsync, synchronous_commit and full_page_writes")
	flag.StringVar(&o.sharedBuffers, "shared-buffers", "1GB", "the throwaway PostgreSQL's shared_buffers: an estate's working set, as a production server is sized (PostgreSQL's own default, 128MB, holds a tenth of a 1 000 000-agent estate)")
	flag.DurationVar(&o.singleTime, "single-time", 3*time.Second, "how long single heartbeats and releases are timed at each of 1, 16 and 64 connections (0: not)")
	flag.BoolVar(&o.queriesOnly, "queries-only", false, "only measure grouped usage, on an estate an earlier run left in --database-url")
	flag.BoolVar(&o.webhooks, "webhooks", false, "register a threshold webhook (10, 20, … 100 %) to a local receiver first: the cost of watching usage")
	flag.Parse()
	if o.store != "postgres" && o.store != "sqlite" {
		fmt.Fprintln(os.Stderr, "lc-loadgen: --store is postgres or sqlite")
		os.Exit(2)
	}
	if o.queriesOnly && o.dbURL == "" {
		fmt.Fprintln(os.Stderr, "lc-loadgen: --queries-only needs --database-url")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "lc-loadgen:", err)
		os.Exit(1)
	}
}

const password = "loadgen-password"

// prober times raw GETs for the latency figures: it reads answers into
// io.Discard, so that decoding them does not add the client's own work to
// the measured tail. Everything else goes through pkg/client.
type prober struct {
	base string
	http *http.Client
	api  *client.Client
}

// get reads a 200 answer to its end without keeping it, as a client that
// decodes while it reads would, and returns its size; other answers are
// returned.
func (c *prober) get(path string) (int, int64, []byte, error) { return c.do("GET", path, nil) }

func (c *prober) post(path string, body []byte) (int, int64, []byte, error) {
	return c.do("POST", path, body)
}

// do sends a request as the admin: the status, the answer's size, and its
// body unless it is a 200 (read and dropped).
func (c *prober) do(method, path string, body []byte) (int, int64, []byte, error) {
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, 0, nil, err
	}
	req.SetBasicAuth("admin@customer1", password)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.http.Do(req)
	if err != nil {
		return 0, 0, nil, err
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusOK {
		n, err := io.Copy(io.Discard, res.Body)
		return res.StatusCode, n, nil, err
	}
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, int64(len(b)), b, err
}

func run(o options) error {
	ctx := context.Background()
	storeEnv := []string{"LC_DATABASE_URL=" + o.dbURL}
	switch {
	case o.store == "sqlite":
		dir, err := os.MkdirTemp("", "lc-loadgen-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		storeEnv = []string{"LC_DATABASE_URL=", "LC_DATA_DIR=" + dir}
	case o.dbURL == "":
		if o.fsync != "on" && o.fsync != "off" {
			return fmt.Errorf("--fsync %q: want on or off", o.fsync)
		}
		if err := os.Setenv("LC_PGTEST_FSYNC", o.fsync); err != nil {
			return err
		}
		if err := os.Setenv("LC_PGTEST_SHARED_BUFFERS", o.sharedBuffers); err != nil {
			return err
		}
		u, stop, err := pgtest.Server(ctx)
		if err != nil {
			return fmt.Errorf("start PostgreSQL: %w", err)
		}
		defer stop()
		o.dbURL = u
		storeEnv = []string{"LC_DATABASE_URL=" + o.dbURL}
	}
	var before ceiling
	if o.ceiling && o.store != "sqlite" {
		var err error
		if before, err = measureCeiling(ctx, o.dbURL); err != nil {
			return err
		}
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(o.binary)
	cmd.Env = append(append(os.Environ(), storeEnv...), "LC_HTTP_ADDR="+addr, "LC_BOOTSTRAP_ADMIN_PASSWORD="+password,
		"LC_LICENSE_PUBLIC_KEYS="+base64.StdEncoding.EncodeToString(pub), "LC_LOG_LEVEL=warn", "LC_LEASE_TTL=8760h", "LC_PPROF_ADDR="+os.Getenv("LC_PPROF_ADDR"))
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", o.binary, err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	servicePID = cmd.Process.Pid
	hc := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}}
	// No retries: refusals and failures are counted, not hidden.
	api, err := client.New(client.Options{BaseURL: "http://" + addr, AccountID: 1, User: "admin@customer1", Password: password,
		HTTPClient: hc, MaxRetries: -1, UserAgent: "lc-loadgen"})
	if err != nil {
		return err
	}
	c := &prober{base: "http://" + addr, http: hc, api: api}
	if err := waitReady(c); err != nil {
		return err
	}
	var ids []string
	if !o.queriesOnly {
		if ids, err = build(c, o, priv); err != nil {
			return err
		}
		rss, err := rssOf(cmd.Process.Pid)
		if err != nil {
			return err
		}
		fmt.Printf("service memory after the estate's registrations and heartbeats: RSS %s\n", rss)
		if o.store != "sqlite" {
			if err := databaseSize(ctx, o.dbURL, o.agents); err != nil {
				return err
			}
		}
	}
	rng := mrand.New(mrand.NewPCG(1, 2))
	appSets := make([][]int64, o.queries)
	for i := range appSets {
		for range 100 {
			appSets[i] = append(appSets[i], int64(rng.IntN(o.apps)))
		}
	}
	next := 0
	service, err := latency(c, o.queries, "grouped usage by 100 application ids, includeAgents=true", func() string {
		var q []string
		for _, id := range appSets[next] {
			q = append(q, fmt.Sprintf("appId=%d", id))
		}
		next++
		return "/controller/licensing/v1/account/1/grouped-usage/application/by-id?includeAgents=true&" + strings.Join(q, "&")
	})
	if err != nil {
		return err
	}
	if o.store != "sqlite" {
		alone, err := groupedSQLAlone(ctx, o.dbURL, appSets)
		if err != nil {
			return err
		}
		fmt.Printf("  p95 of the service / p95 of its SQL alone: %.2f× (target ≤ 2×)\n", float64(service)/float64(alone))
	}
	if _, err := latency(c, o.queries, "grouped usage by 100 host ids, includeAgents=true", func() string {
		var q []string
		for range 100 {
			h := rng.IntN(o.hosts)
			q = append(q, "hostId="+hostName(h, o.allocs))
		}
		return "/controller/licensing/v1/account/1/grouped-usage/host?includeAgents=true&" + strings.Join(q, "&")
	}); err != nil {
		return err
	}
	if o.queriesOnly {
		return nil
	}
	if err := insight(c, o); err != nil {
		return err
	}
	// Last: releases take leases away.
	if err := singles(c, ids, o.singleTime); err != nil {
		return err
	}
	rss, err := rssOf(cmd.Process.Pid)
	if err != nil {
		return err
	}
	fmt.Printf("service memory with the full estate, after the queries: RSS %s\n", rss)
	if o.ceiling && o.store != "sqlite" {
		after, err := measureCeiling(ctx, o.dbURL)
		if err != nil {
			return err
		}
		reg, hb := (before.register+after.register)/2, (before.heartbeat+after.heartbeat)/2
		fmt.Printf("ratios to the ceiling (mean of before and after): registrations %.2f× (%.0f/s of %.0f TPS)", measured.registrations/reg,
			measured.registrations, reg)
		if measured.heartbeats16 > 0 {
			fmt.Printf(", single heartbeats at 16 connections %.2f× (%.0f/s of %.0f TPS)", measured.heartbeats16/hb, measured.heartbeats16, hb)
		}
		fmt.Println()
	}
	return nil
}

// build sets up the account, builds the estate and renews it.
func build(c *prober, o options, priv ed25519.PrivateKey) ([]string, error) {
	keys, err := setUp(c, o, priv)
	if err != nil {
		return nil, err
	}
	fmt.Printf("estate: %d agents on %d hosts (2-64 vCPU), %d applications, %d allocations; %d parallel clients; %s\n",
		o.agents, o.hosts, o.apps, o.allocs, o.concurrency, o.store)
	var events func() int64
	if o.webhooks {
		if events, err = thresholdWebhook(c); err != nil {
			return nil, err
		}
	}
	ids, err := buildEstate(c, o, keys)
	if err != nil {
		return nil, err
	}
	if err := lone(c, o, keys); err != nil {
		return nil, err
	}
	if events != nil {
		time.Sleep(3 * time.Second) // the leader delivers within a second or two
		fmt.Printf("webhooks: %d allocation.threshold events received\n", events())
	}
	return ids, heartbeats(c, ids, o.rounds)
}

// singles times single heartbeats (on random registrations) and releases
// (each of a registration not released yet, from the end of ids) for
// --single-time at each of 1, 16 and 64 connections.
func singles(c *prober, ids []string, d time.Duration) error {
	if d <= 0 || len(ids) == 0 {
		return nil
	}
	released := len(ids)
	for _, what := range []string{"heartbeat", "release"} {
		for _, conns := range []int{1, 16, 64} {
			// Each release round has a third of the registrations at most,
			// so that a small estate leaves some to the next round.
			floor := released - len(ids)/3
			var (
				done    atomic.Int64
				errOnce sync.Once
				firstEr error
				mu      sync.Mutex
				wg      sync.WaitGroup
			)
			next := func() (string, bool) {
				mu.Lock()
				defer mu.Unlock()
				if what == "heartbeat" {
					return ids[mrand.IntN(released)], true
				}
				if released <= max(floor, 0) {
					return "", false
				}
				released--
				return ids[released], true
			}
			stop := time.Now().Add(d)
			start := time.Now()
			for range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for time.Now().Before(stop) {
						id, ok := next()
						if !ok {
							return
						}
						path := "/controller/licensing/v1/account/1/registrations/" + id
						var status int
						var body []byte
						var err error
						if what == "heartbeat" {
							status, _, body, err = c.post(path+"/heartbeat", nil)
						} else {
							status, _, body, err = c.do("DELETE", path, nil)
						}
						if err == nil && status != http.StatusOK && status != http.StatusNoContent {
							err = fmt.Errorf("%d %s", status, body)
						}
						if err != nil {
							errOnce.Do(func() { firstEr = fmt.Errorf("single %s: %w", what, err) })
							return
						}
						done.Add(1)
					}
				}()
			}
			wg.Wait()
			if firstEr != nil {
				return firstEr
			}
			took := time.Since(start)
			if what == "heartbeat" && conns == 16 {
				measured.heartbeats16 = float64(done.Load()) / took.Seconds()
			}
			fmt.Printf("single %ss, %d connections: %d in %.1f s = %.0f/s\n", what, conns, done.Load(), took.Seconds(),
				float64(done.Load())/took.Seconds())
		}
	}
	return nil
}

func waitReady(c *prober) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := c.http.Get(c.base + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return errors.New("service not ready after 60 s")
}

func hostName(h, allocs int) string { return fmt.Sprintf("a%d-h%d", h%allocs, h) }

// setUp installs a licence large enough for the estate and the allocations;
// it returns the allocations' licence keys.
func setUp(c *prober, o options, priv ed25519.PrivateKey) ([]string, error) {
	perAlloc := int64(o.hosts/o.allocs+1) * 64
	payload := fmt.Sprintf(`{"licenseId":"LOADGEN","customerId":"C","customerName":"Load","accountName":"customer1",
	 "environment":"PROD","hardwareFingerprint":"ANY","type":"ONPREM-ACCOUNT","expirationDate":"2099-12-31T23:59:59Z",
	 "packages":[{"packageName":"PREMIUM","type":"PAID","kind":"INFRASTRUCTURE_BASED","family":"APM","licenseUnits":%d,"properties":{}},
	             {"packageName":"INFRA","type":"PAID","kind":"INFRASTRUCTURE_BASED","family":"APM","licenseUnits":%d,"properties":{}}],
	 "properties":{},"fallbackUnits":{}}`, perAlloc*int64(o.allocs), perAlloc*int64(o.allocs))
	doc, err := licensing.Sign([]byte(payload), priv)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	if _, err := c.api.AddLicense(ctx, string(doc)); err != nil {
		return nil, fmt.Errorf("upload licence: %w", err)
	}
	var keys []string
	for i := range o.allocs {
		a, err := c.api.CreateAllocation(ctx, client.AllocationInput{Name: fmt.Sprintf("alloc-%d", i),
			Filters: []client.Filter{{Type: client.FilterHost, Operator: client.OpStartsWith, Value: fmt.Sprintf("a%d-", i)}},
			Limits:  []client.Limit{{Package: client.PackagePremium, Units: perAlloc}, {Package: client.PackageInfra, Units: perAlloc / 2}}})
		if err != nil {
			return nil, fmt.Errorf("allocation %d: %w", i, err)
		}
		keys = append(keys, a.LicenseKey)
	}
	return keys, nil
}

var appTypes = []string{"APP_AGENT", "APP_AGENT", "APP_AGENT", "APP_AGENT", "APP_AGENT",
	"DOT_NET_APP_AGENT", "PHP_APP_AGENT", "NODEJS_APP_AGENT", "PYTHON_APP_AGENT"}

// registration is the n-th agent of the estate, under the agent id id.
// Agents come up across the estate at once, not host by host: the first
// agent of each host is its machine agent, the others are app agents.
func registration(o options, keys []string, id string, n int) client.Registration {
	h, k := n%o.hosts, n/o.hosts
	vcpu := int64(2 + (h*7919)%63)
	r := client.Registration{AgentID: id, AgentVersion: "24.7.0", LicenseKey: keys[h%o.allocs],
		Host: client.Host{ID: hostName(h, o.allocs), VCPU: &vcpu}}
	if k == 0 {
		r.AgentType = "MACHINE_AGENT"
		return r
	}
	app, name := int64((h*3+k)%o.apps), fmt.Sprintf("app-%d", (h*3+k)%o.apps)
	r.AgentType = appTypes[(k-1)%len(appTypes)]
	r.Application = &client.Application{ID: &app, Name: &name}
	r.Node, r.ContainerID = fmt.Sprintf("node-%d-%d", h, k), fmt.Sprintf("c%d-%d", h, k)
	return r
}

// lone times registrations one at a time (concurrency 1, nothing else
// queued): app agents of existing hosts, granted and then released.
func lone(c *prober, o options, keys []string) error {
	const n = 300
	took := make([]time.Duration, 0, n)
	for i := range n {
		r := registration(o, keys, fmt.Sprintf("lone-agent-%d", i), o.hosts+i)
		t0 := time.Now()
		d, err := c.api.Register(context.Background(), r)
		took = append(took, time.Since(t0))
		if err != nil {
			return fmt.Errorf("lone registration: %w", err)
		}
		if err := c.api.Release(context.Background(), d.RegistrationID); err != nil {
			return fmt.Errorf("release of a lone registration: %w", err)
		}
	}
	slices.Sort(took)
	fmt.Printf("lone registrations (concurrency 1, %d): p50 %s, p99 %s\n", n,
		took[n/2].Round(time.Millisecond/100), took[n*99/100].Round(time.Millisecond/100))
	return nil
}

func buildEstate(c *prober, o options, keys []string) ([]string, error) {
	perHost := max(o.agents/o.hosts, 1)
	work := make(chan int, 1024)
	var (
		mu      sync.Mutex
		ids     = make([]string, 0, o.agents)
		granted atomic.Int64
		others  = map[int]int{}
		firstEr error
		// took[n] is how long registration n (in the order sent) took.
		took = make([]time.Duration, perHost*o.hosts)
	)
	var wg sync.WaitGroup
	cpu0 := sampleCPU(servicePID)
	start := time.Now()
	for range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range work {
				r := registration(o, keys, fmt.Sprintf("agent-%d", n), n)
				t0 := time.Now()
				d, err := c.api.Register(context.Background(), r)
				var ce *client.Error
				mu.Lock()
				took[n] = time.Since(t0)
				switch {
				case errors.As(err, &ce):
					others[ce.Status]++
				case err != nil:
					if firstEr == nil {
						firstEr = err
					}
				case d.Existing:
					others[200]++
				default:
					ids = append(ids, d.RegistrationID)
					granted.Add(1)
				}
				mu.Unlock()
			}
		}()
	}
	for n := range perHost * o.hosts {
		work <- n
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)
	cpu1 := sampleCPU(servicePID)
	if firstEr != nil {
		return nil, firstEr
	}
	measured.registrations = float64(granted.Load()) / elapsed.Seconds()
	fmt.Printf("registrations: %d granted in %.1f s = %.0f granted registrations/s (other statuses: %v)\n",
		granted.Load(), elapsed.Seconds(), float64(granted.Load())/elapsed.Seconds(), others)
	fmt.Printf("  CPU per registration: %s\n", perOp(cpu0, cpu1, granted.Load()))
	// The first 1 000 are the first agents of new hosts on an empty store:
	// where a stall would show.
	for _, part := range []struct {
		name string
		d    []time.Duration
	}{{"the first 1000 (new hosts, empty store)", took[:min(1000, len(took))]}, {"all", took}} {
		d := slices.Clone(part.d)
		slices.Sort(d)
		if len(d) > 0 {
			fmt.Printf("  registration latency, %s: p50 %s, p99 %s, max %s\n", part.name,
				d[len(d)/2].Round(time.Millisecond/10), d[len(d)*99/100].Round(time.Millisecond/10), d[len(d)-1].Round(time.Millisecond/10))
		}
	}
	return ids, nil
}

func heartbeats(c *prober, ids []string, rounds int) error {
	const batch = 1000
	var batches [][]string
	for i := 0; i < len(ids); i += batch {
		batches = append(batches, ids[i:min(i+batch, len(ids))])
	}
	for r := range rounds {
		work := make(chan []string)
		var (
			wg      sync.WaitGroup
			renewed atomic.Int64
			errOnce sync.Once
			firstEr error
		)
		start := time.Now()
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b := range work {
					res, err := c.api.Heartbeats(context.Background(), b)
					if err != nil {
						errOnce.Do(func() { firstEr = fmt.Errorf("batch heartbeat: %w", err) })
						continue
					}
					renewed.Add(int64(res.Renewed))
				}
			}()
		}
		for _, b := range batches {
			work <- b
		}
		close(work)
		wg.Wait()
		if firstEr != nil {
			return firstEr
		}
		took := time.Since(start)
		fmt.Printf("batch heartbeats (round %d, batches of %d, 4 clients): %d renewed in %.2f s = %.0f agents renewed/s\n",
			r+1, batch, renewed.Load(), took.Seconds(), float64(renewed.Load())/took.Seconds())
	}
	return nil
}

// databaseSize prints the size of the estate's database, in all and per agent.
func databaseSize(ctx context.Context, url string, agents int) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connect for the database size: %w", err)
	}
	defer conn.Close(ctx)
	var size int64
	if err := conn.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&size); err != nil {
		return fmt.Errorf("database size: %w", err)
	}
	fmt.Printf("database: %.0f MB, %.0f bytes per agent (target ≤ 1 300)\n", float64(size)/1e6, float64(size)/float64(agents))
	return nil
}

// groupedSQLAlone times the grouped-usage query of each set of
// application ids on PostgreSQL alone: the same SQL and arguments as the
// service's, every row read off the wire, none decoded, on a connection
// configured as the service's (its statements planned per execution).
func groupedSQLAlone(ctx context.Context, url string, sets [][]int64) (time.Duration, error) {
	cfg, err := store.PgxConfig(url)
	if err != nil {
		return 0, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return 0, fmt.Errorf("connect for the grouped-usage SQL: %w", err)
	}
	defer conn.Close(ctx)
	q := store.GroupedUsageSQL("app_id", "bigint")
	next := 0
	return timed(len(sets), "  the same SQL on PostgreSQL alone (one connection, rows read, not decoded)", 1, func() (int, int64, []byte, error) {
		now := time.Now().UTC()
		keys := slices.Compact(slices.Sorted(slices.Values(sets[next]))) // as the service passes them
		rs, err := conn.Query(ctx, q, keys, now.Add(-store.HostCopyWindow), 1, now)
		next++
		if err != nil {
			return 0, 0, nil, err
		}
		var size int64
		for rs.Next() {
			for _, v := range rs.RawValues() {
				size += int64(len(v))
			}
		}
		rs.Close()
		return 200, size, nil, rs.Err()
	})
}

func latency(c *prober, n int, what string, path func() string) (time.Duration, error) {
	return timed(n, what, 1024, func() (int, int64, []byte, error) { return c.get(path()) })
}

// timed runs fetch n times in a row, prints its latency percentiles and returns the p95;
// answers under minSize bytes mean the estate is not what the figures
// are about.
func timed(n int, what string, minSize int64, fetch func() (int, int64, []byte, error)) (time.Duration, error) {
	var (
		ds    []time.Duration
		total int64
	)
	for range n {
		start := time.Now()
		st, size, b, err := fetch()
		if err != nil || st != 200 {
			return 0, fmt.Errorf("%s: %d %.200s %v", what, st, b, err)
		}
		ds = append(ds, time.Since(start))
		// An answer naming no usage is a few dozen bytes: the estate's
		// leases are gone, and the figures would mean nothing.
		if size < minSize {
			return 0, fmt.Errorf("%s: an answer of %d bytes: the estate holds no live leases for it", what, size)
		}
		total += size
	}
	slices.Sort(ds)
	pct := func(p float64) time.Duration { return ds[int(math.Ceil(p*float64(len(ds))))-1] }
	fmt.Printf("%s (%d queries, sequential, %.0f kB per answer): p50 %v, p95 %v, p99 %v\n", what, n, float64(total)/float64(n)/1000,
		pct(0.50).Round(100*time.Microsecond), pct(0.95).Round(100*time.Microsecond), pct(0.99).Round(100*time.Microsecond))
	return pct(0.95), nil
}

// post is get for a JSON POST.
// insight times lint, the account's forecast, an allocation's forecast
// and a what-if that takes a quarter of the allocations' filters away
// (a quarter of the leases no longer match).
func insight(c *prober, o options) error {
	ctx := context.Background()
	allocs, err := c.api.ListAllocations(ctx, client.AllocationQuery{})
	if err != nil {
		return err
	}
	var changes []map[string]any
	var one string
	for _, a := range allocs {
		if a.Name == "Default" {
			continue
		}
		one = a.ID
		if len(changes) < o.allocs/4 {
			in := a.Input()
			in.Filters = []client.Filter{{Type: client.FilterHost, Operator: client.OpStartsWith, Value: "nobody-"}}
			b, _ := json.Marshal(in)
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			m["id"] = a.ID
			changes = append(changes, map[string]any{"update": m})
		}
	}
	body, err := json.Marshal(map[string]any{"changes": changes})
	if err != nil {
		return err
	}
	base := "/controller/licensing/v1/account/1/allocation"
	for _, p := range []struct {
		what  string
		fetch func() (int, int64, []byte, error)
	}{
		{"allocation lint", func() (int, int64, []byte, error) { return c.get(base + "/lint") }},
		{"account forecast", func() (int, int64, []byte, error) { return c.get(base + "/forecast") }},
		{"allocation forecast", func() (int, int64, []byte, error) { return c.get(base + "/" + one + "/forecast") }},
		{fmt.Sprintf("what-if taking the filters of %d of %d allocations away", len(changes), o.allocs),
			func() (int, int64, []byte, error) { return c.post(base+"/what-if", body) }},
	} {
		if _, err := timed(min(o.queries, 50), p.what, 2, p.fetch); err != nil {
			return err
		}
	}
	return nil
}

func rssOf(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", fmt.Errorf("read RSS: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", errors.New("no VmRSS")
}

// thresholdWebhook registers a webhook with ten thresholds to a local
// receiver and returns how many threshold events it got so far.
func thresholdWebhook(c *prober) (func() int64, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	var n atomic.Int64
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-LC-Event") == "allocation.threshold" {
			n.Add(1)
		}
	})}
	go func() { _ = srv.Serve(l) }()
	_, err = c.api.CreateWebhook(context.Background(), client.WebhookInput{URL: "http://" + l.Addr().String() + "/hook",
		Events: []string{"allocation.threshold"}, Thresholds: []int{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}})
	if err != nil {
		return nil, fmt.Errorf("create webhook: %w", err)
	}
	return n.Load, nil
}
