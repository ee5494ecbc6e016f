package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lcorp/licensing-controller/internal/engine"
	"github.com/lcorp/licensing-controller/internal/fault"
	"github.com/lcorp/licensing-controller/internal/pgtest"
	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
)

const registrations = lv1 + "/registrations"

// agent is a registration body.
type agent struct {
	AgentID      string         `json:"agentId"`
	AgentType    string         `json:"agentType"`
	AgentVersion *string        `json:"agentVersion,omitempty"`
	LicenseKey   string         `json:"licenseKey,omitempty"`
	Host         map[string]any `json:"host"`
	Application  map[string]any `json:"application,omitempty"`
	Node         string         `json:"node,omitempty"`
	ContainerID  string         `json:"containerId,omitempty"`
}

func onHost(id string, vcpu any) map[string]any {
	return map[string]any{"id": id, "name": id, "vCpu": vcpu}
}

func app(id int, name string) map[string]any { return map[string]any{"id": id, "name": name} }

// register posts a registration with the agent-registrar credentials of the admin.
func register(t testing.TB, f *fixture, a agent, query string) resp {
	t.Helper()
	return f.do(t, admin("POST", registrations+query, a))
}

func wantGranted(t testing.TB, r resp, status int) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("registration: %d %s, want %d", r.status, r.body, status)
	}
	m := r.json(t)
	if m["status"] != "LICENSED" || m["explanation"] == nil {
		t.Fatalf("decision without status or explanation: %s", r.body)
	}
	return m
}

// refusal checks a refused registration and returns its decision.
func refusal(t *testing.T, r resp, status int, code string) map[string]any {
	t.Helper()
	m := wantProblem(t, r, status, code)
	d, ok := m["decision"].(map[string]any)
	if !ok || d["status"] != "REFUSED" || d["explanation"].(map[string]any)["reason"] != code {
		t.Fatalf("refusal %s without its decision: %v", code, m)
	}
	return d
}

// seedTopology registers the seed's example estate: apps 18156 and 18157
// on hosts ip-10-117-85-124 and sangrah_analytics (16 vCPU each), plus a
// SIM machine agent.
func seedTopology(t *testing.T, f *fixture) {
	t.Helper()
	big := "ip-10-117-85-124"
	of := app(18156, "Sangrah-OrderFulfillment")
	sa := app(18157, "SangrahApp")
	agents := []agent{
		{AgentID: "of-java", AgentType: "APP_AGENT", Host: onHost(big, 16), Application: of, Node: "OrderFulfillmentServiceNode", ContainerID: "orderfulfillmentservice"},
		{AgentID: "of-dotnet", AgentType: "DOT_NET_APP_AGENT", Host: onHost("sangrah_analytics", 16), Application: of, Node: "OrderFulfillmentServiceDotnetNode", ContainerID: "fe8ec1f60b5b"},
	}
	nodes := []struct{ node, container, typ string }{
		{"CartServiceNode", "cartservice", "APP_AGENT"},
		{"CustomPojoRulesServiceNode", "99d7338250be", "APP_AGENT"},
		{"OrderProcessingServiceNode", "orderprocessingservice", "APP_AGENT"},
		{"PaymentServiceNode", "70b30fc810bc", "PHP_APP_AGENT"},
		{"OrderServiceNode", "orderservice", "APP_AGENT"},
		{"ApacheWebServerNode", "apacheloadbalancer", "NATIVE_WEB_SERVER"},
		{"ShippingServiceNode", "shippingservice", "APP_AGENT"},
		{"FrontEndNode-0", "frontend", "APP_AGENT"},
	}
	for _, n := range nodes {
		agents = append(agents, agent{AgentID: "sa-" + n.node, AgentType: n.typ, Host: onHost(big, 16), Application: sa, Node: n.node, ContainerID: n.container})
	}
	v := "24.7.0.4339"
	agents = append(agents, agent{AgentID: "sim", AgentType: "SIM_MACHINE_AGENT", AgentVersion: &v, Host: onHost("sangrah_analytics", 16)})
	for _, a := range agents {
		wantGranted(t, register(t, f, a, ""), http.StatusCreated)
	}
}

func nodeNames(t *testing.T, item map[string]any) []string {
	t.Helper()
	var out []string
	for _, n := range item["nodes"].([]any) {
		out = append(out, n.(map[string]any)["nodeName"].(string))
	}
	return out
}

