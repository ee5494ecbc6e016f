package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/lcorp/licensing-controller/internal/auth"
	"github.com/lcorp/licensing-controller/internal/licensing"
	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
)

const (
	lv1         = "/controller/licensing/v1/account/1"
	allocations = lv1 + "/allocation"
)

func signed(t testing.TB, account, exp string, premium int) string {
	t.Helper()
	p := fmt.Sprintf(`{"licenseId":"L-%d","customerId":"C1","customerName":"Customer One","accountName":%q,
	 "environment":"PROD","hardwareFingerprint":"ANY","type":"ONPREM-ACCOUNT","expirationDate":%q,
	 "packages":[{"packageName":"PREMIUM","type":"PAID","kind":"INFRASTRUCTURE_BASED","family":"APM","licenseUnits":%d,"properties":{}},
	             {"packageName":"INFRA","type":"PAID","kind":"INFRASTRUCTURE_BASED","family":"APM","licenseUnits":50,"properties":{}}],
	 "properties":{},"fallbackUnits":{"APP_AGENT":4}}`, premium, account, exp, premium)
	doc, err := licensing.Sign([]byte(p), signingKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(doc)
}

func TestInfoAndLicences(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		r := f.do(t, admin("GET", lv1+"/info", nil))
		info := r.json(t)
		if r.status != 200 || info["status"] != "LIMITED" {
			t.Fatalf("trial info: %d %s", r.status, r.body)
		}
		pkgs := map[string]float64{}
		for _, p := range info["packages"].([]any) {
			pm := p.(map[string]any)
			pkgs[pm["packageName"].(string)] = pm["licenseUnits"].(float64)
		}
		for _, n := range []string{"INFRA", "PREMIUM", "ENTERPRISE"} {
			if pkgs[n] != 100 {
				t.Errorf("trial %s units = %v, want 100", n, pkgs[n])
			}
		}

		doc := signed(t, "customer1", "2099-12-31T23:59:59Z", 100)
		r = f.do(t, admin("POST", lv1+"/licenses", map[string]string{"payload": doc}))
		if r.status != http.StatusCreated || r.header.Get("Location") == "" {
			t.Fatalf("post licence: %d %s", r.status, r.body)
		}
		id := r.json(t)["id"].(string)
		info = f.do(t, admin("GET", lv1+"/info", nil)).json(t)
		if info["status"] != "ACTIVE" || info["customerName"] != "Customer One" || info["licenseId"] != "L-100" {
			t.Errorf("info after upload = %v", info)
		}

		tampered := strings.Replace(doc, `"licenseUnits":100`, `"licenseUnits":1000`, 1)
		for name, body := range map[string]string{
			"tampered":      tampered,
			"expired":       signed(t, "customer1", "2020-01-01T00:00:00Z", 100),
			"wrong account": signed(t, "acme", "2099-12-31T23:59:59Z", 100),
			"not JSON":      "{{",
		} {
			m := wantProblem(t, f.do(t, admin("POST", lv1+"/licenses", map[string]string{"payload": body})), 400, "INVALID_LICENSE")
			if m["detail"] == "" {
				t.Errorf("%s: no reason given", name)
			}
		}
		wantProblem(t, f.do(t, admin("PUT", lv1+"/licenses/not-a-uuid", map[string]string{"payload": doc})), 400, "VALIDATION_FAILED")
		wantProblem(t, f.do(t, admin("PATCH", lv1+"/licenses/0b9f3a1e-0000-4000-8000-000000000000", map[string]string{"payload": doc})), 404, "LICENSE_NOT_FOUND")
		if r := f.do(t, admin("PUT", lv1+"/licenses/0b9f3a1e-0000-4000-8000-000000000000", map[string]string{"payload": doc})); r.status != 200 {
			t.Errorf("PUT with a new UUID: %d %s", r.status, r.body)
		}
		if r := f.do(t, admin("PATCH", lv1+"/licenses/"+id, map[string]string{"payload": doc})); r.status != 200 {
			t.Errorf("PATCH existing: %d %s", r.status, r.body)
		}

		r = f.do(t, admin("GET", lv1+"/licenses", nil))
		var list struct {
			Data []map[string]any `json:"data"`
			Next *string          `json:"next"`
		}
		if err := json.Unmarshal(r.body, &list); err != nil || len(list.Data) != 3 || list.Next != nil || !strings.Contains(string(r.body), `"next":null`) {
			t.Errorf("list licences: %s", r.body)
		}
		r = f.do(t, admin("GET", lv1+"/licenses?size=1", nil))
		if err := json.Unmarshal(r.body, &list); err != nil || len(list.Data) != 1 || list.Next == nil {
			t.Errorf("first page: %s", r.body)
		}
		if r := f.do(t, admin("DELETE", lv1+"/licenses/"+id, nil)); r.status != 204 {
			t.Errorf("delete licence: %d", r.status)
		}
		wantProblem(t, f.do(t, admin("GET", lv1+"/licenses/"+id, nil)), 404, "LICENSE_NOT_FOUND")
	})
}

