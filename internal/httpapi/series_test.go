package httpapi_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lcorp/licensing-controller/internal/engine"
	"github.com/lcorp/licensing-controller/internal/pgtest"
	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
	"github.com/lcorp/licensing-controller/internal/usage"
)

const usageV1 = "/controller/licensing/v1/usage"

// longLeases keeps leases alive for the whole scripted history, so that
// tests move the clock without heartbeats.
func longLeases(o *engine.Options) { o.LeaseTTL = 1000 * time.Hour }

// seriesPath is a series URL with its query.
func seriesPath(path string, from, to time.Time, minutes int, extra string) string {
	return fmt.Sprintf("%s%s?dateFrom=%s&dateTo=%s&granularityMinutes=%d%s", usageV1, path,
		url.QueryEscape(from.Format(time.RFC3339)), url.QueryEscape(to.Format(time.RFC3339)), minutes, extra)
}

// getSeries reads a series and fails the test unless it answers 200.
func getSeries(t *testing.T, f *fixture, path string) map[string]any {
	t.Helper()
	r := f.do(t, admin("GET", path, nil))
	if r.status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, r.status, r.body)
	}
	return r.json(t)
}

// stat is a bucket statistic as the API writes it.
type stat struct {
	Min, Max, Avg float64
	Count         int
}

// near compares statistics as the API writes them: LICENSE_UNIT values are
// integers, avg rounded half away from zero (math.Round), so an expected
// average is compared rounded.
func (s stat) near(o stat) bool {
	return s.Count == o.Count && s.Min == o.Min && s.Max == o.Max && math.Abs(math.Round(s.Avg)-math.Round(o.Avg)) < 1e-9
}

func statOf(t *testing.T, v any) stat {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("not a statistic: %v", v)
	}
	return stat{Min: m["min"].(float64), Max: m["max"].(float64), Avg: m["avg"].(float64), Count: int(m["count"].(float64))}
}

// point is one bucket of one package and usage type.
type point struct {
	ts          string
	provisioned stat
	used        stat
	regs        map[string]stat // nil without registrations
}

// pointsOf returns the points of a package's usage type, in response order.
func pointsOf(t *testing.T, series map[string]any, pkg, usageType string) []point {
	t.Helper()
	for _, p := range series["packages"].([]any) {
		pm := p.(map[string]any)
		if pm["name"] != pkg {
			continue
		}
		for _, u := range pm["unitUsages"].([]any) {
			um := u.(map[string]any)
			if um["usageType"] != usageType {
				continue
			}
			var out []point
			for _, d := range um["data"].([]any) {
				dm := d.(map[string]any)
				pt := point{ts: dm["timestamp"].(string), provisioned: statOf(t, dm["provisioned"]), used: statOf(t, dm["used"])}
				if regs, ok := dm["registrations"].([]any); ok {
					pt.regs = map[string]stat{}
					for _, r := range regs {
						rm := r.(map[string]any)
						pt.regs[rm["type"].(string)] = statOf(t, rm["registered"])
					}
				}
				out = append(out, pt)
			}
			return out
		}
	}
	return nil
}

// sample runs one sampling tick and insists that it sampled.
func sample(t *testing.T, f *fixture) {
	t.Helper()
	ok, err := f.sampler.Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatalf("sampling time %s was sampled already", f.clock.Now())
	}
}

// postLicence adds a signed licence and returns its id.
func postLicence(t *testing.T, f *fixture, premium int) string {
	t.Helper()
	r := f.do(t, admin("POST", lv1+"/licenses", map[string]string{"payload": signed(t, "customer1", "2099-12-31T23:59:59Z", premium)}))
	if r.status != http.StatusCreated {
		t.Fatalf("licence: %d %s", r.status, r.body)
	}
	return r.json(t)["id"].(string)
}

