package httpapi_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lcorp/licensing-controller/internal/engine"
	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
)

// analyticsScript plays a scripted history (times from t0, leases live 10 h
// without heartbeats):
//
//	0h00  a1  APP_AGENT  h1 (10 vCPU) shop     prio      granted, released at 3h
//	0h30  e1  APP_AGENT  h5 (1 vCPU)  billing  plain     granted, expires at 10h30
//	1h00  a2  APP_AGENT  h2 (10 vCPU) shop     prio      granted, pre-empted at 2h
//	1h30  late APP_AGENT h3           shop     prio      refused NO_MORE_UNITS
//	2h00  m1  MACHINE_AGENT h4 (8)             prio      granted (pre-empts a2), live
//	3h00  php PHP_APP_AGENT h6                 infra     refused PACKAGE_NOT_LICENSED
//	3h00  x   APP_AGENT  h7           other    app1      refused DENIED_BY_FILTER
//	11h   the reaper runs
func analyticsScript(t *testing.T, f *fixture, billing string) (t0 time.Time, plainKey string) {
	t.Helper()
	t0 = time.Now().UTC().Truncate(24 * time.Hour).Add(-5 * 24 * time.Hour)
	f.clock.Set(t0)
	withLicence(t, f, 100)
	at := func(d time.Duration) { f.clock.Set(t0.Add(d)) }
	prio := createAllocation(t, f, `{"name":"prio","machineAgentPriority":true,"limits":[{"package":"PREMIUM","units":20}],"tags":["team-a"]}`)
	plainKey = createAllocation(t, f, limits("plain", false, false, `[]`, `[{"package":"PREMIUM","units":10}]`))
	infra := createAllocation(t, f, limits("infra", false, false, `[]`, `[{"package":"INFRA","units":10}]`))
	app1 := createAllocation(t, f, limits("app1", false, false, `[{"type":"APPLICATION","operator":"ID_EQUALS","value":"1"}]`, `[{"package":"PREMIUM","units":10}]`))

	a1 := wantGranted(t, register(t, f, agent{AgentID: "a1", AgentType: "APP_AGENT", LicenseKey: prio, Host: onHost("h1", 10), Application: app(1, "shop")}, ""), 201)
	at(30 * time.Minute)
	wantGranted(t, register(t, f, agent{AgentID: "e1", AgentType: "APP_AGENT", LicenseKey: plainKey, Host: onHost("h5", 1), Application: app(2, billing)}, ""), 201)
	at(time.Hour)
	wantGranted(t, register(t, f, agent{AgentID: "a2", AgentType: "APP_AGENT", LicenseKey: prio, Host: onHost("h2", 10), Application: app(1, "shop")}, ""), 201)
	at(90 * time.Minute)
	refusal(t, register(t, f, agent{AgentID: "late", AgentType: "APP_AGENT", LicenseKey: prio, Host: onHost("h3", 2), Application: app(1, "shop")}, ""), 409, "NO_MORE_UNITS")
	at(2 * time.Hour)
	wantGranted(t, register(t, f, agent{AgentID: "m1", AgentType: "MACHINE_AGENT", LicenseKey: prio, Host: onHost("h4", 8)}, ""), 201)
	at(3 * time.Hour)
	if r := f.do(t, admin("DELETE", registrations+"/"+a1["registrationId"].(string), nil)); r.status != http.StatusNoContent {
		t.Fatalf("release a1: %d %s", r.status, r.body)
	}
	refusal(t, register(t, f, agent{AgentID: "php", AgentType: "PHP_APP_AGENT", LicenseKey: infra, Host: onHost("h6", 2)}, ""), 403, "PACKAGE_NOT_LICENSED")
	refusal(t, register(t, f, agent{AgentID: "x", AgentType: "APP_AGENT", LicenseKey: app1, Host: onHost("h7", 2), Application: app(2, billing)}, ""), 403, "DENIED_BY_FILTER")
	at(11 * time.Hour)
	if _, err := f.eng.Reap(context.Background()); err != nil {
		t.Fatal(err)
	}
	return t0, plainKey
}