func TestGroupedUsageOfTheSeedTopology(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		seedTopology(t, f)
		byID := f.do(t, admin("GET", lv1+"/grouped-usage/application/by-id?appId=18151&appId=18156&appId=18157&includeAgents=true", nil))
		if byID.status != 200 {
			t.Fatalf("by id: %d %s", byID.status, byID.body)
		}
		g := byID.json(t)
		items := g["items"].(map[string]any)
		if g["vCpuTotal"] != float64(48) || len(items) != 2 || items["18151"] != nil {
			t.Fatalf("by id: vCpuTotal %v, items %v", g["vCpuTotal"], keys(items))
		}
		of := items["18156"].(map[string]any)
		hosts := of["hosts"].(map[string]any)
		if of["vCpu"] != float64(32) || of["appName"] != "Sangrah-OrderFulfillment" || of["appId"] != float64(18156) ||
			hosts["vCpuTotal"] != float64(32) || len(hosts["items"].(map[string]any)) != 2 {
			t.Errorf("18156: %v", of)
		}
		if diff := cmp.Diff([]string{"OrderFulfillmentServiceDotnetNode", "OrderFulfillmentServiceNode"}, nodeNames(t, of)); diff != "" {
			t.Errorf("18156 nodes (-want +got):\n%s", diff)
		}
		sa := items["18157"].(map[string]any)
		if sa["vCpu"] != float64(16) || len(sa["nodes"].([]any)) != 8 || len(sa["containers"].([]any)) != 8 ||
			len(sa["agents"].([]any)) != 3 {
			t.Errorf("18157: vCpu %v, %d nodes, %d containers, %d agent kinds", sa["vCpu"], len(sa["nodes"].([]any)),
				len(sa["containers"].([]any)), len(sa["agents"].([]any)))
		}
		h := sa["hosts"].(map[string]any)["items"].(map[string]any)["ip-10-117-85-124"].(map[string]any)
		if h["vCpu"] != float64(16) || h["host"] != "ip-10-117-85-124" || h["applications"] != nil {
			t.Errorf("18157's host: %v", h)
		}
		if _, ok := h["fallbackLicenseUnits"].(map[string]any); !ok {
			t.Errorf("host item without fallbackLicenseUnits: %v", h)
		}

		// Without includeAgents there are no agent lists; by name answers the same.
		noAgents := f.do(t, admin("GET", lv1+"/grouped-usage/application/by-id?appId=18156", nil)).json(t)
		if _, has := noAgents["items"].(map[string]any)["18156"].(map[string]any)["agents"]; has {
			t.Errorf("agents listed without includeAgents")
		}
		byName := f.do(t, admin("GET", lv1+"/grouped-usage/application/by-name?appName=SangrahApp&appName=Sangrah-OrderFulfillment&appName=Travel&includeAgents=true", nil))
		if diff := cmp.Diff(g, byName.json(t)); diff != "" {
			t.Errorf("by name differs from by id (-id +name):\n%s", diff)
		}

		byHost := f.do(t, admin("GET", lv1+"/grouped-usage/host?hostId=ip-10-117-85-124&hostId=sangrah_analytics&hostId=nope&hostId=%22a%2Cb%7D%5C&includeAgents=true", nil)).json(t)
		hs := byHost["items"].(map[string]any)
		if byHost["vCpuTotal"] != float64(32) || len(hs) != 2 {
			t.Fatalf("by host: %v", byHost)
		}
		an := hs["sangrah_analytics"].(map[string]any)
		apps := an["applications"].(map[string]any)
		nested := apps["items"].(map[string]any)["18156"].(map[string]any)
		if an["vCpu"] != float64(16) || apps["vCpuTotal"] != float64(0) || nested["vCpu"] != float64(0) || nested["hosts"] != nil {
			t.Errorf("sangrah_analytics: %v", an)
		}
		var types []string
		for _, a := range an["agents"].([]any) {
			types = append(types, a.(map[string]any)["type"].(string))
		}
		if diff := cmp.Diff([]string{"DOT_NET_APP_AGENT", "SIM_MACHINE_AGENT"}, types); diff != "" {
			t.Errorf("agents of sangrah_analytics (-want +got):\n%s", diff)
		}
		if big := hs["ip-10-117-85-124"].(map[string]any); len(big["applications"].(map[string]any)["items"].(map[string]any)) != 2 ||
			len(big["nodes"].([]any)) != 9 {
			t.Errorf("ip-10-117-85-124: %v", big)
		}

		for _, q := range []string{"/application/by-id", "/application/by-id?appId=abc", "/application/by-id?appId=1&appId=x",
			"/application/by-name", "/application/by-name?appName=", "/host", "/host?hostId=", "/host?hostId=a&hostId=",
			"/host?hostId=a&includeAgents=maybe"} {
			wantProblem(t, f.do(t, admin("GET", lv1+"/grouped-usage"+q, nil)), 400, "VALIDATION_FAILED")
		}

		var listed []map[string]any
		_ = json.Unmarshal(f.do(t, admin("GET", "/controller/rest/applications?output=JSON", nil)).body, &listed)
		want := []map[string]any{{"id": float64(18156), "name": "Sangrah-OrderFulfillment", "description": ""},
			{"id": float64(18157), "name": "SangrahApp", "description": ""}}
		if diff := cmp.Diff(want, listed); diff != "" {
			t.Errorf("applications (-want +got):\n%s", diff)
		}
	})
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// createAllocation makes an allocation and returns its licence key.
func createAllocation(t testing.TB, f *fixture, body string) string {
	t.Helper()
	r := f.do(t, admin("POST", allocations, body))
	if r.status != 201 {
		t.Fatalf("allocation: %d %s", r.status, r.body)
	}
	return r.json(t)["licenseKey"].(string)
}

func limits(name string, delay, priority bool, filters, lims string) string {
	return fmt.Sprintf(`{"name":%q,"fallbackModeDelay":%t,"machineAgentPriority":%t,"filters":%s,"limits":%s}`,
		name, delay, priority, filters, lims)
}

func TestHostIsChargedOnceAndLimitsHold(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		withLicence(t, f, 100)
		key := createAllocation(t, f, limits("p32", false, false, `[]`, `[{"package":"PREMIUM","units":32}]`))
		java := func(id, host string) agent {
			return agent{AgentID: id, AgentType: "APP_AGENT", LicenseKey: key, Host: onHost(host, 16), Application: app(1, "shop")}
		}
		d := wantGranted(t, register(t, f, java("a1", "host-a"), ""), 201)
		if d["unitsCharged"] != float64(16) || d["hostUnits"] != float64(16) || d["package"] != "PREMIUM" ||
			d["pool"].(map[string]any)["name"] != "p32" || d["explanation"].(map[string]any)["unitsAvailableBefore"] != float64(32) {
			t.Errorf("first host: %v", d)
		}
		wantGranted(t, register(t, f, java("b1", "host-b"), ""), 201)
		ref := refusal(t, register(t, f, java("c1", "host-c"), ""), 409, "NO_MORE_UNITS")
		if ex := ref["explanation"].(map[string]any); ex["limit"] != float64(32) || ex["unitsAvailableBefore"] != float64(0) {
			t.Errorf("refusal explanation: %v", ex)
		}
		second := wantGranted(t, register(t, f, java("a2", "host-a"), ""), 201)
		if second["unitsCharged"] != float64(0) || second["hostUnits"] != float64(16) {
			t.Errorf("second agent on a charged host: %v", second)
		}
		again := wantGranted(t, register(t, f, java("a2", "host-a"), ""), 200) // idempotent
		if again["registrationId"] != second["registrationId"] {
			t.Errorf("re-registration gave a new lease: %v vs %v", again["registrationId"], second["registrationId"])
		}
		if ex := again["explanation"].(map[string]any); ex["limit"] != float64(32) || ex["reason"] != "ALREADY_LICENSED" || again["unitsCharged"] != float64(0) {
			t.Errorf("re-registration explains itself as %v, charged %v", ex, again["unitsCharged"])
		}
		for _, id := range []any{d["registrationId"], second["registrationId"]} {
			if r := f.do(t, admin("DELETE", registrations+"/"+id.(string), nil)); r.status != 204 {
				t.Fatalf("release: %d %s", r.status, r.body)
			}
		}
		wantGranted(t, register(t, f, java("c1", "host-c"), ""), 201)
		wantProblem(t, f.do(t, admin("DELETE", registrations+"/"+d["registrationId"].(string), nil)), 404, "REGISTRATION_NOT_FOUND")

		// A machine agent joins host-b: INFRA need, already covered by PREMIUM.
		ma := wantGranted(t, register(t, f, agent{AgentID: "b-ma", AgentType: "MACHINE_AGENT", LicenseKey: key, Host: onHost("host-b", 16)}, ""), 201)
		if ma["unitsCharged"] != float64(0) {
			t.Errorf("machine agent on a charged host: %v", ma)
		}
	})
}

