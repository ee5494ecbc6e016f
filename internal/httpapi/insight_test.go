package httpapi_test

import (
	"encoding/json"
	"fmt"
	"github.com/google/go-cmp/cmp"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
)

// forecastOf scripts 14 days of usage of a 40-unit PREMIUM allocation
// (one sample a day at noon, the units of each day given by used) and
// returns the allocation's forecast and the history's first day.
func forecastOf(t *testing.T, st *store.Store, used func(day int) (base int, spike int)) (map[string]any, time.Time) {
	p, t0, _ := forecastFixture(t, st, used)
	return p, t0
}

func forecastFixture(t *testing.T, st *store.Store, used func(day int) (base int, spike int)) (map[string]any, time.Time, *fixture) {
	t.Helper()
	f := newFixture(t, st, longLeases)
	t0 := time.Now().UTC().Truncate(24 * time.Hour).Add(-14*24*time.Hour + 12*time.Hour)
	f.clock.Set(t0.Add(-time.Hour))
	withLicence(t, f, 100)
	key := createAllocation(t, f, `{"name":"growing","limits":[{"package":"PREMIUM","units":40}]}`)
	id := allocationID(t, f, key)
	have := 0
	for d := range 14 {
		f.clock.Set(t0.Add(time.Duration(d)*24*time.Hour - time.Minute))
		base, spike := used(d)
		for ; have < base; have++ {
			wantGranted(t, register(t, f, agent{AgentID: fmt.Sprintf("a%d", have), AgentType: "APP_AGENT", LicenseKey: key,
				Host: onHost(fmt.Sprintf("h%d", have), 1)}, ""), http.StatusCreated)
		}
		var spikeID string
		if spike > 0 {
			spikeID = wantGranted(t, register(t, f, agent{AgentID: "spike", AgentType: "APP_AGENT", LicenseKey: key,
				Host: onHost("spike", spike)}, ""), http.StatusCreated)["registrationId"].(string)
		}
		f.clock.Set(t0.Add(time.Duration(d) * 24 * time.Hour))
		sample(t, f)
		if spikeID != "" {
			if r := f.do(t, admin("DELETE", registrations+"/"+spikeID, nil)); r.status != http.StatusNoContent {
				t.Fatalf("release: %d %s", r.status, r.body)
			}
		}
	}
	r := f.do(t, admin("GET", lv1+"/allocation/"+id+"/forecast", nil))
	if r.status != http.StatusOK {
		t.Fatalf("forecast: %d %s", r.status, r.body)
	}
	pkgs := r.json(t)["packages"].([]any)
	if len(pkgs) != 1 {
		t.Fatalf("forecast packages: %v", pkgs)
	}
	return pkgs[0].(map[string]any), t0, f
}

func allocationID(t *testing.T, f *fixture, key string) string {
	t.Helper()
	r := f.do(t, admin("GET", lv1+"/allocation?license-key="+key, nil))
	var list []any
	if err := json.Unmarshal(r.body, &list); err != nil || len(list) != 1 {
		t.Fatalf("allocation by key: %s", r.body)
	}
	return list[0].(map[string]any)["id"].(string)
}

// TestForecast: a history rising 2 units a day from 10 against a limit of
// 40 runs out 15 days after it began; a flat one never; one spike day
// moves the estimate by less than a day.
func TestForecast(t *testing.T) {
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) { testForecast(t, func() *store.Store { return e.Open(t) }) })
	}
}

func testForecast(t *testing.T, open func() *store.Store) {
	{
		daysAfter := func(p map[string]any, t0 time.Time) float64 {
			t.Helper()
			at, ok := p["exhaustsAt"].(string)
			if !ok {
				t.Fatalf("no exhaustion: %v", p)
			}
			ts, err := time.Parse(time.RFC3339, at)
			if err != nil {
				t.Fatal(err)
			}
			return ts.Sub(t0).Hours() / 24
		}
		rising, t0 := forecastOf(t, open(), func(d int) (int, int) { return 10 + 2*d, 0 })
		if rising["trendPerDay"] != 2.0 || rising["used"] != 36.0 || rising["limit"] != 40.0 || rising["basis"] != "daily maxima, Theil–Sen, 14 days" {
			t.Errorf("rising: %v", rising)
		}
		steady := daysAfter(rising, t0)
		if math.Abs(steady-15) > 1 {
			t.Errorf("rising 2/day from 10 to a limit of 40 runs out %.2f days after the start, want 15 ± 1", steady)
		}
		if rising["low"] == nil || rising["high"] == nil {
			t.Errorf("no range: %v", rising)
		}

		flat, _ := forecastOf(t, open(), func(int) (int, int) { return 10, 0 })
		if flat["exhaustsAt"] != nil || flat["trendPerDay"] != 0.0 {
			t.Errorf("flat: %v", flat)
		}

		spiky, t1 := forecastOf(t, open(), func(d int) (int, int) {
			if d == 6 {
				return 10 + 2*d, 15
			}
			return 10 + 2*d, 0
		})
		if got := daysAfter(spiky, t1); math.Abs(got-steady) > 1 {
			t.Errorf("one spike day moved the exhaustion from %.2f to %.2f days", steady, got)
		}
	}
}