func analyticsPath(kind string, from, to time.Time, extra string) string {
	return lv1 + "/analytics/" + kind + "?startDate=" + url.QueryEscape(from.Format(time.RFC3339)) +
		"&endDate=" + url.QueryEscape(to.Format(time.RFC3339)) + extra
}

// TestAnalyticsOfAScriptedHistory: the figures of each endpoint are the
// ones worked out by hand from the script.
func TestAnalyticsOfAScriptedHistory(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st, func(o *engine.Options) { o.LeaseTTL = 10 * time.Hour })
		t0, plainKey := analyticsScript(t, f, "billing")
		h := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339) }
		get := func(path string, into any) {
			t.Helper()
			r := f.do(t, admin("GET", path, nil))
			if r.status != http.StatusOK {
				t.Fatalf("GET %s: %d %s", path, r.status, r.body)
			}
			if err := json.Unmarshal(r.body, into); err != nil {
				t.Fatal(err)
			}
		}
		var agents []map[string]any
		get(analyticsPath("agents", t0, t0.Add(11*time.Hour), ""), &agents)
		want := []map[string]any{
			{"agentType": "APP_AGENT", "maxConcurrentLicenseCount": 3.0, "maxConcurrentLicenseTime": h(time.Hour),
				"packagesAtMaxConcurrentLicenseTime": []any{map[string]any{"package": "PREMIUM", "count": 3.0}},
				"uniqueHostCount":                    3.0, "uniqueApplicationCount": 2.0, "usageHours": 14.0}, // a1 3 + a2 1 + e1 10
			{"agentType": "MACHINE_AGENT", "maxConcurrentLicenseCount": 1.0, "maxConcurrentLicenseTime": h(2 * time.Hour),
				"packagesAtMaxConcurrentLicenseTime": []any{map[string]any{"package": "PREMIUM", "count": 1.0}},
				"uniqueHostCount":                    1.0, "uniqueApplicationCount": 0.0, "usageHours": 9.0}, // live to the window's end
		}
		if diff := cmp.Diff(want, agents); diff != "" {
			t.Errorf("agents (-want +got):\n%s", diff)
		}

		// A window that cuts leases in half counts the inside part only.
		get(analyticsPath("agents", t0.Add(90*time.Minute), t0.Add(150*time.Minute), ""), &agents)
		if len(agents) != 2 || agents[0]["usageHours"] != 2.5 || agents[0]["maxConcurrentLicenseCount"] != 3.0 ||
			agents[0]["maxConcurrentLicenseTime"] != h(90*time.Minute) || agents[1]["usageHours"] != 0.5 {
			t.Errorf("half window: %v", agents)
		}
		// endDate is exclusive: a2's grant at 1h is outside [0h, 1h).
		get(analyticsPath("agents", t0, t0.Add(time.Hour), ""), &agents)
		if len(agents) != 1 || agents[0]["maxConcurrentLicenseCount"] != 2.0 || agents[0]["usageHours"] != 1.5 {
			t.Errorf("[0h, 1h): %v", agents)
		}
		// A window that ends ahead counts live leases to now, not to its end:
		// m1 is live from 2h, and the clock stands at 11h.
		get(analyticsPath("agents", t0.Add(10*time.Hour), t0.Add(72*time.Hour), ""), &agents)
		if len(agents) != 2 || agents[1]["agentType"] != "MACHINE_AGENT" || agents[1]["usageHours"] != 1.0 {
			t.Errorf("a window ending in the future: %v", agents)
		}
		get(analyticsPath("agents", t0.Add(20*time.Hour), t0.Add(72*time.Hour), ""), &agents)
		if len(agents) != 0 {
			t.Errorf("a window wholly ahead: %v", agents)
		}
		// Usage hours are exact to the second.
		get(analyticsPath("agents", t0, t0.Add(36*time.Second), ""), &agents)
		if len(agents) != 1 || agents[0]["usageHours"] != 0.01 {
			t.Errorf("36 seconds: %v", agents)
		}

		var pkgs []map[string]any
		get(analyticsPath("packages", t0, t0.Add(11*time.Hour), ""), &pkgs)
		if diff := cmp.Diff([]map[string]any{{"agentType": "APP_AGENT", "packages": []any{"PREMIUM"}},
			{"agentType": "MACHINE_AGENT", "packages": []any{"PREMIUM"}}}, pkgs); diff != "" {
			t.Errorf("packages (-want +got):\n%s", diff)
		}

		var leases []map[string]any
		get(analyticsPath("leases", t0, t0.Add(11*time.Hour), ""), &leases)
		gotHours := map[string]any{}
		var order []string
		for _, l := range leases {
			gotHours[l["host"].(map[string]any)["id"].(string)] = l["usageHours"]
			order = append(order, l["host"].(map[string]any)["id"].(string))
		}
		if !slices.IsSorted(order) {
			t.Errorf("leases rows not by host: %v", order)
		}
		if diff := cmp.Diff(map[string]any{"h1": 3.0, "h2": 1.0, "h4": 9.0, "h5": 10.0}, gotHours); diff != "" {
			t.Errorf("lease hours by host (-want +got):\n%s", diff)
		}

		var rj map[string][]map[string]any
		get(analyticsPath("rejections", t0, t0.Add(11*time.Hour), ""), &rj)
		for reason, host := range map[string]string{"noMoreUnits": "h3", "packageNotLicensed": "h6", "deniedByFilter": "h7"} {
			gs := rj[reason]
			if len(gs) != 1 {
				t.Errorf("%s: %v", reason, gs)
				continue
			}
			st := gs[0]["responseStatistics"].(map[string]any)
			hosts := st["hosts"].([]any)
			if st["count"] != 1.0 || st["hostCount"] != 1.0 || len(hosts) != 1 || hosts[0].(map[string]any)["host"] != host {
				t.Errorf("%s statistics: %v", reason, st)
			}
		}
		if k := rj["noMoreUnits"][0]["requestKey"].(map[string]any); k["agentType"] != "APP_AGENT" || k["pool"] != "prio" {
			t.Errorf("noMoreUnits key: %v", k)
		}
		if times := rj["noMoreUnits"][0]["responseStatistics"].(map[string]any)["hosts"].([]any)[0].(map[string]any)["times"]; !cmp.Equal(times, []any{h(90 * time.Minute)}) {
			t.Errorf("refusal times: %v", times)
		}
		if len(rj["other"]) != 0 {
			t.Errorf("other: %v", rj["other"])
		}

		// Filters: the plain allocation holds e1 only; team-a is prio.
		get(analyticsPath("leases", t0, t0.Add(11*time.Hour), "&pool="+plainKey), &leases)
		if len(leases) != 1 || leases[0]["host"].(map[string]any)["id"] != "h5" {
			t.Errorf("pool filter: %v", leases)
		}
		get(analyticsPath("leases", t0, t0.Add(11*time.Hour), "&tag=team-a"), &leases)
		if len(leases) != 3 {
			t.Errorf("tag filter: %v", leases)
		}
		wantProblem(t, f.do(t, admin("GET", analyticsPath("leases", t0, t0.Add(time.Hour), "&pool=nope"), nil)), 404, "POOL_NOT_FOUND")

		// An empty window is empty, not a 404.
		for _, kind := range []string{"agents", "packages", "leases"} {
			if r := f.do(t, admin("GET", analyticsPath(kind, t0.Add(-48*time.Hour), t0.Add(-24*time.Hour), ""), nil)); r.status != 200 || string(r.body) != "[]" {
				t.Errorf("empty %s: %d %s", kind, r.status, r.body)
			}
		}
		get(analyticsPath("rejections", t0.Add(-48*time.Hour), t0.Add(-24*time.Hour), ""), &rj)
		if len(rj) != 4 || len(rj["noMoreUnits"]) != 0 || rj["other"] == nil {
			t.Errorf("empty rejections: %v", rj)
		}

		// Dates: yyyy-MM-dd, and startDate >= endDate is a 400.
		day := t0.Format(time.DateOnly)
		if r := f.do(t, admin("GET", lv1+"/analytics/agents?startDate="+day+"&endDate="+t0.Add(24*time.Hour).Format(time.DateOnly), nil)); r.status != 200 {
			t.Errorf("yyyy-MM-dd: %d %s", r.status, r.body)
		}
		wantProblem(t, f.do(t, admin("GET", lv1+"/analytics/agents?startDate="+day+"&endDate="+day, nil)), 400, "VALIDATION_FAILED")
		wantProblem(t, f.do(t, admin("GET", lv1+"/analytics/agents?startDate=yesterday", nil)), 400, "VALIDATION_FAILED")
		// A pool or tag longer than any there can be is a 400 naming it.
		for _, q := range []string{"pool=" + strings.Repeat("k", 256), "tag=" + strings.Repeat("t", 65)} {
			r := f.do(t, admin("GET", lv1+"/analytics/leases?"+q, nil))
			wantProblem(t, r, 400, "VALIDATION_FAILED")
			if field := q[:strings.IndexByte(q, '=')]; !strings.Contains(string(r.body), `"field":"`+field+`"`) {
				t.Errorf("%.20s...: the problem does not name %s: %s", q, field, r.body)
			}
		}
	})
}