func alloc(name string, premium int, extra string) string {
	return fmt.Sprintf(`{"name":%q,"fallbackModeDelay":false,"machineAgentPriority":false,
	 "filters":[{"type":"APPLICATION","operator":"ID_EQUALS","value":"18156"}],
	 "limits":[{"package":"PREMIUM","units":%d}],"tags":["team-a"]%s}`, name, premium, extra)
}

func withLicence(t testing.TB, f *fixture, premium int) {
	t.Helper()
	if r := f.do(t, admin("POST", lv1+"/licenses", map[string]string{"payload": signed(t, "customer1", "2099-12-31T23:59:59Z", premium)})); r.status != 201 {
		t.Fatalf("licence: %d %s", r.status, r.body)
	}
}

func countAllocations(t *testing.T, f *fixture) int {
	t.Helper()
	all, err := f.lic.Allocations(context.Background(), 1, licensing.AllocationQuery{})
	if err != nil {
		t.Fatal(err)
	}
	return len(all)
}

func TestAllocationCRUD(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		withLicence(t, f, 100)
		r := f.do(t, admin("POST", allocations, alloc("team-a", 40, `,"id":"ignored","licenseKey":"ignored"`)))
		if r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		a := r.json(t)
		id, key := a["id"].(string), a["licenseKey"].(string)
		if id == "ignored" || key == "ignored" || key == "" || r.header.Get("Location") != allocations+"/"+id ||
			a["accountId"] != float64(1) || a["createdDate"] == "" || a["lastUpdatedDate"] == "" {
			t.Errorf("created = %v, Location %q", a, r.header.Get("Location"))
		}
		if fid := a["filters"].([]any)[0].(map[string]any)["id"]; fid == "" || fid == nil {
			t.Error("filter has no id")
		}
		if lid := a["limits"].([]any)[0].(map[string]any)["id"]; lid == "" || lid == nil {
			t.Error("limit has no id")
		}
		for _, q := range []string{"?name=team-a", "?license-key=" + key, "?tag=team-a"} {
			var got []map[string]any
			r := f.do(t, admin("GET", allocations+q, nil))
			if err := json.Unmarshal(r.body, &got); err != nil || len(got) != 1 || got[0]["id"] != id {
				t.Errorf("GET %s: %s", q, r.body)
			}
		}
		wantProblem(t, f.do(t, admin("GET", allocations+"?name=team-a&tag=team-a", nil)), 400, "CONFLICTING_FILTERS")
		if r := f.do(t, admin("GET", allocations+"/"+id, nil)); r.status != 200 {
			t.Errorf("get: %d", r.status)
		}
		r = f.do(t, admin("PUT", allocations+"/"+id, alloc("team-b", 50, "")))
		if r.status != 200 || r.json(t)["name"] != "team-b" || r.json(t)["licenseKey"] != key {
			t.Errorf("put: %d %s", r.status, r.body)
		}
		if r := f.do(t, admin("DELETE", allocations+"/"+id, nil)); r.status != 204 {
			t.Errorf("delete: %d", r.status)
		}
		wantProblem(t, f.do(t, admin("GET", allocations+"/"+id, nil)), 404, "ALLOCATION_NOT_FOUND")
		wantProblem(t, f.do(t, admin("DELETE", allocations+"/"+id, nil)), 404, "ALLOCATION_NOT_FOUND")
	})
}