func TestRefusalsFallbackPreemptionAndRules(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		withLicence(t, f, 100)
		filtered := createAllocation(t, f, limits("app1", false, false,
			`[{"type":"APPLICATION","operator":"ID_EQUALS","value":"1"}]`, `[{"package":"PREMIUM","units":10}]`))
		d := refusal(t, register(t, f, agent{AgentID: "x", AgentType: "APP_AGENT", LicenseKey: filtered, Host: onHost("h", 2), Application: app(2, "other")}, ""),
			403, "DENIED_BY_FILTER")
		if d["pool"].(map[string]any)["name"] != "app1" {
			t.Errorf("refusal names no pool: %v", d)
		}
		if r := f.do(t, admin("GET", "/controller/rest/applications", nil)); string(r.body) != "[]" {
			t.Errorf("a refused agent's application is listed: %s", r.body)
		}
		wantProblem(t, register(t, f, agent{AgentID: "x", AgentType: "APP_AGENT", LicenseKey: "no-such-key", Host: onHost("h", 2)}, ""), 404, "UNKNOWN_LICENSE_KEY")
		infraOnly := createAllocation(t, f, limits("infra", false, false, `[]`, `[{"package":"INFRA","units":10}]`))
		refusal(t, register(t, f, agent{AgentID: "x", AgentType: "APP_AGENT", LicenseKey: infraOnly, Host: onHost("h", 2)}, ""), 403, "PACKAGE_NOT_LICENSED")

		// Unknown vCPU: fallback units (4 for APP_AGENT in the licence), then
		// a heartbeat with the real vCPU re-charges the host.
		plain := createAllocation(t, f, limits("plain", false, false, `[]`, `[{"package":"PREMIUM","units":30}]`))
		fb := wantGranted(t, register(t, f, agent{AgentID: "fb", AgentType: "APP_AGENT", LicenseKey: plain, Host: onHost("unknown-cpu", nil)}, ""), 201)
		if fb["hostUnits"] != float64(4) || fb["unitsCharged"] != float64(4) {
			t.Errorf("fallback charge: %v", fb)
		}
		// Grouped usage shows the fallback units, on the host and in total.
		g := f.do(t, admin("GET", lv1+"/grouped-usage/host?hostId=unknown-cpu", nil)).json(t)
		want := map[string]any{"PREMIUM": float64(4)}
		if !cmp.Equal(g["fallbackLicenseUnits"], want) || !cmp.Equal(g["items"].(map[string]any)["unknown-cpu"].(map[string]any)["fallbackLicenseUnits"], want) {
			t.Errorf("grouped usage of a fallback host: %v", g)
		}
		hb := f.do(t, admin("POST", registrations+"/"+fb["registrationId"].(string)+"/heartbeat", map[string]any{"vCpu": 8}))
		if hb.status != 200 || hb.json(t)["hostUnits"] != float64(8) {
			t.Errorf("heartbeat with vCPU: %d %s", hb.status, hb.body)
		}
		// Grouped usage shows the host's vCPU as the heartbeat reported it.
		g = f.do(t, admin("GET", lv1+"/grouped-usage/host?hostId=unknown-cpu", nil)).json(t)
		if item := g["items"].(map[string]any)["unknown-cpu"].(map[string]any); item["vCpu"] != float64(8) || g["vCpuTotal"] != float64(8) ||
			!cmp.Equal(item["fallbackLicenseUnits"], map[string]any{}) {
			t.Errorf("grouped usage after the heartbeat with vCPU 8: %v", g)
		}
		next := wantGranted(t, register(t, f, agent{AgentID: "fb2", AgentType: "APP_AGENT", LicenseKey: plain, Host: onHost("other", 2)}, ""), 201)
		if next["explanation"].(map[string]any)["unitsAvailableBefore"] != float64(22) {
			t.Errorf("after the re-charge 30-8 = 22 units should be free: %v", next["explanation"])
		}

		delayed := createAllocation(t, f, limits("delayed", true, false, `[]`, `[{"package":"PREMIUM","units":10}]`))
		slow := agent{AgentID: "slow", AgentType: "APP_AGENT", LicenseKey: delayed, Host: onHost("new-host", nil)}
		r := register(t, f, slow, "")
		refusal(t, r, 409, "FALLBACK_DELAY")
		if r.header.Get("Retry-After") != "600" {
			t.Errorf("Retry-After = %q, want 600", r.header.Get("Retry-After"))
		}
		f.clock.Advance(4 * time.Minute)
		if r := register(t, f, slow, ""); r.header.Get("Retry-After") != "360" {
			t.Errorf("after 4 minutes Retry-After = %q, want 360", r.header.Get("Retry-After"))
		}
		f.clock.Advance(6 * time.Minute)
		if d := wantGranted(t, register(t, f, slow, ""), 201); d["hostUnits"] != float64(4) {
			t.Errorf("after the delay: %v", d)
		}

		// Machine-agent priority: the newest app-server host is pre-empted.
		prio := createAllocation(t, f, limits("prio", false, true, `[]`, `[{"package":"PREMIUM","units":20}]`))
		old := wantGranted(t, register(t, f, agent{AgentID: "old", AgentType: "APP_AGENT", LicenseKey: prio, Host: onHost("old-host", 10)}, ""), 201)
		f.clock.Advance(time.Second)
		victim := wantGranted(t, register(t, f, agent{AgentID: "new", AgentType: "APP_AGENT", LicenseKey: prio, Host: onHost("new-app-host", 10)}, ""), 201)
		refusal(t, register(t, f, agent{AgentID: "late", AgentType: "APP_AGENT", LicenseKey: prio, Host: onHost("late-host", 2)}, ""), 409, "NO_MORE_UNITS")
		ma := wantGranted(t, register(t, f, agent{AgentID: "ma", AgentType: "MACHINE_AGENT", LicenseKey: prio, Host: onHost("db-host", 8)}, ""), 201)
		if ma["hostUnits"] != float64(8) || ma["package"] != "PREMIUM" {
			t.Errorf("machine agent: %v", ma)
		}
		wantProblem(t, f.do(t, admin("POST", registrations+"/"+victim["registrationId"].(string)+"/heartbeat", nil)), 409, "PREEMPTED")
		wantProblem(t, f.do(t, admin("POST", registrations+"/"+victim["registrationId"].(string)+"/heartbeat", nil)), 404, "REGISTRATION_NOT_FOUND")
		if r := f.do(t, admin("POST", registrations+"/"+old["registrationId"].(string)+"/heartbeat", nil)); r.status != 200 {
			t.Errorf("the older host was pre-empted too: %d %s", r.status, r.body)
		}

		// ABL: a rule with JAVA 2 admits two JVMs and refuses the third.
		rr := f.do(t, admin("POST", rules, `{"version":0,"name":"java2","entitlements":[{"license_module_type":"JAVA","number_of_licenses":2}]}`))
		rule := rr.json(t)
		for i := range 2 {
			g := wantGranted(t, register(t, f, agent{AgentID: fmt.Sprintf("jvm%d", i), AgentType: "APP_AGENT", LicenseKey: rule["access_key"].(string), Host: onHost("abl-host", 4)}, ""), 201)
			if g["pool"].(map[string]any)["kind"] != "RULE" || g["package"] != "JAVA" {
				t.Errorf("ABL decision: %v", g)
			}
		}
		refusal(t, register(t, f, agent{AgentID: "jvm3", AgentType: "APP_AGENT", LicenseKey: rule["access_key"].(string), Host: onHost("abl-host", 4)}, ""), 409, "NO_MORE_UNITS")
		refusal(t, register(t, f, agent{AgentID: "php", AgentType: "PHP_APP_AGENT", LicenseKey: rule["access_key"].(string), Host: onHost("abl-host", 4)}, ""), 403, "PACKAGE_NOT_LICENSED")
		if got := f.do(t, admin("GET", rules+"/"+rule["id"].(string), nil)).json(t); got["peak_usage"] != float64(2) {
			t.Errorf("peak_usage = %v, want 2", got["peak_usage"])
		}
	})
}