// TestAnalyticsCSV: every endpoint answers CSV with a header row, quoting
// of commas, quotes and newlines in names, and the JSON's figures.
func TestAnalyticsCSV(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st, func(o *engine.Options) { o.LeaseTTL = 10 * time.Hour })
		awkward := "bill,\"ing\"\nteam"
		t0, _ := analyticsScript(t, f, awkward)
		for _, tc := range []struct {
			kind   string
			header string
			rows   int
		}{
			{"agents", "agentType", 2},
			{"packages", "agentType", 2},
			{"leases", "agentType", 4},
			{"rejections", "reason", 3},
		} {
			t.Run(tc.kind, func(t *testing.T) {
				for _, r := range []resp{
					f.do(t, admin("GET", analyticsPath(tc.kind, t0, t0.Add(11*time.Hour), "&format=csv"), nil)),
					f.do(t, req{method: "GET", path: analyticsPath(tc.kind, t0, t0.Add(11*time.Hour), ""), user: "admin@customer1", pass: adminPassword,
						header: map[string]string{"Accept": "text/csv"}}),
				} {
					if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") {
						t.Fatalf("%d %s %s", r.status, r.header.Get("Content-Type"), r.body)
					}
					recs, err := csv.NewReader(strings.NewReader(string(r.body))).ReadAll()
					if err != nil {
						t.Fatalf("not CSV: %v\n%s", err, r.body)
					}
					if len(recs) != tc.rows+1 || recs[0][0] != tc.header {
						t.Errorf("%d records, header %v:\n%s", len(recs), recs[0], r.body)
					}
				}
			})
		}
		// The awkward name survives the round trip, with the JSON's hours.
		r := f.do(t, admin("GET", analyticsPath("leases", t0, t0.Add(11*time.Hour), "&format=csv"), nil))
		recs, err := csv.NewReader(strings.NewReader(string(r.body))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, rec := range recs[1:] {
			if rec[4] == "h5" {
				found = true
				if rec[7] != awkward || rec[3] != "10" || rec[2] != "PREMIUM" {
					t.Errorf("h5 row: %q", rec)
				}
			}
		}
		if !found {
			t.Errorf("no row for h5:\n%s", r.body)
		}
	})
}
