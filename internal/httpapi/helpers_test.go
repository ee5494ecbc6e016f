package httpapi_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/lcorp/licensing-controller/internal/audit"
	"github.com/lcorp/licensing-controller/internal/auth"
	"github.com/lcorp/licensing-controller/internal/engine"
	"github.com/lcorp/licensing-controller/internal/httpapi"
	"github.com/lcorp/licensing-controller/internal/licensing"
	"github.com/lcorp/licensing-controller/internal/pgtest"
	"github.com/lcorp/licensing-controller/internal/report"
	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/usage"
	"github.com/lcorp/licensing-controller/internal/webhook"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const adminPassword = "admin-password"

type fixture struct {
	h     http.Handler
	auth  *auth.Service
	lic   *licensing.Service
	eng   *engine.Engine
	st    *store.Store
	clock *clock
	// sampler records usage series every 5 minutes of the clock when a
	// test calls Sample; series reads them.
	sampler *engine.Sampler
	series  *usage.Series
	// analytics is the service's; tests roll its days up with RollUp.
	analytics *usage.Analytics
	// dispatcher and deliverer are the webhook jobs, run by tests.
	dispatcher *webhook.Dispatcher
	deliverer  *webhook.Deliverer
}

// clock is the engine's injectable clock: tests move it instead of sleeping.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newFixture builds the service on st; opts adjust the engine's options.
func newFixture(t testing.TB, st *store.Store, opts ...func(*engine.Options)) *fixture {
	t.Helper()
	return newFixtureDeps(t, st, nil, opts...)
}

// newFixtureDeps is newFixture; deps, when not nil, adjusts the router's
// dependencies.
func newFixtureDeps(t testing.TB, st *store.Store, deps func(*httpapi.Deps), opts ...func(*engine.Options)) *fixture {
	t.Helper()
	ctx := context.Background()
	svc, err := auth.NewService(ctx, st.Auth(), auth.Options{BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	lic := licensing.NewService(st.Licensing(), verifier(t), nil)
	if st.Writable(ctx) == nil { // a read-only store was bootstrapped by its writer
		if _, _, err := svc.Bootstrap(ctx, adminPassword); err != nil {
			t.Fatal(err)
		}
		if err := lic.InstallTrial(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	var logOut io.Writer = io.Discard
	if os.Getenv("LC_TEST_LOG") != "" { // LC_TEST_LOG=1 shows the service's log
		logOut = os.Stderr
	}
	clk := &clock{now: time.Now().UTC()}
	reg := prometheus.NewRegistry()
	eopt := engine.Options{LeaseTTL: 5 * time.Minute, FallbackDelay: 10 * time.Minute, Now: clk.Now, Registry: reg}
	for _, o := range opts {
		o(&eopt)
	}
	eng := engine.New(st.Engine(), lic, eopt)
	sampler := engine.NewSampler(st.Series(), lic, engine.SamplerOptions{Interval: 5 * time.Minute, Now: clk.Now})
	series := usage.NewSeries(st.Series(), lic, sampler.Interval())
	analytics := usage.NewAnalytics(st.Analytics(), lic, clk.Now)
	d := httpapi.Deps{
		Auth: svc, Licensing: lic, Engine: eng, Usage: usage.NewService(st.Engine(), clk.Now), Series: series,
		Analytics: analytics, Lint: usage.NewLinter(st.Lint(), lic, clk.Now), WhatIf: usage.NewWhatIf(st.WhatIf(), lic, clk.Now),
		Report: report.New(st.Report(), lic, report.Options{Version: "test", DBVersion: string(st.Dialect()), Deployment: string(st.Dialect()), Now: clk.Now}),
		Ready:  st.Ready, Registry: reg, Now: clk.Now, Logger: slog.New(slog.NewTextHandler(logOut, nil)), Version: "test",
		Webhooks: webhook.NewService(st.Webhooks(), clk.Now), Audit: audit.NewService(st.Audit(), clk.Now),
	}
	reg.MustRegister(usage.NewForecastCollector(series, lic, clk.Now, nil))
	if deps != nil {
		deps(&d)
	}
	h := httpapi.New(d)
	return &fixture{h: h, auth: svc, lic: lic, eng: eng, st: st, clock: clk, sampler: sampler, series: series, analytics: analytics,
		dispatcher: webhook.NewDispatcher(st.Webhooks(), lic, clk.Now, nil),
		deliverer:  webhook.NewDeliverer(st.Webhooks(), webhook.DelivererOptions{Now: clk.Now, RetryBase: time.Millisecond})}
}

// req is one HTTP exchange.
type req struct {
	method, path string
	body         any // string, []byte or a value encoded as JSON
	user, pass   string
	token        string
	header       map[string]string
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

func (f *fixture) do(t testing.TB, r req) resp {
	t.Helper()
	var body io.Reader
	ct := ""
	switch b := r.body.(type) {
	case nil:
	case string:
		body, ct = strings.NewReader(b), "application/json"
	case []byte:
		body, ct = bytes.NewReader(b), "application/json"
	case url.Values:
		body, ct = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		body, ct = bytes.NewReader(j), "application/json"
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	if ct != "" {
		hr.Header.Set("Content-Type", ct)
	}
	if r.user != "" {
		hr.SetBasicAuth(r.user, r.pass)
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, hr)
	return resp{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
}

// admin is req with the bootstrap admin's credentials.
func admin(method, path string, body any) req {
	return req{method: method, path: path, body: body, user: "admin@customer1", pass: adminPassword}
}

// wantProblem checks an RFC 9457 response with the given status and code.
func wantProblem(t *testing.T, r resp, status int, code string) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d: %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	m := r.json(t)
	if m["code"] != code || int(m["status"].(float64)) != status || m["title"] == "" {
		t.Errorf("problem = %v, want code %s", m, code)
	}
	if r.header.Get("X-Request-Id") == "" || m["requestId"] != r.header.Get("X-Request-Id") {
		t.Errorf("request id header %q, body %v", r.header.Get("X-Request-Id"), m["requestId"])
	}
	return m
}

func fieldsOf(m map[string]any) []string {
	var out []string
	errs, _ := m["errors"].([]any)
	for _, e := range errs {
		out = append(out, e.(map[string]any)["field"].(string))
	}
	return out
}

// signingKey is the vendor key of the tests; verifier trusts it.
var signingKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))

func verifier(t testing.TB) *licensing.Verifier {
	t.Helper()
	v, err := licensing.NewVerifier([]string{base64.StdEncoding.EncodeToString(signingKey.Public().(ed25519.PublicKey))})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// otherAccount creates account acme with an account-owner bob
// (bob-password) and returns its id.
func otherAccount(t *testing.T, f *fixture) int64 {
	t.Helper()
	ctx := context.Background()
	acme, err := f.auth.CreateAccount(ctx, "acme", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.auth.CreateUser(ctx, acme.ID, "bob", auth.RoleAccountOwner, "bob-password"); err != nil {
		t.Fatal(err)
	}
	return acme.ID
}
