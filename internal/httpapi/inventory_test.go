package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
)

// TestApplicationsTiersAndNodes: an estate of two applications, three
// hosts and five nodes (and a machine agent) gives AppDynamics' inventory,
// with ids that stay the same across calls and a restart.
func TestApplicationsTiersAndNodes(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		withLicence(t, f, 100)
		v := "24.7.0"
		str := func(s string) *string { return &s }
		for _, a := range []struct {
			agent
			tier *string
		}{
			{agent{AgentID: "o1", AgentType: "APP_AGENT", AgentVersion: &v, Host: onHost("h1", 2), Application: app(18156, "Orders"), Node: "orders-1"}, str("api")},
			{agent{AgentID: "o2", AgentType: "APP_AGENT", AgentVersion: &v, Host: onHost("h2", 2), Application: app(18156, "Orders"), Node: "orders-2"}, str("api")},
			{agent{AgentID: "o3", AgentType: "NODEJS_APP_AGENT", Host: onHost("h2", 2), Application: app(18156, "Orders"), Node: "web-1"}, str("web")},
			{agent{AgentID: "p1", AgentType: "PHP_APP_AGENT", Host: onHost("h3", 2), Application: app(7, "Portal"), Node: "portal-1"}, nil},
			{agent{AgentID: "p2", AgentType: "PHP_APP_AGENT", Host: onHost("h3", 2), Application: app(7, "Portal"), Node: "portal-2"}, nil},
			{agent{AgentID: "m1", AgentType: "MACHINE_AGENT", AgentVersion: str("23.1"), Host: onHost("h1", 2)}, nil},
		} {
			body := map[string]any{"agentId": a.AgentID, "agentType": a.AgentType, "host": a.Host, "node": a.Node}
			if a.Application != nil {
				body["application"] = a.Application
			}
			if a.AgentVersion != nil {
				body["agentVersion"] = *a.AgentVersion
			}
			if a.tier != nil {
				body["tier"] = *a.tier
			}
			if r := f.do(t, admin("POST", registrations, body)); r.status != http.StatusCreated {
				t.Fatalf("register %s: %d %s", a.AgentID, r.status, r.body)
			}
		}
		get := func(f *fixture, path string, into any) {
			t.Helper()
			r := f.do(t, admin("GET", path, nil))
			if r.status != http.StatusOK {
				t.Fatalf("GET %s: %d %s", path, r.status, r.body)
			}
			if err := json.Unmarshal(r.body, into); err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
		}
		var one []map[string]any
		get(f, "/controller/rest/applications/Orders?output=JSON", &one)
		if len(one) != 1 || one[0]["id"] != float64(18156) || one[0]["description"] != "" {
			t.Errorf("application by name: %v", one)
		}
		get(f, "/controller/rest/applications/7", &one)
		if len(one) != 1 || one[0]["name"] != "Portal" {
			t.Errorf("application by id: %v", one)
		}
		wantProblem(t, f.do(t, admin("GET", "/controller/rest/applications/Nope", nil)), http.StatusNotFound, "APPLICATION_NOT_FOUND")

		var nodes []map[string]any
		get(f, "/controller/rest/applications/Orders/nodes", &nodes)
		if len(nodes) != 3 {
			t.Fatalf("Orders nodes: %v", nodes)
		}
		fields := []string{"id", "name", "type", "tierId", "tierName", "machineId", "machineName", "machineOSType",
			"machineAgentPresent", "machineAgentVersion", "appAgentPresent", "appAgentVersion", "agentType", "nodeUniqueLocalId", "ipAddresses"}
		byName := map[string]map[string]any{}
		for _, n := range nodes {
			for _, k := range fields {
				if _, ok := n[k]; !ok {
					t.Errorf("node %v lacks %s", n["name"], k)
				}
			}
			byName[n["name"].(string)] = n
		}
		o1, o2, w1 := byName["orders-1"], byName["orders-2"], byName["web-1"]
		if o1["tierName"] != "api" || o1["tierId"] != o2["tierId"] || o1["tierId"] == w1["tierId"] {
			t.Errorf("tiers: %v %v %v", o1, o2, w1)
		}
		if o1["machineAgentPresent"] != true || o1["machineAgentVersion"] != "23.1" || o2["machineAgentPresent"] != false {
			t.Errorf("machine agents: o1 %v, o2 %v", o1, o2)
		}
		if o1["appAgentPresent"] != true || o1["appAgentVersion"] != v || o1["agentType"] != "APP_AGENT" || o1["ipAddresses"] != nil {
			t.Errorf("o1: %v", o1)
		}
		if o2["machineId"] != w1["machineId"] || o1["machineId"] == o2["machineId"] || o2["machineName"] != "h2" {
			t.Errorf("machines: %v %v %v", o1["machineId"], o2["machineId"], w1["machineId"])
		}
		var tiers []map[string]any
		get(f, "/controller/rest/applications/18156/tiers", &tiers)
		wantTiers := map[string]float64{"api": 2, "web": 1}
		if len(tiers) != 2 {
			t.Fatalf("tiers: %v", tiers)
		}
		for _, tr := range tiers {
			if wantTiers[tr["name"].(string)] != tr["numberOfNodes"] {
				t.Errorf("tier %v", tr)
			}
		}
		var portal []map[string]any
		get(f, "/controller/rest/applications/Portal/nodes", &portal)
		if len(portal) != 2 || portal[0]["tierName"] != "Default" {
			t.Errorf("Portal nodes: %v", portal)
		}

		var apps struct {
			Applications []map[string]any
			Links        []any
		}
		get(f, "/controller/api/accounts/1/applications", &apps)
		if len(apps.Applications) != 2 || apps.Links == nil {
			t.Errorf("account applications: %+v", apps)
		}
		var acctNodes struct{ Nodes []map[string]any }
		get(f, "/controller/api/accounts/1/applications/7/nodes", &acctNodes)
		if len(acctNodes.Nodes) != 2 || acctNodes.Nodes[0]["id"] == nil || acctNodes.Nodes[0]["type"] != "PHP" {
			t.Errorf("account nodes: %+v", acctNodes)
		}

		// The same ids on another call, and after a restart (a new service on the same store).
		again := newFixture(t, st)
		var later []map[string]any
		get(again, "/controller/rest/applications/Orders/nodes", &later)
		if diff := cmp.Diff(nodes, later); diff != "" {
			t.Errorf("nodes differ after a restart (-before +after):\n%s", diff)
		}
	})
}