func TestUsageSeriesAccountAllocationAndLicence(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st, longLeases)
		t0 := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
		f.clock.Set(t0)
		licID := postLicence(t, f, 100) // PREMIUM 100, INFRA 50
		keyA := createAllocation(t, f, limits("team-a", false, false, `[]`, `[{"package":"PREMIUM","units":40}]`))
		keyB := createAllocation(t, f, limits("team-b", false, false, `[]`, `[{"package":"PREMIUM","units":30}]`))
		keyC := createAllocation(t, f, limits("infra", false, false, `[]`, `[{"package":"INFRA","units":20}]`))
		reg := func(id, typ, key, host string, vcpu int) {
			t.Helper()
			wantGranted(t, register(t, f, agent{AgentID: id, AgentType: typ, LicenseKey: key, Host: onHost(host, vcpu)}, ""), 201)
		}
		// "shared" is charged by both allocations: the account counts it once.
		const shared, a1, b1, a2 = 8, 4, 16, 2
		reg("shared-a", "APP_AGENT", keyA, "shared", shared)
		reg("shared-b", "APP_AGENT", keyB, "shared", shared)
		reg("a1", "APP_AGENT", keyA, "host-a1", a1)
		reg("b1-java", "APP_AGENT", keyB, "host-b1", b1)
		reg("b1-php", "PHP_APP_AGENT", keyB, "host-b1", b1)
		// C charges "shared" in INFRA: the account counts it in PREMIUM only.
		reg("shared-ma", "MACHINE_AGENT", keyC, "shared", shared)
		sample(t, f)
		f.clock.Advance(5 * time.Minute)
		sample(t, f)
		f.clock.Advance(5 * time.Minute)
		reg("a2", "APP_AGENT", keyA, "host-a2", a2)
		reg("a1-node", "NODEJS_APP_AGENT", keyA, "host-a1", a1) // same host: no new charge
		sample(t, f)
		if ok, err := f.sampler.Sample(context.Background()); err != nil || ok {
			t.Fatalf("sampling the same interval twice: sampled=%v, %v", ok, err)
		}

		from, to := t0, t0.Add(time.Hour)
		acct := getSeries(t, f, seriesPath("/account/1", from, to, 60, ""))
		if acct["accountId"] != float64(1) || acct["licenseRule"] != nil {
			t.Errorf("account series header: %v", acct)
		}
		union := [3]float64{shared + a1 + b1, shared + a1 + b1, shared + a1 + b1 + a2}
		want := []point{{ts: t0.Format(time.RFC3339), provisioned: stat{100, 100, 100, 3},
			used: stat{union[0], union[2], (union[0] + union[1] + union[2]) / 3, 3}}}
		if diff := cmp.Diff(want, pointsOf(t, acct, "PREMIUM", "LICENSE_UNIT"), cmp.AllowUnexported(point{}), cmp.Comparer(stat.near)); diff != "" {
			t.Errorf("account PREMIUM (-want +got):\n%s", diff)
		}
		if got := pointsOf(t, acct, "INFRA", "LICENSE_UNIT"); len(got) != 1 || got[0].provisioned != (stat{50, 50, 50, 3}) || got[0].used.Max != 0 {
			t.Errorf("account INFRA: %+v, want 50 provisioned and nothing used", got)
		}
		infra := pointsOf(t, getSeries(t, f, seriesPath("/account/1/allocation/"+keyC, from, to, 60, "")), "INFRA", "LICENSE_UNIT")
		if len(infra) != 1 || infra[0].provisioned != (stat{20, 20, 20, 3}) || infra[0].used != (stat{shared, shared, shared, 3}) {
			t.Errorf("allocation infra: %+v", infra)
		}
		// At 5 minutes, one point per sample.
		fine := pointsOf(t, getSeries(t, f, seriesPath("/account/1", from, to, 5, "")), "PREMIUM", "LICENSE_UNIT")
		if len(fine) != 3 || fine[2].ts != t0.Add(10*time.Minute).Format(time.RFC3339) || fine[2].used != (stat{union[2], union[2], union[2], 1}) {
			t.Errorf("account PREMIUM at 5 minutes: %+v", fine)
		}

		alloc := getSeries(t, f, seriesPath("/account/1/allocation/"+keyA, from, to, 60, ""))
		rule, _ := alloc["licenseRule"].(map[string]any)
		if rule["name"] != "team-a" || rule["licenseKey"] != keyA || rule["id"] == "" {
			t.Errorf("allocation licenseRule: %v", alloc["licenseRule"])
		}
		usedA := [3]float64{shared + a1, shared + a1, shared + a1 + a2}
		want = []point{{ts: t0.Format(time.RFC3339), provisioned: stat{40, 40, 40, 3},
			used: stat{usedA[0], usedA[2], (usedA[0] + usedA[1] + usedA[2]) / 3, 3}}}
		if diff := cmp.Diff(want, pointsOf(t, alloc, "PREMIUM", "LICENSE_UNIT"), cmp.AllowUnexported(point{}), cmp.Comparer(stat.near)); diff != "" {
			t.Errorf("allocation PREMIUM (-want +got):\n%s", diff)
		}

		// The licence-id variants answer the same.
		if diff := cmp.Diff(acct, getSeries(t, f, seriesPath("/license/"+licID, from, to, 60, ""))); diff != "" {
			t.Errorf("licence series differs from the account's (-account +licence):\n%s", diff)
		}
		if diff := cmp.Diff(alloc, getSeries(t, f, seriesPath("/license/"+licID+"/allocation/"+keyA, from, to, 60, ""))); diff != "" {
			t.Errorf("licence allocation series differs (-account +licence):\n%s", diff)
		}
		// So does the licenseId that /info shows (the payload's, not the document's).
		payloadID, _ := f.do(t, admin("GET", lv1+"/info", nil)).json(t)["licenseId"].(string)
		if payloadID == "" || payloadID == licID {
			t.Fatalf("/info licenseId %q: want the payload's id, not the document's %q", payloadID, licID)
		}
		if diff := cmp.Diff(acct, getSeries(t, f, seriesPath("/license/"+payloadID, from, to, 60, ""))); diff != "" {
			t.Errorf("series by the payload licenseId differs (-account +licence):\n%s", diff)
		}

		// Entity types and unit-hours when asked.
		rich := getSeries(t, f, seriesPath("/account/1", from, to, 60, "&includeEntityTypes=true&includeConsumptionBased=true"))
		pts := pointsOf(t, rich, "PREMIUM", "LICENSE_UNIT")
		if len(pts) != 1 {
			t.Fatalf("rich account series: %v", rich)
		}
		wantRegs := map[string]stat{
			"APP_AGENT":        {4, 5, 13.0 / 3, 3}, // shared-a, shared-b, a1, b1-java; then a2
			"PHP_APP_AGENT":    {1, 1, 1, 3},
			"NODEJS_APP_AGENT": {0, 1, 1.0 / 3, 3}, // only in the last sample
			"MACHINE_AGENT":    {1, 1, 1, 3},       // its host counts in PREMIUM
		}
		if diff := cmp.Diff(wantRegs, pts[0].regs, cmp.Comparer(stat.near)); diff != "" {
			t.Errorf("registrations (-want +got):\n%s", diff)
		}
		hours := pointsOf(t, rich, "PREMIUM", "UNIT_HOURS")
		wantUH := (union[0] + union[1] + union[2]) * 5 / 60
		if len(hours) != 1 || math.Abs(hours[0].used.Max-wantUH) > 1e-9 || hours[0].regs != nil {
			t.Errorf("UNIT_HOURS = %+v, want used %v unit-hours", hours, wantUH)
		}
		if infra := pointsOf(t, rich, "INFRA", "LICENSE_UNIT"); len(infra) != 1 || len(infra[0].regs) != 0 {
			t.Errorf("account INFRA registrations: %+v, want none", infra)
		}
		if pointsOf(t, acct, "PREMIUM", "UNIT_HOURS") != nil || pts[0].regs == nil || pointsOf(t, acct, "PREMIUM", "LICENSE_UNIT")[0].regs != nil {
			t.Error("entity types or unit-hours without being asked")
		}

		// An empty window: packages and data are arrays, never null.
		empty := f.do(t, admin("GET", seriesPath("/account/1", t0.Add(-48*time.Hour), t0.Add(-47*time.Hour), 60, ""), nil))
		if empty.status != 200 || string(empty.body) != `{"accountId":1,"licenseRule":null,"packages":[]}` {
			t.Errorf("empty window: %d %s", empty.status, empty.body)
		}
	})
}