// TestExhaustionGauge: /metrics carries the forecast's seconds to
// exhaustion per allocation and package.
func TestExhaustionGauge(t *testing.T) {
	st := storetest.Engines()[0].Open(t)
	p, _, f := forecastFixture(t, st, func(d int) (int, int) { return 10 + 2*d, 0 })
	at, err := time.Parse(time.RFC3339, p["exhaustsAt"].(string))
	if err != nil {
		t.Fatal(err)
	}
	line := grepLines(string(f.do(t, req{method: "GET", path: "/metrics"}).body), "lc_pool_exhaustion_seconds{")
	var secs float64
	if i := strings.LastIndexByte(line, ' '); i < 0 || !strings.Contains(line, `pool_name="growing"`) || !strings.Contains(line, `package="PREMIUM"`) {
		t.Fatalf("no exhaustion gauge: %q", line)
	} else if secs, err = strconv.ParseFloat(line[i+1:], 64); err != nil {
		t.Fatal(err)
	}
	if want := at.Sub(f.clock.Now()).Seconds(); math.Abs(secs-want) > 60 {
		t.Errorf("gauge %g s, forecast %g s", secs, want)
	}
}

// TestLint: two allocations whose filters both match host h1, each with a
// lease on it, count h1 twice (with the extra units); a filter on an
// application nobody runs matches nothing; an allocation without units,
// one with the same filters as an earlier one, and the trial licence's
// expiry within 30 days are reported too.
func TestLint(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		a := createAllocation(t, f, `{"name":"a","filters":[{"type":"HOST","operator":"EQUALS","value":"h1"}],"limits":[{"package":"PREMIUM","units":20}]}`)
		b := createAllocation(t, f, `{"name":"b","filters":[{"type":"HOST","operator":"STARTS_WITH","value":"h"}],"limits":[{"package":"PREMIUM","units":20}]}`)
		createAllocation(t, f, `{"name":"ghost","filters":[{"type":"APPLICATION","operator":"ID_EQUALS","value":"999"}],"limits":[{"package":"PREMIUM","units":5}]}`)
		createAllocation(t, f, `{"name":"broad","filters":[{"type":"APPLICATION","operator":"REGEX","value":"."}],"limits":[{"package":"PREMIUM","units":5}]}`)
		createAllocation(t, f, `{"name":"empty","filters":[{"type":"HOST","operator":"STARTS_WITH","value":"h"}],"limits":[]}`)
		wantGranted(t, register(t, f, agent{AgentID: "x", AgentType: "APP_AGENT", LicenseKey: a, Host: onHost("h1", 4), Application: app(1, "shop")}, ""), 201)
		wantGranted(t, register(t, f, agent{AgentID: "y", AgentType: "APP_AGENT", LicenseKey: b, Host: onHost("h1", 4), Application: app(2, "pay")}, ""), 201)
		r := f.do(t, admin("GET", lv1+"/allocation/lint", nil))
		if r.status != http.StatusOK {
			t.Fatalf("lint: %d %s", r.status, r.body)
		}
		var got []map[string]any
		if err := json.Unmarshal(r.body, &got); err != nil {
			t.Fatal(err)
		}
		by := map[string][]map[string]any{}
		for _, fd := range got {
			by[fd["code"].(string)] = append(by[fd["code"].(string)], fd)
		}
		if tw := by["HOST_COUNTED_TWICE"]; len(tw) != 1 || fmt.Sprint(tw[0]["hosts"]) != "[h1]" || tw[0]["extraUnits"] != 4.0 ||
			len(tw[0]["allocations"].([]any)) != 2 || tw[0]["severity"] != "warning" {
			t.Errorf("HOST_COUNTED_TWICE: %v", tw)
		}
		if nm := by["FILTER_MATCHES_NOTHING"]; len(nm) != 1 || !strings.Contains(nm[0]["message"].(string), `"ghost"`) {
			t.Errorf("FILTER_MATCHES_NOTHING: %v", nm)
		}
		if nl := by["NO_LIMITS"]; len(nl) != 1 || !strings.Contains(nl[0]["message"].(string), `"empty"`) {
			t.Errorf("NO_LIMITS: %v", nl)
		}
		if sh := by["SHADOWED_BY_EARLIER"]; len(sh) != 1 || !strings.Contains(sh[0]["message"].(string), `"empty"`) {
			t.Errorf("SHADOWED_BY_EARLIER: %v", sh)
		}
		if ex := by["EXPIRES_SOON"]; len(ex) != 1 { // the 30-day trial
			t.Errorf("EXPIRES_SOON: %v", ex)
		}
		if rb := by["REGEX_TOO_BROAD"]; len(rb) != 1 || !strings.Contains(rb[0]["message"].(string), `"broad"`) {
			t.Errorf("REGEX_TOO_BROAD: %v", rb)
		}
		if len(by["LIMIT_BELOW_USAGE"]) != 0 {
			t.Errorf("unexpected findings: %s", r.body)
		}
		// A viewer may lint; another account's path is a 404.
		if r := f.do(t, admin("GET", "/controller/licensing/v1/account/2/allocation/lint", nil)); r.status != http.StatusNotFound {
			t.Errorf("another account: %d", r.status)
		}
	})
}