func TestAllocationValidation(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		before := countAllocations(t, f)
		base := func(name, filters, limits, tags string) string {
			return fmt.Sprintf(`{"name":%s,"fallbackModeDelay":false,"machineAgentPriority":false,"filters":%s,"limits":%s,"tags":%s}`, name, filters, limits, tags)
		}
		okF, okL, okT := `[]`, `[{"package":"PREMIUM","units":1}]`, `[]`
		for _, tc := range []struct {
			name, body, field string
		}{
			{"empty name", base(`""`, okF, okL, okT), "name"},
			{"long name", base(`"`+strings.Repeat("n", 256)+`"`, okF, okL, okT), "name"},
			{"flag not a boolean", `{"name":"x","fallbackModeDelay":"yes","machineAgentPriority":false}`, "fallbackModeDelay"},
			{"bad filter type", base(`"x"`, `[{"type":"NODE","operator":"EQUALS","value":"a"}]`, okL, okT), "filters[0].type"},
			{"bad operator", base(`"x"`, `[{"type":"HOST","operator":"LIKE","value":"a"}]`, okL, okT), "filters[0].operator"},
			{"empty value", base(`"x"`, `[{"type":"HOST","operator":"EQUALS","value":""}]`, okL, okT), "filters[0].value"},
			{"long value", base(`"x"`, `[{"type":"HOST","operator":"EQUALS","value":"`+strings.Repeat("v", 1025)+`"}]`, okL, okT), "filters[0].value"},
			{"non-integer app id", base(`"x"`, `[{"type":"APPLICATION","operator":"ID_EQUALS","value":"abc"}]`, okL, okT), "filters[0].value"},
			{"bad regex", base(`"x"`, `[{"type":"HOST","operator":"REGEX","value":"("}]`, okL, okT), "filters[0].value"},
			{"bad package", base(`"x"`, okF, `[{"package":"GOLD","units":1}]`, okT), "limits[0].package"},
			{"two limits for a package", base(`"x"`, okF, `[{"package":"PREMIUM","units":1},{"package":"PREMIUM","units":2}]`, okT), "limits[1].package"},
			{"negative units", base(`"x"`, okF, `[{"package":"PREMIUM","units":-1}]`, okT), "limits[0].units"},
			{"fractional units", base(`"x"`, okF, `[{"package":"PREMIUM","units":1.5}]`, okT), "limits[0].units"},
			{"empty tag", base(`"x"`, okF, okL, `[""]`), "tags[0]"},
			{"duplicate tag", base(`"x"`, okF, okL, `["a","a"]`), "tags[1]"},
			{"unknown field", `{"name":"x","fallbackModeDelay":false,"machineAgentPriority":false,"limit":[]}`, "limit"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				m := wantProblem(t, f.do(t, admin("POST", allocations, tc.body)), 400, "VALIDATION_FAILED")
				fields := fieldsOf(m)
				found := false
				for _, fl := range fields {
					found = found || fl == tc.field
				}
				if !found {
					t.Errorf("errors %v do not name %q", fields, tc.field)
				}
			})
		}
		if after := countAllocations(t, f); after != before {
			t.Errorf("allocations: %d before, %d after invalid requests", before, after)
		}
	})
}