func TestUsageSeriesValidationAndNotFound(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		key := createAllocation(t, f, limits("a", false, false, `[]`, `[{"package":"PREMIUM","units":10}]`))
		from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
		ok := func(q url.Values) url.Values {
			base := url.Values{"dateFrom": {from.Format(time.RFC3339)}, "dateTo": {from.Add(24 * time.Hour).Format(time.RFC3339)},
				"granularityMinutes": {"60"}}
			for k, v := range q {
				if v[0] == "" {
					base.Del(k)
				} else {
					base[k] = v
				}
			}
			return base
		}
		for _, tc := range []struct {
			name  string
			q     url.Values
			field string
		}{
			{"dateFrom not RFC 3339", url.Values{"dateFrom": {"2026-11-01"}}, "dateFrom"},
			{"dateTo garbage", url.Values{"dateTo": {"tomorrow"}}, "dateTo"},
			{"to before from", url.Values{"dateTo": {from.Add(-time.Hour).Format(time.RFC3339)}}, "dateTo"},
			{"to equals from", url.Values{"dateTo": {from.Format(time.RFC3339)}}, "dateTo"},
			{"more than 366 days", url.Values{"dateTo": {from.Add(367 * 24 * time.Hour).Format(time.RFC3339)}, "granularityMinutes": {"1440"}}, "dateTo"},
			{"granularity not a number", url.Values{"granularityMinutes": {"hourly"}}, "granularityMinutes"},
			{"granularity zero", url.Values{"granularityMinutes": {"0"}}, "granularityMinutes"},
			{"granularity negative", url.Values{"granularityMinutes": {"-60"}}, "granularityMinutes"},
			{"granularity not a multiple of 5", url.Values{"granularityMinutes": {"7"}}, "granularityMinutes"},
			{"more than 10 000 points", url.Values{"dateTo": {from.Add(366 * 24 * time.Hour).Format(time.RFC3339)}, "granularityMinutes": {"5"}}, "granularityMinutes"},
			{"includeEntityTypes not a boolean", url.Values{"includeEntityTypes": {"maybe"}}, "includeEntityTypes"},
			{"includeConsumptionBased not a boolean", url.Values{"includeConsumptionBased": {"2"}}, "includeConsumptionBased"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for _, p := range []string{"/account/1", "/account/1/allocation/" + key} {
					m := wantProblem(t, f.do(t, admin("GET", usageV1+p+"?"+ok(tc.q).Encode(), nil)), 400, "VALIDATION_FAILED")
					if diff := cmp.Diff([]string{tc.field}, fieldsOf(m)); diff != "" {
						t.Errorf("%s: fields (-want +got):\n%s", p, diff)
					}
				}
			})
		}
		q := "?" + ok(nil).Encode()
		if r := f.do(t, admin("GET", usageV1+"/account/1"+q, nil)); r.status != 200 {
			t.Fatalf("valid query: %d %s", r.status, r.body)
		}
		// The limits themselves are fine: 366 days, 10 000 points, any multiple of 5 minutes.
		for _, q := range []url.Values{
			{"dateTo": {from.Add(366 * 24 * time.Hour).Format(time.RFC3339)}, "granularityMinutes": {"1440"}},
			{"dateTo": {from.Add(10000 * 5 * time.Minute).Format(time.RFC3339)}, "granularityMinutes": {"5"}},
			{"granularityMinutes": {"15"}},
			{"dateFrom": {"2026-11-01T02:00:00+02:00"}, "includeEntityTypes": {"false"}, "includeConsumptionBased": {"true"}},
		} {
			if r := f.do(t, admin("GET", usageV1+"/account/1?"+ok(q).Encode(), nil)); r.status != 200 {
				t.Errorf("%v: %d %s", q, r.status, r.body)
			}
		}
		m := wantProblem(t, f.do(t, admin("GET", usageV1+"/account/1?"+ok(url.Values{"dateTo": {from.Add(10001 * 5 * time.Minute).Format(time.RFC3339)},
			"granularityMinutes": {"5"}}).Encode(), nil)), 400, "VALIDATION_FAILED")
		if diff := cmp.Diff([]string{"granularityMinutes"}, fieldsOf(m)); diff != "" {
			t.Errorf("10 001 points: fields (-want +got):\n%s", diff)
		}
		wantProblem(t, f.do(t, admin("GET", usageV1+"/account/1/allocation/no-such-key"+q, nil)), 404, "ALLOCATION_NOT_FOUND")
		wantProblem(t, f.do(t, admin("GET", usageV1+"/license/no-such-licence"+q, nil)), 404, "LICENSE_NOT_FOUND")
		wantProblem(t, f.do(t, admin("GET", usageV1+"/license/no-such-licence/allocation/"+key+q, nil)), 404, "LICENSE_NOT_FOUND")
		wantProblem(t, f.do(t, admin("GET", usageV1+"/account/2"+q, nil)), 404, "ACCOUNT_NOT_FOUND")
		if m := wantProblem(t, f.do(t, admin("GET", usageV1+"/account/abc"+q, nil)), 400, "VALIDATION_FAILED"); fieldsOf(m)[0] != "accountId" {
			t.Errorf("a malformed account id names %v", fieldsOf(m))
		}
		wantProblem(t, f.do(t, admin("GET", usageV1+"/account/2/allocation/"+key+q, nil)), 404, "ACCOUNT_NOT_FOUND")

		// LICENSE_USAGE is required: an agent registrar has none.
		if r := f.do(t, admin("POST", "/controller/api/accounts/1/users", map[string]any{"name": "reg", "role": "agent-registrar", "password": "reg-password"})); r.status != 201 {
			t.Fatalf("user: %d %s", r.status, r.body)
		}
		wantProblem(t, f.do(t, req{method: "GET", path: usageV1 + "/account/1" + q, user: "reg@customer1", pass: "reg-password"}), 403, "PERMISSION_DENIED")
		if r := f.do(t, req{method: "GET", path: usageV1 + "/account/1" + q}); r.status != 401 {
			t.Errorf("anonymous: %d", r.status)
		}
	})
}