// TestLicenceModules: the older licence API lists every package and module
// of the licence, their properties as strings and their usage in integers.
func TestLicenceModules(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st, longLeases)
		base := "/controller/api/accounts/1/licensemodules"
		var mods struct {
			Modules []struct {
				Name  string
				Links []struct{ Name, Href string }
			}
		}
		r := f.do(t, admin("GET", base, nil))
		if err := json.Unmarshal(r.body, &mods); r.status != http.StatusOK || err != nil {
			t.Fatalf("%d %s", r.status, r.body)
		}
		names := map[string]bool{}
		for _, m := range mods.Modules {
			names[m.Name] = true
			if len(m.Links) != 2 || m.Links[0].Name != "usages" || m.Links[1].Href == "" {
				t.Errorf("module %s links: %v", m.Name, m.Links)
			}
		}
		for _, n := range []string{"premium", "infra", "enterprise", "java", "machine-agent", "dotnet", "webserver"} {
			if !names[n] {
				t.Errorf("module %s missing from %v", n, names)
			}
		}
		var props struct {
			Properties []struct{ Name, Value string }
		}
		if err := json.Unmarshal(f.do(t, admin("GET", base+"/premium/properties", nil)).body, &props); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, p := range props.Properties {
			got[p.Name] = p.Value
		}
		if got["number-of-provisioned-licenses"] != "100" || got["maximum-allowed-licenses"] != "100" || got["edition"] != "TRIAL" ||
			len(got["expiry-date"]) < 13 || got["license-provisioning-enabled"] != "true" {
			t.Errorf("premium properties: %v", got)
		}
		wantProblem(t, f.do(t, admin("GET", base+"/cobol/properties", nil)), http.StatusNotFound, "MODULE_NOT_FOUND")

		r = f.do(t, admin("POST", rules, ruleBody("java", "")))
		javaKey := r.json(t)["access_key"].(string)
		t0 := f.clock.Now().Truncate(time.Hour)
		f.clock.Set(t0)
		wantGranted(t, register(t, f, agent{AgentID: "j", AgentType: "APP_AGENT", LicenseKey: javaKey, Host: onHost("h1", 3)}, ""), http.StatusCreated)
		wantGranted(t, register(t, f, agent{AgentID: "p", AgentType: "APP_AGENT", Host: onHost("h2", 3)}, ""), http.StatusCreated)
		sample(t, f)
		q := "?startdate=" + strconv.FormatInt(t0.UnixMilli(), 10) + "&enddate=" + t0.Add(time.Hour).Format(time.RFC3339)
		for module, used := range map[string]float64{"premium": 3, "java": 1} {
			var us struct{ Usages []map[string]any }
			r := f.do(t, admin("GET", base+"/"+module+"/usages"+q, nil))
			if err := json.Unmarshal(r.body, &us); r.status != http.StatusOK || err != nil || len(us.Usages) != 1 {
				t.Fatalf("%s usages: %d %s", module, r.status, r.body)
			}
			u := us.Usages[0]
			if u["avgUnitsUsed"] != used || u["maxUnitsUsed"] != used || u["sampleCount"] != float64(1) ||
				u["createdOn"] != float64(t0.UnixMilli()) || u["createdOnIsoDate"] != t0.Format(time.RFC3339) {
				t.Errorf("%s usage: %v", module, u)
			}
		}
		var five struct{ Usages []any }
		_ = json.Unmarshal(f.do(t, admin("GET", base+"/premium/usages"+q+"&showfiveminutesresolution=true", nil)).body, &five)
		if len(five.Usages) != 1 {
			t.Errorf("five-minute usages: %v", five.Usages)
		}
	})
}
