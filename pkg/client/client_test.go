package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lcorp/licensing-controller/internal/apitest"
	"github.com/lcorp/licensing-controller/internal/pgtest"
	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
	"github.com/lcorp/licensing-controller/pkg/client"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func start(t *testing.T, st *store.Store) *apitest.Server {
	t.Helper()
	srv, err := apitest.Start(context.Background(), st, apitest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

func admin(t *testing.T, base string) *client.Client {
	t.Helper()
	c, err := client.New(client.Options{BaseURL: base, AccountID: 1, User: "admin@customer1", Password: apitest.AdminPassword})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func vcpu(n int64) *int64 { return &n }

// TestClientEndToEnd: an allocation, registrations until the pool is full
// (a typed NO_MORE_UNITS with the decision), grouped usage, heartbeats,
// leases, series, rules and the typed errors, on both stores.
func TestClientEndToEnd(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		srv := start(t, st)
		c := admin(t, srv.URL)

		info, err := c.Info(ctx)
		if err != nil || info.Status != "LIMITED" || len(info.Packages) == 0 {
			t.Fatalf("info: %+v %v", info, err)
		}
		app := int64(18156)
		name := "Sangrah-OrderFulfillment"
		a, err := c.CreateAllocation(ctx, client.AllocationInput{Name: "order-fulfillment",
			Filters: []client.Filter{{Type: client.FilterApplication, Operator: client.OpIDEquals, Value: "18156"}},
			Limits:  []client.Limit{{Package: client.PackagePremium, Units: 20}}, Tags: []string{"team-a"}})
		if err != nil {
			t.Fatal(err)
		}
		if a.LicenseKey == "" || len(a.Limits) != 1 || a.Limits[0].Units != 20 {
			t.Fatalf("allocation: %+v", a)
		}
		reg := func(agent, host string) client.Registration {
			return client.Registration{AgentID: agent, AgentType: "APP_AGENT", AgentVersion: "24.7.0", LicenseKey: a.LicenseKey,
				Host: client.Host{ID: host, VCPU: vcpu(16)}, Application: &client.Application{ID: &app, Name: &name}, Node: agent}
		}
		d, err := c.Register(ctx, reg("n1", "h1"))
		if err != nil || d.Status != "LICENSED" || d.UnitsCharged != 16 || d.Existing {
			t.Fatalf("register: %+v %v", d, err)
		}
		again, err := c.Register(ctx, reg("n1", "h1"))
		if err != nil || !again.Existing || again.RegistrationID != d.RegistrationID {
			t.Fatalf("re-register: %+v %v", again, err)
		}
		_, err = c.Register(ctx, reg("n2", "h2"))
		if !client.IsNoMoreUnits(err) || !errors.Is(err, client.ErrConflict) || !client.IsRefused(err) {
			t.Fatalf("a full pool: %v", err)
		}
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != 409 || ce.Decision == nil || ce.Decision.Explanation.Limit != 20 || ce.RequestID == "" {
			t.Fatalf("refusal: %+v", ce)
		}

		g, err := c.UsageByApplicationIDs(ctx, []int64{app}, true)
		if err != nil || g.VCPUTotal != 16 || g.Items["18156"] == nil || len(g.Items["18156"].Agents) != 1 {
			t.Fatalf("grouped usage: %+v %v", g, err)
		}
		hb, err := c.Heartbeat(ctx, d.RegistrationID, vcpu(8))
		if err != nil || hb.HostUnits != 8 {
			t.Fatalf("heartbeat: %+v %v", hb, err)
		}
		batch, err := c.Heartbeats(ctx, []string{d.RegistrationID, "nope"})
		if err != nil || batch.Renewed != 1 || len(batch.Unknown) != 1 {
			t.Fatalf("batch: %+v %v", batch, err)
		}
		page, err := c.ListLeases(ctx, client.LeaseQuery{AppID: &app})
		if err != nil || len(page.Data) != 1 || page.Data[0].Host.ID != "h1" {
			t.Fatalf("leases: %+v %v", page, err)
		}
		if apps, err := c.Applications(ctx); err != nil || len(apps) != 1 || apps[0].Name != name {
			t.Fatalf("applications: %+v %v", apps, err)
		}
		if _, err := c.UsageSeries(ctx, client.SeriesQuery{LicenseKey: a.LicenseKey, IncludeEntityTypes: true}); err != nil {
			t.Fatalf("series: %v", err)
		}
		if err := c.Release(ctx, d.RegistrationID); err != nil {
			t.Fatal(err)
		}
		if err := c.Release(ctx, d.RegistrationID); !client.IsNotFound(err) {
			t.Fatalf("release twice: %v", err)
		}

		// Typed errors: validation names the field; another account's or an
		// unknown id is a 404.
		_, err = c.CreateAllocation(ctx, client.AllocationInput{Name: "bad", Limits: []client.Limit{{Package: "GOLD", Units: 1}}})
		if !client.IsValidation(err) || !errors.As(err, &ce) || len(ce.Fields) == 0 || !strings.Contains(ce.Fields[0].Field, "package") {
			t.Fatalf("validation: %v", err)
		}
		if _, err := c.GetAllocation(ctx, "00000000-0000-0000-0000-000000000000"); !client.IsNotFound(err) || client.Code(err) != "ALLOCATION_NOT_FOUND" {
			t.Fatalf("unknown allocation: %v", err)
		}
		up := a.Input()
		up.Limits[0].Units = 30
		if a2, err := c.UpdateAllocation(ctx, a.ID, up); err != nil || a2.Limits[0].Units != 30 {
			t.Fatalf("update: %+v %v", a2, err)
		}

		// Licence rules: create, read by name, update with the version read,
		// a stale version is a VERSION_CONFLICT.
		r, err := c.CreateRule(ctx, client.Rule{Name: "java-team", Enabled: true,
			Entitlements: []client.Entitlement{{LicenseModuleType: "JAVA", NumberOfLicenses: 5}}})
		if err != nil || r.Version != 0 || r.AccessKey == "" {
			t.Fatalf("rule: %+v %v", r, err)
		}
		r.Entitlements[0].NumberOfLicenses = 6
		r2, err := c.UpdateRule(ctx, *r)
		if err != nil || r2.Version != 1 || r2.TotalLicenses != 6 {
			t.Fatalf("update rule: %+v %v", r2, err)
		}
		if _, err := c.UpdateRule(ctx, *r); !errors.Is(err, client.ErrVersionConflict) {
			t.Fatalf("stale version: %v", err)
		}
		if byName, err := c.GetRuleByName(ctx, "java-team"); err != nil || byName.ID != r.ID {
			t.Fatalf("by name: %+v %v", byName, err)
		}
		if h, err := c.RuleHistory(ctx, r.ID); err != nil || len(h) != 2 {
			t.Fatalf("history: %+v %v", h, err)
		}
		if err := c.DeleteAllocation(ctx, a.ID, false); err != nil {
			t.Fatal(err)
		}
	})
}

// TestClientOAuth: an API client's token is fetched once and reused, and
// renewed when the client's tokens stop working.
func TestClientOAuth(t *testing.T) {
	ctx := context.Background()
	srv := start(t, storetest.Open(t, store.Options{DataDir: t.TempDir()}))
	ac, err := admin(t, srv.URL).CreateAPIClient(ctx, client.APIClientInput{Name: "monitoring controller", Role: client.RoleAgentRegistrar})
	if err != nil || ac.Secret == "" || ac.ClientID != "monitoring controller@customer1" {
		t.Fatalf("api client: %+v %v", ac, err)
	}
	var tokens atomic.Int32
	counting := &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		if strings.HasSuffix(r.URL.Path, "/oauth/access_token") {
			tokens.Add(1)
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	c, err := client.New(client.Options{BaseURL: srv.URL, AccountID: 1, ClientID: ac.ClientID, ClientSecret: ac.Secret, HTTPClient: counting})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if _, err := c.Register(ctx, client.Registration{AgentID: "agent-" + string(rune('a'+i)), AgentType: "MACHINE_AGENT",
				Host: client.Host{ID: "h" + string(rune('a'+i)), VCPU: vcpu(2)}}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := tokens.Load(); n != 1 {
		t.Errorf("%d token requests for 20 calls, want 1 (cached)", n)
	}
	// A registrar may not read allocations: a typed 403.
	if _, err := c.ListAllocations(ctx, client.AllocationQuery{}); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("registrar reading allocations: %v", err)
	}
	// Bad credentials are an error naming invalid_client.
	bad, _ := client.New(client.Options{BaseURL: srv.URL, AccountID: 1, ClientID: ac.ClientID, ClientSecret: "wrong"})
	if _, err := bad.Info(ctx); !errors.Is(err, client.ErrUnauthorized) || client.Code(err) != "INVALID_CLIENT" {
		t.Errorf("wrong secret: %v", err)
	}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestClientRetries: a 503 with Retry-After is retried after that long for
// idempotent calls and registrations, never for a create; connection
// errors are retried; a cancelled context stops the retries.
func TestClientRetries(t *testing.T) {
	ctx := context.Background()
	srv := start(t, storetest.Open(t, store.Options{DataDir: t.TempDir()}))
	target, _ := url.Parse(srv.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var failNext atomic.Int32
	var seen atomic.Int32
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		if failNext.Add(-1) >= 0 {
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":503,"code":"UNAVAILABLE","detail":"the database is unavailable; retry later"}`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	c, err := client.New(client.Options{BaseURL: front.URL, AccountID: 1, User: "admin@customer1", Password: apitest.AdminPassword,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}

	failNext.Store(1)
	began := time.Now()
	if _, err := c.Register(ctx, client.Registration{AgentID: "m1", AgentType: "MACHINE_AGENT", Host: client.Host{ID: "h1", VCPU: vcpu(2)}}); err != nil {
		t.Fatalf("a registration after one 503: %v", err)
	}
	if took := time.Since(began); took < time.Second {
		t.Errorf("retried after %s, want the Retry-After of 1s", took)
	}

	failNext.Store(1)
	seen.Store(0)
	_, err = c.CreateAllocation(ctx, client.AllocationInput{Name: "x", Limits: []client.Limit{{Package: "PREMIUM", Units: 1}}})
	if !errors.Is(err, client.ErrUnavailable) || seen.Load() != 1 {
		t.Errorf("create after a 503: %v after %d tries, want the 503 and no retry", err, seen.Load())
	}
	var ce *client.Error
	if !errors.As(err, &ce) || ce.RetryAfter != time.Second {
		t.Errorf("RetryAfter: %+v", ce)
	}

	// Always failing: MaxRetries+1 tries, then the last problem.
	failNext.Store(100)
	seen.Store(0)
	c2, _ := client.New(client.Options{BaseURL: front.URL, AccountID: 1, User: "admin@customer1", Password: apitest.AdminPassword,
		MaxRetries: 2, MaxRetryAfter: 10 * time.Millisecond})
	if _, err := c2.Info(ctx); !errors.Is(err, client.ErrUnavailable) || seen.Load() != 3 {
		t.Errorf("always 503: %v after %d tries, want 3", err, seen.Load())
	}
	failNext.Store(0)

	// A refused connection is retried until the context ends.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	_ = l.Close()
	c3, _ := client.New(client.Options{BaseURL: dead, AccountID: 1, User: "admin", Password: "x", MaxRetries: 1000,
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	began = time.Now()
	if _, err := c3.Info(cctx); err == nil || time.Since(began) < 250*time.Millisecond || time.Since(began) > 5*time.Second {
		t.Errorf("dead service: %v after %s", err, time.Since(began))
	}
}

// TestClientDoesNotRepeat: a wrong client secret is asked for once, not
// once per retry (each failure counts against the login throttle).
func TestClientDoesNotRepeat(t *testing.T) {
	var tokens atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokens.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
	}))
	defer srv.Close()
	c, err := client.New(client.Options{BaseURL: srv.URL, AccountID: 1, ClientID: "x@customer1", ClientSecret: "wrong",
		MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Info(context.Background())
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 401 || tokens.Load() != 1 {
		t.Errorf("wrong secret: %v after %d token requests, want a 401 after 1", err, tokens.Load())
	}
}

// TestClientWebhooksAndAudit: endpoints, a ping's delivery and the audit
// trail through the typed client.
func TestClientWebhooksAndAudit(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		srv := start(t, st)
		c := admin(t, srv.URL)
		w, err := c.CreateWebhook(ctx, client.WebhookInput{URL: "https://hooks.example.com/lc", Events: []string{"allocation.threshold"}})
		if err != nil || len(w.Secret) < 16 || fmt.Sprint(w.Thresholds) != "[80 90 100]" {
			t.Fatalf("create: %+v %v", w, err)
		}
		off := false
		if w, err = c.UpdateWebhook(ctx, w.ID, client.WebhookInput{URL: w.URL, Enabled: &off}); err != nil || w.Enabled || w.Secret != "" {
			t.Fatalf("update: %+v %v", w, err)
		}
		if ws, err := c.Webhooks(ctx); err != nil || len(ws) != 1 || ws[0].Secret != "" {
			t.Fatalf("list: %+v %v", ws, err)
		}
		d, err := c.PingWebhook(ctx, w.ID)
		if err != nil || d.Status != "pending" || d.EventType != "ping" {
			t.Fatalf("ping: %+v %v", d, err)
		}
		page, err := c.WebhookDeliveries(ctx, w.ID, 10, 0)
		if err != nil || len(page.Data) != 1 || page.Data[0].ID != d.ID {
			t.Fatalf("deliveries: %+v %v", page, err)
		}
		if _, err := c.Redeliver(ctx, d.ID); err != nil {
			t.Fatalf("redeliver: %v", err)
		}
		audit, err := c.Audit(ctx, client.AuditQuery{ResourceType: "webhook", ResourceID: w.ID})
		if err != nil || len(audit.Data) != 2 || audit.Data[0].Action != "update" || audit.Data[0].Actor.Name != "admin" {
			t.Fatalf("audit: %+v %v", audit, err)
		}
		if err := c.DeleteWebhook(ctx, w.ID); err != nil {
			t.Fatal(err)
		}
		var ce *client.Error
		if err := c.DeleteWebhook(ctx, w.ID); !errors.As(err, &ce) || ce.Status != 404 || ce.Code != "WEBHOOK_NOT_FOUND" {
			t.Fatalf("second delete: %v", err)
		}
	})
}