// history is the scripted three days of TestUsageSeriesScriptedHistory.
type history struct {
	t0 time.Time
	// samples taken: step → (provisioned, used, registered app agents)
	prov, used, agents map[int]float64
}

const historySteps = 3 * 288 // three days of 5-minute intervals

// hostsAt is the number of 2-vCPU hosts at step i: 1-4 in half-hour steps,
// one more each day.
func hostsAt(i int) int { return 1 + (i/6)%4 + i/288 }

// skipped are the intervals the sampler missed (restarts): a whole hour
// (09:00-10:00 of day 0) and one interval in every 50.
func skipped(i int) bool { return (i >= 108 && i < 120) || i%50 == 3 }

// expect aggregates the history's samples into buckets of g minutes from
// the epoch, as the API must: the reference the responses are checked against.
func (h history) expect(from, to time.Time, g int, account bool) map[string]point {
	out := map[string]point{}
	step := time.Duration(g) * time.Minute
	for i := range historySteps {
		if _, ok := h.used[i]; !ok {
			continue
		}
		at := h.t0.Add(time.Duration(i) * 5 * time.Minute)
		if at.Before(from) || !at.Before(to) {
			continue
		}
		// Buckets sit on clock boundaries: multiples of the step since the epoch.
		ts := time.Unix(at.Unix()/int64(step/time.Second)*int64(step/time.Second), 0).UTC().Format(time.RFC3339)
		prov := h.prov[i]
		if account {
			prov = 200 // the licensed units
		}
		p, ok := out[ts]
		if !ok {
			p = point{ts: ts, provisioned: stat{Min: prov, Max: prov}, used: stat{Min: h.used[i], Max: h.used[i]},
				regs: map[string]stat{"APP_AGENT": {Min: h.agents[i], Max: h.agents[i]}}}
		}
		add := func(s *stat, v float64) {
			s.Min, s.Max, s.Avg, s.Count = min(s.Min, v), max(s.Max, v), s.Avg+v, s.Count+1 // Avg holds the sum
		}
		add(&p.provisioned, prov)
		add(&p.used, h.used[i])
		r := p.regs["APP_AGENT"]
		add(&r, h.agents[i])
		p.regs["APP_AGENT"] = r
		out[ts] = p
	}
	for k, p := range out {
		for _, s := range []*stat{&p.provisioned, &p.used} {
			s.Avg /= float64(s.Count)
		}
		r := p.regs["APP_AGENT"]
		r.Avg /= float64(r.Count)
		p.regs["APP_AGENT"] = r
		out[k] = p
	}
	return out
}