// dbCounts is the row count of every table that a write could touch.
func dbCounts(t *testing.T, st *store.Store) map[string]int {
	t.Helper()
	db, err := st.DB()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, tbl := range []string{"allocations", "leases", "host_charges", "pool_usage", "usage_events", "accounts", "pools"} {
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM " + tbl).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", tbl, err)
		}
		out[tbl] = n
	}
	var rev int64
	if err := db.QueryRow("SELECT revision FROM accounts WHERE id = 1").Scan(&rev); err != nil {
		t.Fatal(err)
	}
	out["revision"] = int(rev)
	return out
}

// TestWhatIf: lowering an allocation of two 16-vCPU hosts to 16 units
// names the most recently charged host's leases as no longer fitting and
// writes nothing; the real PUT then gives the predicted figures. A filter
// excluding an application names its leases; a larger limit lists the
// week's refusals that would fit; a change a write would refuse says so.
func TestWhatIf(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st, longLeases)
		withLicence(t, f, 100)
		key := createAllocation(t, f, `{"name":"A","filters":[{"type":"APPLICATION","operator":"ID_EQUALS","value":"1"},`+
			`{"type":"APPLICATION","operator":"ID_EQUALS","value":"2"}],"limits":[{"package":"PREMIUM","units":32}]}`)
		id := allocationID(t, f, key)
		wantGranted(t, register(t, f, agent{AgentID: "old", AgentType: "APP_AGENT", LicenseKey: key, Host: onHost("h-old", 16), Application: app(1, "one")}, ""), 201)
		f.clock.Advance(time.Minute)
		wantGranted(t, register(t, f, agent{AgentID: "new", AgentType: "APP_AGENT", LicenseKey: key, Host: onHost("h-new", 16), Application: app(2, "two")}, ""), 201)
		f.clock.Advance(time.Minute)
		refusal(t, register(t, f, agent{AgentID: "late", AgentType: "APP_AGENT", LicenseKey: key, Host: onHost("h-late", 8), Application: app(1, "one")}, ""), 409, "NO_MORE_UNITS")

		whatIf := func(body string) map[string]any {
			t.Helper()
			r := f.do(t, admin("POST", lv1+"/allocation/what-if", json.RawMessage(body)))
			if r.status != http.StatusOK {
				t.Fatalf("what-if: %d %s", r.status, r.body)
			}
			return r.json(t)
		}
		agents := func(v any) []string {
			var out []string
			for _, l := range v.([]any) {
				out = append(out, l.(map[string]any)["agentId"].(string))
			}
			return out
		}
		lower := `{"name":"A","filters":[{"type":"APPLICATION","operator":"ID_EQUALS","value":"1"},` +
			`{"type":"APPLICATION","operator":"ID_EQUALS","value":"2"}],"limits":[{"package":"PREMIUM","units":16}]}`
		before, metricsBefore := dbCounts(t, st), grepLines(string(f.do(t, req{method: "GET", path: "/metrics"}).body), "lc_pool_")
		res := whatIf(`{"changes":[{"update":` + strings.Replace(lower, `{"name"`, `{"id":"`+id+`","name"`, 1) + `}]}`)
		if got := agents(res["noLongerFitting"]); fmt.Sprint(got) != "[new]" {
			t.Errorf("no longer fitting: %v, want the most recently charged host's lease", got)
		}
		if len(res["noLongerMatching"].([]any)) != 0 || res["refused"] != nil {
			t.Errorf("what-if: %v", res)
		}
		var predicted map[string]any
		for _, p := range res["allocations"].([]any) {
			if p := p.(map[string]any); p["allocationId"] == id {
				predicted = p
			}
		}
		if predicted == nil || fmt.Sprint(predicted["before"]) != "map[limit:32 used:32]" || fmt.Sprint(predicted["after"]) != "map[limit:16 used:16]" {
			t.Errorf("predicted: %v", res["allocations"])
		}
		// The Default gets the 16 units back: 100 - 32 before, 100 - 16 after.
		var def map[string]any
		for _, p := range res["allocations"].([]any) {
			if p := p.(map[string]any); p["name"] == "Default" && p["package"] == "PREMIUM" {
				def = p
			}
		}
		if def == nil || def["before"].(map[string]any)["limit"] != 68.0 || def["after"].(map[string]any)["limit"] != 84.0 {
			t.Errorf("the Default before and after: %v", def)
		}
		if after := dbCounts(t, st); !cmp.Equal(before, after) {
			t.Errorf("the what-if wrote: %v, then %v", before, after)
		}
		if m := grepLines(string(f.do(t, req{method: "GET", path: "/metrics"}).body), "lc_pool_"); m != metricsBefore {
			t.Errorf("metrics changed:\n%s\n%s", metricsBefore, m)
		}
		// ?dryRun=true on the PUT answers the same.
		if r := f.do(t, admin("PUT", lv1+"/allocation/"+id+"?dryRun=true", json.RawMessage(lower))); r.status != 200 ||
			fmt.Sprint(agents(r.json(t)["noLongerFitting"])) != "[new]" {
			t.Errorf("dryRun PUT: %d %s", r.status, r.body)
		}
		// Excluding application 2 names its lease.
		only1 := `{"name":"A","filters":[{"type":"APPLICATION","operator":"ID_EQUALS","value":"1"}],"limits":[{"package":"PREMIUM","units":32}]}`
		res = whatIf(`{"changes":[{"update":` + strings.Replace(only1, `{"name"`, `{"id":"`+id+`","name"`, 1) + `}]}`)
		if got := agents(res["noLongerMatching"]); fmt.Sprint(got) != "[new]" {
			t.Errorf("no longer matching: %v", got)
		}
		// A larger limit grants the refusal of the week.
		more := `{"name":"A","filters":[{"type":"APPLICATION","operator":"ID_EQUALS","value":"1"},` +
			`{"type":"APPLICATION","operator":"ID_EQUALS","value":"2"}],"limits":[{"package":"PREMIUM","units":40}]}`
		res = whatIf(`{"changes":[{"update":` + strings.Replace(more, `{"name"`, `{"id":"`+id+`","name"`, 1) + `}]}`)
		if got := agents(res["wouldNowBeGranted"]); fmt.Sprint(got) != "[late]" {
			t.Errorf("would now be granted: %v", got)
		}
		// The refused agent reported 8 vCPU: 6 free units do not take it.
		barely := strings.Replace(more, `"units":40`, `"units":38`, 1)
		res = whatIf(`{"changes":[{"update":` + strings.Replace(barely, `{"name"`, `{"id":"`+id+`","name"`, 1) + `}]}`)
		if got := res["wouldNowBeGranted"].([]any); len(got) != 0 {
			t.Errorf("6 free units grant an 8-vCPU host: %v", got)
		}
		// dryRun is a boolean however it is spelled, never a real write;
		// a DELETE answers the what-if of the deletion.
		for _, q := range []string{"?dryRun=1", "?dryRun=TRUE", "?dryRun=true&dryRun=t"} {
			if r := f.do(t, admin("POST", lv1+"/allocation"+q, json.RawMessage(`{"name":"dry","limits":[{"package":"PREMIUM","units":1}]}`))); r.status != 200 {
				t.Errorf("POST %s: %d %s", q, r.status, r.body)
			}
		}
		for _, q := range []string{"?dryRun=yes", "?dryrun=true", "?dryRun=true&dryRun=false"} {
			wantProblem(t, f.do(t, admin("POST", lv1+"/allocation"+q, json.RawMessage(`{"name":"dry","limits":[{"package":"PREMIUM","units":1}]}`))), 400, "VALIDATION_FAILED")
		}
		if r := f.do(t, admin("DELETE", lv1+"/allocation/"+id+"?dryRun=true", nil)); r.status != 200 ||
			fmt.Sprint(agents(r.json(t)["noLongerMatching"])) != "[new old]" {
			t.Errorf("DELETE ?dryRun=true: %d %s", r.status, r.body)
		}
		// A change a write refuses says why; an unknown id is a 404.
		res = whatIf(`{"changes":[{"create":{"name":"huge","limits":[{"package":"PREMIUM","units":90}]}}]}`)
		if p, _ := res["refused"].(map[string]any); p == nil || p["code"] != "OVER_ALLOCATION" || p["status"] != 409.0 {
			t.Errorf("refused: %v", res["refused"])
		}
		wantProblem(t, f.do(t, admin("POST", lv1+"/allocation/what-if", json.RawMessage(`{"changes":[{"delete":"nope"}]}`))), 404, "ALLOCATION_NOT_FOUND")
		wantProblem(t, f.do(t, admin("POST", lv1+"/allocation/what-if", json.RawMessage(`{"changes":[]}`))), 400, "VALIDATION_FAILED")
		if after := dbCounts(t, st); !cmp.Equal(before, after) {
			t.Errorf("the what-ifs wrote: %v, then %v", before, after)
		}

		// Once the refused agent holds a lease elsewhere, no what-if grants
		// it again; another allocation's leases are not part of a change
		// that leaves it alone.
		other := createAllocation(t, f, `{"name":"B","limits":[{"package":"PREMIUM","units":8}]}`)
		wantGranted(t, register(t, f, agent{AgentID: "late", AgentType: "APP_AGENT", LicenseKey: other, Host: onHost("h-late", 8), Application: app(1, "one")}, ""), 201)
		res = whatIf(`{"changes":[{"update":` + strings.Replace(more, `{"name"`, `{"id":"`+id+`","name"`, 1) + `}]}`)
		if got := res["wouldNowBeGranted"].([]any); len(got) != 0 {
			t.Errorf("would now grant an agent that holds a lease: %v", got)
		}
		res = whatIf(`{"changes":[{"update":` + strings.Replace(only1, `{"name"`, `{"id":"`+id+`","name"`, 1) + `}]}`)
		if got := agents(res["noLongerMatching"]); fmt.Sprint(got) != "[new]" {
			t.Errorf("no longer matching, with a lease in another allocation: %v", got)
		}

		// The real PUT is accepted, as the what-if said (refused: null).
		if r := f.do(t, admin("PUT", lv1+"/allocation/"+id, json.RawMessage(lower))); r.status != 200 {
			t.Fatalf("PUT: %d %s", r.status, r.body)
		}
		r := f.do(t, admin("GET", lv1+"/allocation/"+id, nil))
		if !strings.Contains(string(r.body), `"units":16`) {
			t.Errorf("after the PUT: %s", r.body)
		}
	})
}