func TestOverAllocationAndDefault(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		withLicence(t, f, 100)
		if r := f.do(t, admin("POST", allocations, alloc("a", 40, ""))); r.status != 201 {
			t.Fatalf("40: %d %s", r.status, r.body)
		}
		m := wantProblem(t, f.do(t, admin("POST", allocations, alloc("b", 61, ""))), 409, "OVER_ALLOCATION")
		if m["licensedUnits"] != float64(100) || m["requestedUnits"] != float64(101) {
			t.Errorf("OVER_ALLOCATION figures: %v", m)
		}
		if r := f.do(t, admin("POST", allocations, alloc("b", 60, ""))); r.status != 201 {
			t.Fatalf("40+60: %d %s", r.status, r.body)
		}
		var defs []map[string]any
		_ = json.Unmarshal(f.do(t, admin("GET", allocations+"?name=Default", nil)).body, &defs)
		if len(defs) != 1 {
			t.Fatalf("Default: %v", defs)
		}
		def := defs[0]
		limits := map[string]float64{}
		for _, l := range def["limits"].([]any) {
			lm := l.(map[string]any)
			limits[lm["package"].(string)] = lm["units"].(float64)
		}
		if limits["PREMIUM"] != 0 || limits["INFRA"] != 50 || len(def["filters"].([]any)) != 0 {
			t.Errorf("Default limits %v filters %v", limits, def["filters"])
		}
		info := f.do(t, admin("GET", lv1+"/info", nil)).json(t)
		if info["overAllocated"] != false {
			t.Errorf("overAllocated = %v", info["overAllocated"])
		}
		defID := def["id"].(string)
		wantProblem(t, f.do(t, admin("DELETE", allocations+"/"+defID, nil)), 409, "DEFAULT_ALLOCATION")
		wantProblem(t, f.do(t, admin("PUT", allocations+"/"+defID, `{"name":"Renamed","fallbackModeDelay":false,"machineAgentPriority":false}`)), 409, "DEFAULT_ALLOCATION")
		r := f.do(t, admin("PUT", allocations+"/"+defID, `{"name":"Default","fallbackModeDelay":true,"machineAgentPriority":false,"tags":["base"]}`))
		if r.status != 200 || r.json(t)["fallbackModeDelay"] != true {
			t.Errorf("PUT Default flags: %d %s", r.status, r.body)
		}
		wantProblem(t, f.do(t, admin("POST", allocations, alloc("Default", 0, ""))), 409, "NAME_TAKEN")
		wantProblem(t, f.do(t, admin("POST", allocations, alloc("a", 0, ""))), 409, "NAME_TAKEN")
	})
}

func TestAllocationRaces(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		withLicence(t, f, 100)
		race := func(n int, body func(i int) string) map[int]int {
			var mu sync.Mutex
			codes := map[int]int{}
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := f.do(t, admin("POST", allocations, body(i)))
					mu.Lock()
					codes[r.status]++
					mu.Unlock()
				}()
			}
			wg.Wait()
			return codes
		}
		if codes := race(20, func(int) string { return alloc("same", 1, "") }); codes[201] != 1 || codes[409] != 19 {
			t.Errorf("20 creates of one name: %v, want one 201 and nineteen 409", codes)
		}
		if codes := race(10, func(i int) string { return alloc(fmt.Sprintf("p%d", i), 30, "") }); codes[201] != 3 || codes[409] != 7 {
			t.Errorf("10 creates of 30 units against 99 free: %v, want exactly 3 accepted", codes)
		}
	})
}

