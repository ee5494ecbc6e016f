package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lcorp/licensing-controller/internal/httpapi"
	"github.com/lcorp/licensing-controller/internal/pgtest"
	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
)

func TestSwaggerDocumentsEveryRoute(t *testing.T) {
	f := newFixture(t, storetest.Engines()[0].Open(t))
	if r := f.do(t, req{method: "GET", path: "/swagger/index.html"}); r.status != http.StatusOK {
		t.Fatalf("swagger UI: %d", r.status)
	}
	r := f.do(t, req{method: "GET", path: "/swagger/doc.json"})
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatalf("doc.json: %v", err)
	}
	param := regexp.MustCompile(`:(\w+)`)
	for _, rt := range f.h.(*httpapi.Router).Routes() {
		if strings.HasPrefix(rt.Path, "/swagger/") || strings.HasPrefix(rt.Path, "/ui") || rt.Path == "/" { // pages, not API
			continue
		}
		p := param.ReplaceAllString(rt.Path, "{$1}")
		if _, ok := doc.Paths[p][strings.ToLower(rt.Method)]; !ok {
			t.Errorf("%s %s is not documented in swagger", rt.Method, p)
		}
	}
}

func TestHealthAndMetrics(t *testing.T) {
	f := newFixture(t, storetest.Engines()[0].Open(t))
	for _, p := range []string{"/healthz", "/readyz"} {
		if r := f.do(t, req{method: "GET", path: p}); r.status != http.StatusOK {
			t.Errorf("%s: %d %s", p, r.status, r.body)
		}
	}
	f.do(t, admin("GET", "/controller/api/accounts/myaccount", nil))
	r := f.do(t, req{method: "GET", path: "/metrics"})
	want := `lc_http_requests_total{method="GET",route="/controller/api/accounts/myaccount",status="200"} 1`
	if r.status != http.StatusOK || !strings.Contains(string(r.body), want) {
		t.Errorf("metrics lack %q:\n%.2000s", want, r.body)
	}
	if !strings.Contains(string(r.body), "lc_http_request_duration_seconds_bucket") {
		t.Error("metrics lack the duration histogram")
	}
}

// TestPoolGaugesCarryNames: dashboards read pool names, not ids.
func TestPoolGaugesCarryNames(t *testing.T) {
	f := newFixture(t, storetest.Engines()[0].Open(t))
	wantGranted(t, register(t, f, agent{AgentID: "a", AgentType: "APP_AGENT", Host: onHost("h", 2)}, ""), 201)
	body := string(f.do(t, req{method: "GET", path: "/metrics"}).body)
	for _, want := range []string{`lc_pool_used_units{account="1",package="PREMIUM",pool=`, `pool_kind="ALLOCATION",pool_name="Default"} 2`,
		`lc_pool_limit_units{account="1",package="PREMIUM",pool=`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, grepLines(body, "lc_pool_"))
		}
	}
}

// proxy is a TCP proxy that can cut every connection and refuse new ones,
// standing in for a database that goes away and comes back.
type proxy struct {
	target string
	addr   string
	mu     sync.Mutex
	l      net.Listener
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{target: target}
	p.listen(t, "127.0.0.1:0")
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) listen(t *testing.T, addr string) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.l, p.addr = l, l.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		p.l.Close()
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// The database goes away: /readyz and requests answer 503; it comes back:
// the service recovers without a restart.
func TestDatabaseOutageAndRecovery(t *testing.T) {
	raw := pgtest.URL(t)
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	px := newProxy(t, u.Host)
	u.Host = px.addr
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{URL: u.String()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, st)
	users := admin("GET", "/controller/api/accounts/1/users", nil)
	if r := f.do(t, users); r.status != http.StatusOK {
		t.Fatalf("before outage: %d %s", r.status, r.body)
	}

	px.cut()
	wantProblem(t, f.do(t, req{method: "GET", path: "/readyz"}), http.StatusServiceUnavailable, "UNAVAILABLE")
	r := wantProblem(t, f.do(t, users), http.StatusServiceUnavailable, "UNAVAILABLE")
	if strings.Contains(r["detail"].(string), "dial") || strings.Contains(r["detail"].(string), "127.0.0.1") {
		t.Errorf("503 leaks internals: %v", r["detail"])
	}

	px.listen(t, px.addr)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := f.do(t, users)
		if r.status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after the database came back: %d %s", r.status, r.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := f.do(t, req{method: "GET", path: "/readyz"}); r.status != http.StatusOK {
		t.Errorf("readyz after recovery: %d %s", r.status, r.body)
	}
}

// TestLicenseExpiryGauge: seconds until each account's effective licence
// expires, also for an account no agent has registered in yet.
func TestLicenseExpiryGauge(t *testing.T) {
	f := newFixture(t, storetest.Engines()[0].Open(t))
	body := string(f.do(t, req{method: "GET", path: "/metrics"}).body)
	line := grepLines(body, "lc_license_expiry_seconds{")
	var secs float64
	if _, err := fmt.Sscanf(strings.TrimPrefix(line, `lc_license_expiry_seconds{account="1"} `), "%g", &secs); err != nil {
		t.Fatalf("no expiry gauge for account 1: %q (%v)", line, err)
	}
	// The trial licence runs 30 days from its installation.
	if secs < 29*24*3600 || secs > 30*24*3600+60 {
		t.Errorf("expiry in %g s, want about 30 days", secs)
	}
}

// TestGrafanaDashboardMetrics: every metric the shipped Grafana dashboard
// queries is one the service exports.
func TestGrafanaDashboardMetrics(t *testing.T) {
	raw, err := os.ReadFile("../../deployments/grafana/licensing-controller.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, storetest.Engines()[0].Open(t))
	wantGranted(t, register(t, f, agent{AgentID: "a", AgentType: "APP_AGENT", Host: onHost("h", 2)}, ""), 201)
	f.do(t, admin("GET", lv1+"/info", nil))
	body := string(f.do(t, req{method: "GET", path: "/metrics"}).body)
	// Counters by label show up once counted: those the background jobs
	// declare count too.
	jobs, err := os.ReadFile("../jobs/failures.go")
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`\blc_[a-z_]+`)
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, m := range names.FindAllString(tg.Expr, -1) {
				m = strings.TrimSuffix(m, "_bucket")
				if !strings.Contains(body, "# TYPE "+m+" ") && !strings.Contains(string(jobs), `"`+m+`"`) {
					t.Errorf("panel %q queries %s, which /metrics lacks", p.Title, m)
				}
			}
		}
	}
}