// A per-host module (DOT_NET) costs one licence per host: releasing one of
// a host's two agents gives nothing back, releasing the last one does.
func TestPerHostModuleIsGivenBackWithTheHostsLastAgent(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		withLicence(t, f, 100)
		rule := f.do(t, admin("POST", rules, `{"version":0,"name":"dotnet1","entitlements":[{"license_module_type":"DOT_NET","number_of_licenses":1}]}`)).json(t)
		key := rule["access_key"].(string)
		dotnet := func(id, host string) agent {
			return agent{AgentID: id, AgentType: "DOT_NET_APP_AGENT", LicenseKey: key, Host: onHost(host, 4)}
		}
		first := wantGranted(t, register(t, f, dotnet("d1", "win-a"), ""), 201)
		second := wantGranted(t, register(t, f, dotnet("d2", "win-a"), ""), 201)
		if first["package"] != "DOT_NET" || second["package"] != "DOT_NET" {
			t.Fatalf("DOT_NET decisions: %v, %v", first, second)
		}
		refusal(t, register(t, f, dotnet("d3", "win-b"), ""), 409, "NO_MORE_UNITS")
		if r := f.do(t, admin("DELETE", registrations+"/"+first["registrationId"].(string), nil)); r.status != 204 {
			t.Fatalf("release: %d %s", r.status, r.body)
		}
		refusal(t, register(t, f, dotnet("d3", "win-b"), ""), 409, "NO_MORE_UNITS") // win-a still holds it
		if r := f.do(t, admin("DELETE", registrations+"/"+second["registrationId"].(string), nil)); r.status != 204 {
			t.Fatalf("release: %d %s", r.status, r.body)
		}
		wantGranted(t, register(t, f, dotnet("d3", "win-b"), ""), 201)
	})
}