func TestAllocationPermissionsAndTenancy(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		ctx := context.Background()
		if _, err := f.auth.CreateUser(ctx, 1, "viewer", auth.RoleLicenseViewer, "viewer-password"); err != nil {
			t.Fatal(err)
		}
		acme, err := f.auth.CreateAccount(ctx, "acme", 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.auth.CreateUser(ctx, acme.ID, "bob", auth.RoleAccountOwner, "bob-password"); err != nil {
			t.Fatal(err)
		}
		viewer := func(method, path string, body any) req {
			return req{method: method, path: path, body: body, user: "viewer@customer1", pass: "viewer-password"}
		}
		if r := f.do(t, viewer("GET", allocations, nil)); r.status != 200 {
			t.Errorf("viewer reads: %d", r.status)
		}
		wantProblem(t, f.do(t, viewer("POST", allocations, alloc("v", 1, ""))), 403, "PERMISSION_DENIED")
		wantProblem(t, f.do(t, viewer("POST", lv1+"/licenses", map[string]string{"payload": "x"})), 403, "PERMISSION_DENIED")
		for _, p := range []string{lv1 + "/info", lv1 + "/licenses", allocations} {
			wantProblem(t, f.do(t, req{method: "GET", path: p, user: "bob@acme", pass: "bob-password"}), 404, "ACCOUNT_NOT_FOUND")
		}
		wantProblem(t, f.do(t, req{method: "GET", path: "/controller/licensing/v1/account/2/info", user: "bob@acme", pass: "bob-password"}), 404, "NO_LICENSE")
	})
}

// TestUntrustedLicensesAreReported: a restart without the key that signed
// a stored licence silently fell back to the trial; the service names such
// licences (at start, in the log).
func TestUntrustedLicensesAreReported(t *testing.T) {
	st := storetest.Engines()[0].Open(t)
	f := newFixture(t, st)
	withLicence(t, f, 100)
	if ls, err := f.lic.UntrustedLicenses(context.Background(), 1); err != nil || len(ls) != 0 {
		t.Fatalf("with the key: %v %v", ls, err)
	}
	none, err := licensing.NewVerifier(nil)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := licensing.NewService(st.Licensing(), none, nil).UntrustedLicenses(context.Background(), 1)
	if err != nil || len(ls) != 1 || ls[0].Payload.LicenseID != "L-100" {
		t.Errorf("without the key: %v %v", ls, err)
	}
}

// TestInfoFollowsEveryWrite: /info is cached per account revision; a
// write through another replica (another service on the same store)
// shows at once.
func TestInfoFollowsEveryWrite(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		writer, reader := newFixture(t, st), newFixture(t, st)
		info := func() map[string]any {
			t.Helper()
			r := reader.do(t, admin("GET", lv1+"/info", nil))
			if r.status != 200 {
				t.Fatalf("info: %d %s", r.status, r.body)
			}
			return r.json(t)
		}
		if got := info(); got["status"] != "LIMITED" {
			t.Fatalf("trial: %v", got["status"])
		}
		r := writer.do(t, admin("POST", lv1+"/licenses", map[string]string{"payload": signed(t, "customer1", "2099-12-31T23:59:59Z", 100)}))
		id := r.json(t)["id"].(string)
		if got := info(); got["status"] != "ACTIVE" || got["licenseId"] != "L-100" {
			t.Fatalf("after a new licence: %v %v", got["status"], got["licenseId"])
		}
		createAllocation(t, writer, alloc("big", 80, ""))
		if r := writer.do(t, admin("PUT", lv1+"/licenses/"+id, map[string]string{"payload": signed(t, "customer1", "2099-12-31T23:59:59Z", 50)})); r.status != 200 {
			t.Fatalf("smaller licence: %d %s", r.status, r.body)
		}
		if got := info(); got["overAllocated"] != true || got["licenseId"] != "L-50" {
			t.Fatalf("after a smaller licence: %v %v", got["overAllocated"], got["licenseId"])
		}
		if r := writer.do(t, admin("DELETE", lv1+"/licenses/"+id, nil)); r.status != 204 {
			t.Fatalf("delete: %d %s", r.status, r.body)
		}
		if got := info(); got["status"] != "LIMITED" {
			t.Fatalf("after deleting the licence: %v", got["status"])
		}
	})
}