// TestUsageSeriesScriptedHistory samples a scripted three-day history with
// gaps and a limit change, then checks min/max/avg/count of every bucket at
// 5, 60, 120 and 1440 minutes, aligned and not aligned to the rollups,
// against the script; and that the rollup and raw paths answer alike.
func TestUsageSeriesScriptedHistory(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st, longLeases)
		ctx := context.Background()
		t0 := time.Now().UTC().Truncate(24 * time.Hour).Add(-3 * 24 * time.Hour)
		f.clock.Set(t0)
		postLicence(t, f, 200)
		r := f.do(t, admin("POST", allocations, limits("hist", false, false, `[]`, `[{"package":"PREMIUM","units":100}]`)))
		if r.status != 201 {
			t.Fatalf("allocation: %d %s", r.status, r.body)
		}
		alloc := r.json(t)
		key := alloc["licenseKey"].(string)
		h := history{t0: t0, prov: map[int]float64{}, used: map[int]float64{}, agents: map[int]float64{}}
		live := []string{} // registration ids, host k at index k
		limit := 100.0
		for i := range historySteps {
			f.clock.Set(t0.Add(time.Duration(i) * 5 * time.Minute))
			if i == 288+144 { // day 1, 12:00: the limit grows
				r := f.do(t, admin("PUT", allocations+"/"+alloc["id"].(string), limits("hist", false, false, `[]`, `[{"package":"PREMIUM","units":120}]`)))
				if r.status != 200 {
					t.Fatalf("update allocation: %d %s", r.status, r.body)
				}
				limit = 120
			}
			for len(live) < hostsAt(i) {
				k := len(live)
				d := wantGranted(t, register(t, f, agent{AgentID: fmt.Sprintf("agent-%d", k), AgentType: "APP_AGENT", LicenseKey: key,
					Host: onHost(fmt.Sprintf("h-%d", k), 2)}, ""), 201)
				live = append(live, d["registrationId"].(string))
			}
			for len(live) > hostsAt(i) {
				if r := f.do(t, admin("DELETE", registrations+"/"+live[len(live)-1], nil)); r.status != 204 {
					t.Fatalf("release: %d %s", r.status, r.body)
				}
				live = live[:len(live)-1]
			}
			if skipped(i) {
				continue
			}
			sample(t, f)
			h.prov[i], h.used[i], h.agents[i] = limit, float64(2*hostsAt(i)), float64(hostsAt(i))
		}

		end := t0.Add(72 * time.Hour)
		for _, tc := range []struct {
			name     string
			from, to time.Time
			g        int
		}{
			{"raw 5 minutes", t0, end, 5},
			{"hourly", t0, end, 60},
			{"two-hourly", t0, end, 120},
			{"daily", t0, end, 1440},
			{"hourly not aligned", t0.Add(30 * time.Minute), end.Add(-10 * time.Minute), 60},
			{"daily from an hour, raw tail", t0.Add(time.Hour), end.Add(-35 * time.Minute), 1440},
			{"45 minutes", t0.Add(15 * time.Minute), end, 45},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for _, scope := range []struct {
					path    string
					account bool
				}{{"/account/1", true}, {"/account/1/allocation/" + key, false}} {
					got := pointsOf(t, getSeries(t, f, seriesPath(scope.path, tc.from, tc.to, tc.g, "&includeEntityTypes=true")), "PREMIUM", "LICENSE_UNIT")
					want := h.expect(tc.from, tc.to, tc.g, scope.account)
					if len(got) != len(want) {
						t.Errorf("%s: %d points, want %d", scope.path, len(got), len(want))
					}
					for j, p := range got {
						if j > 0 && got[j-1].ts >= p.ts {
							t.Errorf("%s: points not ascending at %s", scope.path, p.ts)
						}
						if diff := cmp.Diff(want[p.ts], p, cmp.AllowUnexported(point{}), cmp.Comparer(stat.near)); diff != "" {
							t.Errorf("%s bucket %s (-want +got):\n%s", scope.path, p.ts, diff)
						}
					}
				}
			})
		}

		// Spot checks that follow from the script alone.
		days := pointsOf(t, getSeries(t, f, seriesPath("/account/1/allocation/"+key, t0, end, 1440, "")), "PREMIUM", "LICENSE_UNIT")
		wantDays := []struct{ usedMin, usedMax, provMin, provMax float64 }{{2, 8, 100, 100}, {4, 10, 100, 120}, {6, 12, 120, 120}}
		wantCounts := []int{288 - 12 - 6, 288 - 6, 288 - 6}
		if len(days) != 3 {
			t.Fatalf("%d daily points, want 3", len(days))
		}
		for d, w := range wantDays {
			p := days[d]
			if p.ts != t0.Add(time.Duration(d)*24*time.Hour).Format(time.RFC3339) || p.used.Min != w.usedMin || p.used.Max != w.usedMax ||
				p.provisioned.Min != w.provMin || p.provisioned.Max != w.provMax || p.used.Count != wantCounts[d] {
				t.Errorf("day %d: %+v, want %+v and %d samples", d, p, w, wantCounts[d])
			}
		}
		hours := pointsOf(t, getSeries(t, f, seriesPath("/account/1", t0, t0.Add(24*time.Hour), 60, "")), "PREMIUM", "LICENSE_UNIT")
		if len(hours) != 23 {
			t.Errorf("day 0 has %d hourly points, want 23 (09:00 was not sampled)", len(hours))
		}
		for _, p := range hours {
			if p.ts == t0.Add(9*time.Hour).Format(time.RFC3339) {
				t.Errorf("a point for the hour without samples: %+v", p)
			}
		}

		// The rollups answer exactly as the raw samples do.
		for _, g := range []int{60, 120, 1440, 2880} {
			for _, span := range []struct{ from, to time.Time }{{t0, end}, {t0.Add(time.Hour), end.Add(-25 * time.Minute)}, {t0.Add(24 * time.Hour), end}} {
				for _, k := range []string{"", key} {
					q := usage.SeriesQuery{AccountID: 1, LicenseKey: k, From: span.from, To: span.to, GranularityMinutes: g,
						EntityTypes: true, ConsumptionBased: true}
					rolled, err := f.series.Query(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					q.RawOnly = true
					raw, err := f.series.Query(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					if diff := cmp.Diff(raw, rolled); diff != "" {
						t.Errorf("g=%d from %s key %q: rollups differ from raw samples (-raw +rollups):\n%s", g, span.from, k, diff)
					}
					if len(raw.Packages) == 0 {
						t.Errorf("g=%d from %s key %q: no data", g, span.from, k)
					}
				}
			}
		}
	})
}