// TestForecastUsesTheLiveLimit: right after a limit changes, the forecast
// counts against the new limit, not the last sample's.
func TestForecastUsesTheLiveLimit(t *testing.T) {
	st := storetest.Engines()[0].Open(t)
	before, _, f := forecastFixture(t, st, func(d int) (int, int) { return 10 + 2*d, 0 })
	all := f.do(t, admin("GET", allocations+"?name=growing", nil)).jsonList(t)
	id := all[0]["id"].(string)
	if r := f.do(t, admin("PUT", allocations+"/"+id, `{"name":"growing","limits":[{"package":"PREMIUM","units":60}]}`)); r.status != 200 {
		t.Fatalf("raise the limit: %d %s", r.status, r.body)
	}
	after := f.do(t, admin("GET", allocations+"/"+id+"/forecast", nil)).json(t)["packages"].([]any)[0].(map[string]any)
	if after["limit"] != 60.0 || after["used"] != before["used"] {
		t.Fatalf("after raising the limit to 60: %v (before %v)", after, before)
	}
	b, _ := time.Parse(time.RFC3339, before["exhaustsAt"].(string))
	a, _ := time.Parse(time.RFC3339, after["exhaustsAt"].(string))
	if days := a.Sub(b).Hours() / 24; math.Abs(days-10) > 1 {
		t.Errorf("20 more units at 2 a day move the exhaustion by %.1f days, want 10", days)
	}
}