func TestLeaseTTLAndDryRun(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		key := createAllocation(t, f, limits("ten", false, false, `[]`, `[{"package":"PREMIUM","units":10}]`))
		probe := agent{AgentID: "probe", AgentType: "APP_AGENT", LicenseKey: key, Host: onHost("h1", 10)}
		dry := register(t, f, probe, "?dryRun=true")
		if d := wantGranted(t, dry, 200); d["registrationId"] != nil || d["dryRun"] != true || d["unitsCharged"] != float64(10) {
			t.Errorf("dry run: %s", dry.body)
		}
		countLeases := func() int {
			var page struct{ Data []any }
			_ = json.Unmarshal(f.do(t, admin("GET", registrations, nil)).body, &page)
			return len(page.Data)
		}
		if n := countLeases(); n != 0 {
			t.Fatalf("dry run stored %d leases", n)
		}
		kept := wantGranted(t, register(t, f, probe, ""), 201)
		if kept["explanation"].(map[string]any)["unitsAvailableBefore"] != float64(10) {
			t.Errorf("the dry run charged units: %v", kept["explanation"])
		}
		other := wantGranted(t, register(t, f, agent{AgentID: "other", AgentType: "MACHINE_AGENT", Host: onHost("h2", 2)}, ""), 201)

		// Heartbeats keep "other" alive; "probe" gets none and expires.
		for range 3 {
			f.clock.Advance(2 * time.Minute)
			odd := `no"pe,{x}\` // quotes, commas, braces and backslashes are only unknown ids
			r := f.do(t, admin("POST", registrations+"/heartbeats", map[string]any{"ids": []string{other["registrationId"].(string), odd}}))
			if m := r.json(t); r.status != 200 || m["renewed"] != float64(1) || len(m["unknown"].([]any)) != 1 || m["unknown"].([]any)[0] != odd {
				t.Fatalf("batch heartbeat: %d %s", r.status, r.body)
			}
			if _, err := f.eng.Reap(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if n := countLeases(); n != 1 {
			t.Errorf("%d live leases after the TTL, want 1 (the one with heartbeats)", n)
		}
		wantProblem(t, f.do(t, admin("POST", registrations+"/"+kept["registrationId"].(string)+"/heartbeat", nil)), 404, "REGISTRATION_NOT_FOUND")
		// Its units are free again.
		again := wantGranted(t, register(t, f, agent{AgentID: "probe-2", AgentType: "APP_AGENT", LicenseKey: key, Host: onHost("h3", 10)}, ""), 201)
		if again["explanation"].(map[string]any)["unitsAvailableBefore"] != float64(10) {
			t.Errorf("expired lease still charged: %v", again["explanation"])
		}
		wantProblem(t, f.do(t, admin("POST", registrations+"/heartbeats", map[string]any{"ids": []string{}})), 400, "VALIDATION_FAILED")

		// An agent whose lease expired (not yet reaped) registers again under
		// another allocation: the old lease is released, its units freed.
		other2 := createAllocation(t, f, limits("other", false, false, `[]`, `[{"package":"PREMIUM","units":10}]`))
		moved := agent{AgentID: "probe-2", AgentType: "APP_AGENT", LicenseKey: other2, Host: onHost("h3", 10)}
		f.clock.Advance(6 * time.Minute)
		re := wantGranted(t, register(t, f, moved, ""), 201)
		if re["registrationId"] == again["registrationId"] || re["pool"].(map[string]any)["name"] != "other" {
			t.Errorf("re-registration after expiry: %v", re)
		}
		back := wantGranted(t, register(t, f, agent{AgentID: "probe-3", AgentType: "APP_AGENT", LicenseKey: key, Host: onHost("h4", 10)}, ""), 201)
		if back["explanation"].(map[string]any)["unitsAvailableBefore"] != float64(10) {
			t.Errorf("the dead lease still holds its units: %v", back["explanation"])
		}
	})
}

// Two service instances on one PostgreSQL: 200 parallel registrations of
// distinct 1-vCPU hosts against a 50-unit allocation grant exactly 50.
func TestTwoInstancesHoldTheLimit(t *testing.T) {
	url := pgtest.URL(t)
	f1 := newFixture(t, storetest.Open(t, store.Options{URL: url}))
	f2 := newFixture(t, storetest.Open(t, store.Options{URL: url}))
	key := createAllocation(t, f1, limits("fifty", false, false, `[]`, `[{"package":"PREMIUM","units":50}]`))
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		codes = map[int]int{}
	)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := f1
			if i%2 == 1 {
				f = f2
			}
			r := register(t, f, agent{AgentID: fmt.Sprintf("agent-%d", i), AgentType: "APP_AGENT", LicenseKey: key, Host: onHost(fmt.Sprintf("host-%d", i), 1)}, "")
			mu.Lock()
			codes[r.status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if codes[201] != 50 || codes[409] != 150 {
		t.Fatalf("200 registrations against 50 units on two instances: %v, want 50×201 and 150×409", codes)
	}
	var page struct{ Data []any }
	_ = json.Unmarshal(f2.do(t, admin("GET", registrations+"?licenseKey="+key+"&size=1000", nil)).body, &page)
	if len(page.Data) != 50 {
		t.Errorf("%d leases stored, want 50", len(page.Data))
	}
}

func TestPoolsInUseAreNotDeleted(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		r := f.do(t, admin("POST", allocations, limits("busy", false, false, `[]`, `[{"package":"PREMIUM","units":10}]`)))
		alloc := r.json(t)
		rule := f.do(t, admin("POST", rules, `{"version":0,"name":"busy-rule","entitlements":[{"license_module_type":"JAVA","number_of_licenses":5}]}`)).json(t)
		wantGranted(t, register(t, f, agent{AgentID: "a", AgentType: "APP_AGENT", LicenseKey: alloc["licenseKey"].(string), Host: onHost("h", 4)}, ""), 201)
		wantGranted(t, register(t, f, agent{AgentID: "b", AgentType: "APP_AGENT", LicenseKey: rule["access_key"].(string), Host: onHost("h", 4)}, ""), 201)

		m := wantProblem(t, f.do(t, admin("DELETE", allocations+"/"+alloc["id"].(string), nil)), 409, "ALLOCATION_IN_USE")
		if m["leases"] != float64(1) {
			t.Errorf("ALLOCATION_IN_USE names %v leases, want 1", m["leases"])
		}
		wantProblem(t, f.do(t, admin("DELETE", rules+"/"+rule["id"].(string), nil)), 409, "RULE_IN_USE")
		if r := f.do(t, admin("GET", rules+"/"+rule["id"].(string), nil)); r.status != 200 {
			t.Fatalf("refused delete removed the rule: %d", r.status)
		}
		for _, p := range []string{allocations + "/" + alloc["id"].(string), rules + "/" + rule["id"].(string)} {
			if r := f.do(t, admin("DELETE", p+"?force=true", nil)); r.status != 204 {
				t.Fatalf("force delete %s: %d %s", p, r.status, r.body)
			}
		}
		var page struct{ Data []any }
		_ = json.Unmarshal(f.do(t, admin("GET", registrations, nil)).body, &page)
		if len(page.Data) != 0 {
			t.Errorf("%d leases survive the forced deletes", len(page.Data))
		}
		wantProblem(t, f.do(t, admin("POST", rules, `{"version":0,"name":"a/b"}`)), 400, "VALIDATION_FAILED")
	})
}

// Registrations that arrive together are decided in batches (one
// transaction each). A race of many registrations of every kind must count
// exactly as if they came one by one: hosts charged once, the limit held,
// duplicates idempotent, unknown keys and rules answered as usual.
func TestParallelRegistrationsAreBatchedAndCountExactly(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		withLicence(t, f, 100)
		key := createAllocation(t, f, limits("forty", false, false, `[]`, `[{"package":"PREMIUM","units":40}]`))
		rule := f.do(t, admin("POST", rules, `{"version":0,"name":"java5","entitlements":[{"license_module_type":"JAVA","number_of_licenses":5}]}`)).json(t)
		ruleKey := rule["access_key"].(string)

		var bodies []agent
		for h := range 30 { // 30 hosts of 4 vCPU, 3 agents each: room for 10 hosts
			for a := range 3 {
				bodies = append(bodies, agent{AgentID: fmt.Sprintf("h%d-a%d", h, a), AgentType: "APP_AGENT", LicenseKey: key,
					Host: onHost(fmt.Sprintf("host-%d", h), 4), Application: app(h%5, fmt.Sprintf("app-%d", h%5))})
			}
		}
		for i := range 10 {
			bodies = append(bodies, bodies[i*9]) // the same agent again
			bodies = append(bodies, agent{AgentID: fmt.Sprintf("lost-%d", i), AgentType: "APP_AGENT", LicenseKey: "no-such-key", Host: onHost("host-x", 2)})
		}
		for i := range 8 {
			bodies = append(bodies, agent{AgentID: fmt.Sprintf("jvm-%d", i), AgentType: "APP_AGENT", LicenseKey: ruleKey, Host: onHost(fmt.Sprintf("rule-host-%d", i), 1)})
		}
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			start   = make(chan struct{})
			results = make([]resp, len(bodies))
		)
		for i, b := range bodies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				r := register(t, f, b, "")
				mu.Lock()
				results[i] = r
				mu.Unlock()
			}()
		}
		close(start)
		wg.Wait()

		grantedHosts := map[string]int{}
		regIDs := map[string]map[string]bool{}
		codes := map[string]int{}
		for i, r := range results {
			b := bodies[i]
			switch {
			case r.status == 201 || r.status == 200:
				if b.LicenseKey == key {
					grantedHosts[b.Host["id"].(string)]++
				}
				if regIDs[b.AgentID] == nil {
					regIDs[b.AgentID] = map[string]bool{}
				}
				regIDs[b.AgentID][r.json(t)["registrationId"].(string)] = true
				codes[b.LicenseKey[:min(len(b.LicenseKey), 4)]+"-granted"]++
			default:
				codes[fmt.Sprint(r.status, " ", r.json(t)["code"])]++
			}
		}
		if len(grantedHosts) != 10 {
			t.Errorf("%d hosts licensed in a 40-unit allocation of 4-vCPU hosts, want 10 (%v)", len(grantedHosts), codes)
		}
		for h, n := range grantedHosts {
			if n < 3 {
				t.Errorf("host %s: %d of its agents licensed, want all (a charged host costs nothing more)", h, n)
			}
		}
		for a, ids := range regIDs {
			if len(ids) != 1 {
				t.Errorf("agent %s holds %d leases", a, len(ids))
			}
		}
		if codes["404 UNKNOWN_LICENSE_KEY"] != 10 || codes["409 NO_MORE_UNITS"] < 60 {
			t.Errorf("answers: %v", codes)
		}
		var page struct {
			Data []struct {
				LicenseKey   string
				UnitsCharged int64
			}
		}
		if err := json.Unmarshal(f.do(t, admin("GET", registrations+"?size=1000", nil)).body, &page); err != nil {
			t.Fatal(err)
		}
		units, leases := int64(0), map[string]int{}
		for _, l := range page.Data {
			leases[l.LicenseKey]++
			if l.LicenseKey == key {
				units += l.UnitsCharged
			}
		}
		if leases[key] != 30 || units != 40 || leases[ruleKey] != 5 {
			t.Errorf("stored: %d leases charging %d units in the allocation (want 30, 40), %d in the rule (want 5)", leases[key], units, leases[ruleKey])
		}
		m := string(f.do(t, req{method: "GET", path: "/metrics"}).body)
		for _, want := range []string{`package="PREMIUM",pool="` + poolIDOf(t, f, key) + `",pool_kind="ALLOCATION",pool_name="forty"} 40`, `package="JAVA",pool="` + rule["id"].(string) + `",pool_kind="RULE",pool_name="java5"} 5`} {
			if !strings.Contains(m, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
		if !strings.Contains(m, "lc_registration_batch_size_bucket{le=\"1\"}") || batchesOfMany(m, "lc_registration_batch_size") == 0 {
			t.Errorf("no registrations were decided together:\n%s", grepLines(m, "lc_registration_batch_size"))
		}
	})
}

func poolIDOf(t *testing.T, f *fixture, key string) string {
	t.Helper()
	var list []map[string]any
	if err := json.Unmarshal(f.do(t, admin("GET", allocations+"?license-key="+key, nil)).body, &list); err != nil || len(list) != 1 {
		t.Fatalf("allocation of key %s: %v %v", key, list, err)
	}
	return list[0]["id"].(string)
}

// batchesOfMany reads how many batches of histogram h held more than one
// item.
func batchesOfMany(metrics, h string) float64 {
	var one, all float64
	for _, l := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(l, h+`_bucket{le="1"} `); ok {
			fmt.Sscan(v, &one)
		}
		if v, ok := strings.CutPrefix(l, h+`_count `); ok {
			fmt.Sscan(v, &all)
		}
	}
	return all - one
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// The lease list shows each lease's pool by name and its host as last seen.
func TestLeaseListShowsPoolAndHost(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		withLicence(t, f, 100)
		key := createAllocation(t, f, limits("infra-hx", false, false, `[]`, `[{"package":"PREMIUM","units":40}]`))
		wantGranted(t, register(t, f, agent{AgentID: "a1", AgentType: "APP_AGENT", LicenseKey: key,
			Host: map[string]any{"id": "hx1", "name": "hx1.example.com", "vCpu": 8}}, ""), 201)
		var page struct {
			Data []struct {
				Pool struct{ Kind, ID, Name string }
				Host struct {
					ID, Name string
					VCPU     *int64 `json:"vCpu"`
				}
			}
		}
		if err := json.Unmarshal(f.do(t, admin("GET", registrations+"?host=hx1", nil)).body, &page); err != nil || len(page.Data) != 1 {
			t.Fatalf("list: %v %+v", err, page)
		}
		l := page.Data[0]
		if l.Pool.Name != "infra-hx" || l.Pool.Kind != "ALLOCATION" || l.Host.Name != "hx1.example.com" || l.Host.VCPU == nil || *l.Host.VCPU != 8 {
			t.Errorf("lease: pool %+v, host %+v", l.Pool, l.Host)
		}
		// Grouped usage names the host by its name, keyed by its id (as the seed).
		g := f.do(t, admin("GET", lv1+"/grouped-usage/host?hostId=hx1", nil)).json(t)
		if h, _ := g["items"].(map[string]any)["hx1"].(map[string]any); h == nil || h["host"] != "hx1.example.com" {
			t.Errorf("grouped usage of hx1: %v", g)
		}
	})
}

// losing is an engine store whose first transactions lose to concurrent
// ones, as PostgreSQL reports a deadlock.
type losing struct {
	engine.Store
	mu    sync.Mutex
	loses int
}

func (l *losing) InTx(ctx context.Context, fn func(engine.Store) error) error {
	l.mu.Lock()
	lose := l.loses > 0
	if lose {
		l.loses--
	}
	l.mu.Unlock()
	if lose {
		return fmt.Errorf("lock pool: %w: deadlock detected (SQLSTATE 40P01)", fault.ErrTransient)
	}
	return l.Store.InTx(ctx, fn)
}

// A registration whose transaction lost to a concurrent one is decided
// again; one that keeps losing answers 503 TRY_AGAIN with Retry-After.
func TestRegistrationRetriesLostTransactions(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		withLicence(t, f, 100)
		key := createAllocation(t, f, limits("retry", false, false, `[]`, `[{"package":"PREMIUM","units":10}]`))
		four := int64(4)
		in := engine.Registration{AgentID: "a1", AgentType: "APP_AGENT", LicenseKey: key, HostID: "h1", VCPU: &four}

		eng := engine.New(&losing{Store: st.Engine(), loses: 2}, f.lic, engine.Options{Now: f.clock.Now})
		dec, err := eng.Register(context.Background(), 1, in)
		if err != nil || dec.Status != engine.StatusLicensed || dec.UnitsCharged != 4 {
			t.Fatalf("after two lost transactions: %+v %v", dec, err)
		}

		in.AgentID, in.HostID = "a2", "h2"
		eng = engine.New(&losing{Store: st.Engine(), loses: 100}, f.lic, engine.Options{Now: f.clock.Now})
		if _, err := eng.Register(context.Background(), 1, in); !errors.Is(err, fault.ErrTransient) {
			t.Fatalf("always losing: %v, want fault.ErrTransient", err)
		}
		var page struct{ Data []any }
		_ = json.Unmarshal(f.do(t, admin("GET", registrations, nil)).body, &page)
		if len(page.Data) != 1 {
			t.Errorf("%d leases stored, want 1 (the lost registration stored nothing)", len(page.Data))
		}
	})
}

// scanCounting counts the reaper's scans of the leases.
type scanCounting struct {
	engine.Store
	scans atomic.Int64
}

func (s *scanCounting) NextExpiry(ctx context.Context, now time.Time) (time.Time, error) {
	s.scans.Add(1)
	return s.Store.NextExpiry(ctx, now)
}

func (s *scanCounting) ExpiredLeases(ctx context.Context, now time.Time, limit int) ([]engine.Lease, error) {
	s.scans.Add(1)
	return s.Store.ExpiredLeases(ctx, now, limit)
}

// The reaper does not scan the leases on every tick: after a pass it waits
// for the earliest expiry it saw (or a minute of the clock), then releases
// the lease that expired on time.
func TestReaperWaitsForTheEarliestExpiry(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		withLicence(t, f, 100)
		key := createAllocation(t, f, limits("reaped", false, false, `[]`, `[{"package":"PREMIUM","units":10}]`))
		lease := wantGranted(t, register(t, f, agent{AgentID: "a1", AgentType: "APP_AGENT", LicenseKey: key, Host: onHost("h1", 4)}, ""), 201)

		counting := &scanCounting{Store: st.Engine()}
		eng := engine.New(counting, f.lic, engine.Options{LeaseTTL: 5 * time.Minute, Now: f.clock.Now})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); eng.RunReaper(ctx, time.Millisecond) }()
		defer func() { cancel(); <-done }()
		waitFor := func(what string, ok func() bool) {
			t.Helper()
			for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("gave up waiting for %s", what)
				}
			}
		}
		scansAre := func(n int64) func() bool { return func() bool { return counting.scans.Load() == n } }

		waitFor("the first pass", scansAre(1))
		time.Sleep(50 * time.Millisecond) // some 50 ticks, the clock unmoved
		f.clock.Advance(59 * time.Second)
		time.Sleep(20 * time.Millisecond)
		if n := counting.scans.Load(); n != 1 {
			t.Fatalf("%d scans before anything could expire, want 1", n)
		}
		f.clock.Advance(time.Second) // a minute: the longest the reaper trusts a pass
		waitFor("the second pass", scansAre(2))
		f.clock.Advance(-2 * time.Hour) // the clock went back: it does not wait two hours
		waitFor("a pass after the clock went back", scansAre(3))
		f.clock.Advance(2 * time.Hour)
		waitFor("a pass after the clock came forward", scansAre(4))

		// 5 s before the lease expires, the pass sees its expiry and the
		// next one comes exactly then.
		f.clock.Advance(5*time.Minute - time.Minute - 5*time.Second)
		waitFor("the pass before the expiry", scansAre(5))
		f.clock.Advance(4 * time.Second)
		time.Sleep(20 * time.Millisecond)
		if n := counting.scans.Load(); n != 5 {
			t.Fatalf("%d scans before the lease expired, want 5", n)
		}
		f.clock.Advance(time.Second)
		waitFor("the lease to be reaped", func() bool {
			_, err := st.Engine().FindLease(context.Background(), 1, lease["registrationId"].(string))
			return errors.Is(err, fault.ErrNotFound)
		})
		// The pass at the expiry read the expired lease and the next
		// expiry, without first looking whether any lease had expired.
		waitFor("the pass to end", scansAre(7))
		time.Sleep(20 * time.Millisecond)
		if n := counting.scans.Load(); n != 7 {
			t.Errorf("%d scans, want 7", n)
		}
	})
}

// TestHeartbeatAnswers: a heartbeat without a vCPU (renewed in one
// statement) answers what one that reports the host's unchanged vCPU
// does (the full path): the registration, the new expiry, the host's
// units and package; and a lease that expired, was released or never
// existed is 404 either way.
func TestHeartbeatAnswers(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		withLicence(t, f, 100)
		key := createAllocation(t, f, `{"name":"hb","limits":[{"package":"PREMIUM","units":20}]}`)
		reg := wantGranted(t, register(t, f, agent{AgentID: "a1", AgentType: "APP_AGENT", LicenseKey: key, Host: onHost("h1", 6)}, ""),
			http.StatusCreated)["registrationId"].(string)
		beat := func(body any) map[string]any {
			t.Helper()
			f.clock.Advance(time.Minute)
			r := f.do(t, admin("POST", registrations+"/"+reg+"/heartbeat", body))
			if r.status != http.StatusOK {
				t.Fatalf("heartbeat %v: %d %s", body, r.status, r.body)
			}
			m := r.json(t)
			want := f.clock.Now().Add(5 * time.Minute).Format(time.RFC3339)
			if got, _ := m["leaseExpiresAt"].(string); !strings.HasPrefix(got, want[:19]) {
				t.Errorf("heartbeat %v: leaseExpiresAt %v, want %s", body, m["leaseExpiresAt"], want)
			}
			delete(m, "leaseExpiresAt")
			delete(m, "vCpuApplied")
			return m
		}
		fast, full := beat(nil), beat(map[string]any{"vCpu": 6})
		if fast["hostUnits"] != float64(6) || fast["package"] != "PREMIUM" || fast["registrationId"] != reg {
			t.Errorf("heartbeat without vCPU: %v", fast)
		}
		if !reflect.DeepEqual(fast, full) {
			t.Errorf("heartbeat without vCPU %v, with the same vCPU %v", fast, full)
		}
		// The lease lives on from the renewal: 4 minutes on, it is still live.
		f.clock.Advance(3 * time.Minute)
		beat(nil)
		f.clock.Advance(6 * time.Minute) // past the TTL, reaper or not
		wantProblem(t, f.do(t, admin("POST", registrations+"/"+reg+"/heartbeat", nil)), 404, "REGISTRATION_NOT_FOUND")
		wantProblem(t, f.do(t, admin("POST", registrations+"/nope/heartbeat", nil)), 404, "REGISTRATION_NOT_FOUND")
	})
}

// Single heartbeats that arrive together are renewed together (one
// statement). Each must get its own answer, exactly as alone: a live
// lease renewed until now + TTL with its package and host units, a
// released or unknown one REGISTRATION_NOT_FOUND.
func TestParallelHeartbeatsAreRenewedTogetherWithTheirOwnAnswers(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		withLicence(t, f, 1000)
		key := createAllocation(t, f, `{"name":"hb","limits":[{"package":"PREMIUM","units":500}]}`)
		rule := f.do(t, admin("POST", rules, `{"version":0,"name":"java","entitlements":[{"license_module_type":"JAVA","number_of_licenses":10}]}`)).json(t)
		type lease struct {
			id    string
			units float64 // host units in the answer: the host's vCPU, 0 in a rule
			live  bool
		}
		var leases []lease
		for h := range 60 {
			vcpu := int64(2 + h%7)
			id := wantGranted(t, register(t, f, agent{AgentID: fmt.Sprintf("agent-%d", h), AgentType: "MACHINE_AGENT", LicenseKey: key,
				Host: onHost(fmt.Sprintf("host-%d", h), vcpu)}, ""), 201)["registrationId"].(string)
			leases = append(leases, lease{id, float64(vcpu), h%10 != 0})
			if h%10 == 0 {
				if r := f.do(t, admin("DELETE", registrations+"/"+id, nil)); r.status != 204 {
					t.Fatalf("release: %d %s", r.status, r.body)
				}
			}
		}
		for i := range 5 {
			id := wantGranted(t, register(t, f, agent{AgentID: fmt.Sprintf("jvm-%d", i), AgentType: "APP_AGENT",
				LicenseKey: rule["access_key"].(string), Host: onHost(fmt.Sprintf("rule-host-%d", i), 1)}, ""), 201)["registrationId"].(string)
			leases = append(leases, lease{id, 0, true})
		}
		for i := range 10 {
			leases = append(leases, lease{fmt.Sprintf("no-such-registration-%d", i), 0, false})
		}
		for round := range 3 {
			f.clock.Advance(time.Minute)
			want := f.clock.Now().Add(5 * time.Minute)
			var (
				wg      sync.WaitGroup
				start   = make(chan struct{})
				answers = make([]resp, len(leases)*2)
			)
			for i := range answers { // each lease twice, at once
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					answers[i] = f.do(t, admin("POST", registrations+"/"+leases[i%len(leases)].id+"/heartbeat", nil))
				}()
			}
			close(start)
			wg.Wait()
			for i, r := range answers {
				l := leases[i%len(leases)]
				if !l.live {
					if r.status != 404 || r.json(t)["code"] != "REGISTRATION_NOT_FOUND" {
						t.Errorf("round %d: heartbeat of %s: %d %s, want 404 REGISTRATION_NOT_FOUND", round, l.id, r.status, r.body)
					}
					continue
				}
				var got struct {
					RegistrationID string
					LeaseExpiresAt time.Time
					HostUnits      float64
				}
				if r.status != 200 || json.Unmarshal(r.body, &got) != nil || got.RegistrationID != l.id ||
					!got.LeaseExpiresAt.Equal(want) || got.HostUnits != l.units {
					t.Errorf("round %d: heartbeat of %s: %d %s, want it renewed until %s with %v host units",
						round, l.id, r.status, r.body, want.Format(time.RFC3339Nano), l.units)
				}
			}
		}
		m := string(f.do(t, req{method: "GET", path: "/metrics"}).body)
		if batchesOfMany(m, "lc_heartbeat_batch_size") == 0 {
			t.Errorf("no heartbeats were renewed together:\n%s", grepLines(m, "lc_heartbeat_batch_size"))
		}
	})
}

// Releases that arrive together are done together (one transaction) on
// the embedded store, on their own in parallel on PostgreSQL. Each must get its own answer, exactly as alone: one 204 for each live
// registration however often it is released at once, 404
// REGISTRATION_NOT_FOUND for the others and the unknown; and every unit
// comes back to its pool, in two allocations and a rule.
func TestParallelReleasesAreDoneTogetherWithTheirOwnAnswers(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		withLicence(t, f, 1000)
		keys := []string{
			createAllocation(t, f, `{"name":"even","limits":[{"package":"PREMIUM","units":80}]}`),
			createAllocation(t, f, `{"name":"odd","limits":[{"package":"PREMIUM","units":80}]}`),
		}
		rule := f.do(t, admin("POST", rules, `{"version":0,"name":"java","entitlements":[{"license_module_type":"JAVA","number_of_licenses":5}]}`)).json(t)
		var ids []string
		for h := range 40 { // 20 hosts of 4 vCPU fill each allocation
			host := onHost(fmt.Sprintf("host-%d", h), 4)
			for _, a := range []agent{
				{AgentID: fmt.Sprintf("ma-%d", h), AgentType: "MACHINE_AGENT", LicenseKey: keys[h%2], Host: host},
				{AgentID: fmt.Sprintf("app-%d", h), AgentType: "APP_AGENT", LicenseKey: keys[h%2], Host: host, Application: app(1, "shop")},
			} {
				ids = append(ids, wantGranted(t, register(t, f, a, ""), 201)["registrationId"].(string))
			}
		}
		for i := range 5 {
			ids = append(ids, wantGranted(t, register(t, f, agent{AgentID: fmt.Sprintf("jvm-%d", i), AgentType: "APP_AGENT",
				LicenseKey: rule["access_key"].(string), Host: onHost(fmt.Sprintf("rule-host-%d", i), 1)}, ""), 201)["registrationId"].(string))
		}
		live := len(ids)
		for i := range 10 {
			ids = append(ids, fmt.Sprintf("no-such-registration-%d", i))
		}
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			answers = make([]resp, len(ids)*2)
		)
		for i := range answers { // each registration twice, at once
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				answers[i] = f.do(t, admin("DELETE", registrations+"/"+ids[i%len(ids)], nil))
			}()
		}
		close(start)
		wg.Wait()
		for i, id := range ids {
			a, b := answers[i], answers[i+len(ids)]
			if i >= live {
				if a.status != 404 || b.status != 404 {
					t.Errorf("release of unknown %s: %d and %d, want 404", id, a.status, b.status)
				}
				continue
			}
			if a.status+b.status != 204+404 {
				t.Errorf("release of %s twice at once: %d %s and %d %s, want one 204 and one 404", id, a.status, a.body, b.status, b.body)
			}
			for _, r := range []resp{a, b} {
				if r.status == 404 && r.json(t)["code"] != "REGISTRATION_NOT_FOUND" {
					t.Errorf("second release of %s: %s", id, r.body)
				}
			}
		}
		m := string(f.do(t, req{method: "GET", path: "/metrics"}).body)
		used := strings.Split(grepLines(m, "lc_pool_used_units{"), "\n")
		for _, l := range used {
			if !strings.HasSuffix(l, "} 0") || len(used) != 3 {
				t.Errorf("units still used after every release (want 3 pools at 0):\n%s", strings.Join(used, "\n"))
				break
			}
		}
		if batchesOfMany(m, "lc_release_batch_size") == 0 && st.Dialect() == store.SQLite {
			t.Errorf("no releases were done together:\n%s", grepLines(m, "lc_release_batch_size"))
		}
		// Every unit is back: each allocation takes 20 new hosts again, not a 21st.
		for h := range 42 {
			r := register(t, f, agent{AgentID: fmt.Sprintf("again-%d", h), AgentType: "MACHINE_AGENT", LicenseKey: keys[h%2],
				Host: onHost(fmt.Sprintf("again-host-%d", h), 4)}, "")
			if h < 40 {
				wantGranted(t, r, 201)
			} else {
				refusal(t, r, 409, "NO_MORE_UNITS")
			}
		}
	})
}

// A host that reports more vCPU than it did is charged its new vCPU in a
// pool it joins. (The store's SeeHost once returned the host as
// stored before the change: charged 4 units instead of 16.)
func TestAHostThatGrewIsChargedItsNewVCPUInAnotherPool(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		withLicence(t, f, 100)
		k1 := createAllocation(t, f, limits("p1", false, false, `[]`, `[{"package":"PREMIUM","units":32}]`))
		k2 := createAllocation(t, f, limits("p2", false, false, `[]`, `[{"package":"PREMIUM","units":32}]`))
		wantGranted(t, register(t, f, agent{AgentID: "a1", AgentType: "APP_AGENT", LicenseKey: k1, Host: onHost("h", 4)}, ""), 201)
		d := wantGranted(t, register(t, f, agent{AgentID: "a2", AgentType: "APP_AGENT", LicenseKey: k2, Host: onHost("h", 16)}, ""), 201)
		if d["unitsCharged"] != float64(16) {
			t.Errorf("the grown host charged %v units in the second pool, want 16", d["unitsCharged"])
		}
	})
}