// TestTwoSamplersOnePostgreSQL runs two service instances on one
// PostgreSQL: sampling the same interval at once stores it once, and under
// the leader lock with a hand-over in between every interval has exactly one
// sample (a gap is allowed, a duplicate is not).
func TestTwoSamplersOnePostgreSQL(t *testing.T) {
	dbURL := pgtest.URL(t)
	ctx := context.Background()
	st1, st2 := storetest.Open(t, store.Options{URL: dbURL}), storetest.Open(t, store.Options{URL: dbURL})
	f1, f2 := newFixture(t, st1, longLeases), newFixture(t, st2, longLeases)
	key := createAllocation(t, f1, limits("pair", false, false, `[]`, `[{"package":"PREMIUM","units":50}]`))
	wantGranted(t, register(t, f2, agent{AgentID: "a", AgentType: "APP_AGENT", LicenseKey: key, Host: onHost("h", 4)}, ""), 201)
	clk := &clock{now: time.Now().UTC().Truncate(24 * time.Hour).Add(-24 * time.Hour)}
	t0 := clk.Now()
	samplers := []*engine.Sampler{
		engine.NewSampler(st1.Series(), f1.lic, engine.SamplerOptions{Interval: 5 * time.Minute, Now: clk.Now, Poll: 5 * time.Millisecond}),
		engine.NewSampler(st2.Series(), f2.lic, engine.SamplerOptions{Interval: 5 * time.Minute, Now: clk.Now, Poll: 5 * time.Millisecond}),
	}

	// Both sample the same six intervals at the same time.
	for k := range 6 {
		clk.Set(t0.Add(time.Duration(k) * 5 * time.Minute))
		var (
			wg      sync.WaitGroup
			sampled [2]bool
		)
		for i, s := range samplers {
			wg.Go(func() {
				ok, err := s.Sample(ctx)
				if err != nil {
					t.Error(err)
				}
				sampled[i] = ok
			})
		}
		wg.Wait()
		if sampled[0] == sampled[1] {
			t.Fatalf("interval %d: sampled by instance 1: %v, by instance 2: %v; want exactly one", k, sampled[0], sampled[1])
		}
	}

	// Both run as leader candidates; the leader stops half-way.
	const key64 = 0x7365_7269_6573 // "series"
	var (
		led     [2]atomic.Bool
		cancels [2]context.CancelFunc
		wg      sync.WaitGroup
	)
	for i, s := range samplers {
		lctx, cancel := context.WithCancel(ctx)
		cancels[i] = cancel
		st := []*store.Store{st1, st2}[i]
		wg.Go(func() {
			st.Lead(lctx, key64, 20*time.Millisecond, slog.New(slog.DiscardHandler), func(ctx context.Context) {
				led[i].Store(true)
				s.Run(ctx)
			})
		})
	}
	start := t0.Add(time.Hour)
	samples := func() int {
		return len(pointsOf(t, getSeries(t, f1, seriesPath("/account/1", t0, start.Add(4*time.Hour), 5, "")), "PREMIUM", "LICENSE_UNIT"))
	}
	for k := range 40 {
		// Wait for this interval's sample (up to a second, so that a busy
		// machine does not turn a slow leader into a missing sample).
		before := samples()
		clk.Set(start.Add(time.Duration(k) * 5 * time.Minute))
		for deadline := time.Now().Add(time.Second); samples() == before && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		if k == 20 {
			leader := 0
			if led[1].Load() {
				leader = 1
			}
			cancels[leader]()
		}
	}
	cancels[0]()
	cancels[1]()
	wg.Wait()
	if !led[0].Load() || !led[1].Load() {
		t.Errorf("leadership: instance 1 led %v, instance 2 led %v; want a hand-over", led[0].Load(), led[1].Load())
	}

	for _, path := range []string{"/account/1", "/account/1/allocation/" + key} {
		fine := pointsOf(t, getSeries(t, f1, seriesPath(path, t0, start.Add(4*time.Hour), 5, "")), "PREMIUM", "LICENSE_UNIT")
		if len(fine) < 6+30 { // six concurrent ones, and most of the forty
			t.Errorf("%s: %d samples, want at least 36", path, len(fine))
		}
		for _, p := range fine {
			if p.used.Count != 1 {
				t.Errorf("%s: %d samples at %s, want 1", path, p.used.Count, p.ts)
			}
		}
		total := 0
		for _, p := range pointsOf(t, getSeries(t, f2, seriesPath(path, t0, start.Add(4*time.Hour), 60, "")), "PREMIUM", "LICENSE_UNIT") {
			total += p.used.Count
		}
		if total != len(fine) {
			t.Errorf("%s: hourly rollups count %d samples, the raw samples are %d", path, total, len(fine))
		}
	}
}

// TestUsageRetention prunes samples and rollups older than the cut, in
// small batches, and keeps the rest.
func TestUsageRetention(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st, longLeases)
		ctx := context.Background()
		key := createAllocation(t, f, limits("kept", false, false, `[]`, `[{"package":"PREMIUM","units":10}]`))
		wantGranted(t, register(t, f, agent{AgentID: "a", AgentType: "APP_AGENT", LicenseKey: key, Host: onHost("h", 4)}, ""), 201)
		t0 := time.Now().UTC().Truncate(24 * time.Hour).Add(-5 * 24 * time.Hour)
		for d := range 4 {
			for k := range 3 {
				f.clock.Set(t0.Add(time.Duration(d)*24*time.Hour + time.Duration(k)*5*time.Minute))
				sample(t, f)
			}
		}
		n, err := st.Series().PruneSamples(ctx, t0.Add(48*time.Hour), 2)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatal("nothing pruned")
		}
		end := t0.Add(4 * 24 * time.Hour)
		for _, g := range []int{5, 60, 1440} {
			pts := pointsOf(t, getSeries(t, f, seriesPath("/account/1/allocation/"+key, t0, end, g, "")), "PREMIUM", "LICENSE_UNIT")
			total := 0
			for _, p := range pts {
				total += p.used.Count
				if p.ts < t0.Add(48*time.Hour).Format(time.RFC3339) {
					t.Errorf("g=%d: a point before the cut survived: %+v", g, p)
				}
			}
			if total != 6 {
				t.Errorf("g=%d: %d samples after pruning, want 6 (days 2 and 3)", g, total)
			}
		}
		// The sampler prunes by its retention (400 days by default): nothing here is that old.
		if n, err := f.sampler.Prune(ctx); err != nil || n != 0 {
			t.Errorf("retention prune: %d rows, %v; want none", n, err)
		}
	})
}
