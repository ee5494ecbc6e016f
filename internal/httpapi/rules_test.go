package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lcorp/licensing-controller/internal/auth"
	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
)

const rules = "/controller/mds/v1/license/rules"

// seedRule is the seed's create example, without account_id (the server
// fills it).
const seedRule = `{
"id": "011116a4-124c-4b73-9343-f315836f103b",
"version": 0,
"name": "Default_API9",
"description": null,
"enabled": true,
"constraints": [],
"entitlements": [
{"license_module_type": "JAVA", "number_of_licenses": 100},
{"license_module_type": "NATIVE_WEB_SERVER", "number_of_licenses": 100},
{"license_module_type": "NATIVE_SDK", "number_of_licenses": 100},
{"license_module_type": "DOT_NET", "number_of_licenses": 100},
{"license_module_type": "NETVIZ", "number_of_licenses": 100},
{"license_module_type": "MACHINE_AGENT", "number_of_licenses": 100},
{"license_module_type": "NODEJS", "number_of_licenses": 100},
{"license_module_type": "SIM_MACHINE_AGENT", "number_of_licenses": 100},
{"license_module_type": "PHP", "number_of_licenses": 100},
{"license_module_type": "PYTHON", "number_of_licenses": 100}
],
"access_key": "ap1845ad-1f3e-4c9b-909b-a3cfa510bfb0",
"total_licenses": null,
"peak_usage": null
}`

const seedRuleID = "011116a4-124c-4b73-9343-f315836f103b"

const (
	appEntity     = "com.appdynamics.modules.apm.topology.impl.persistenceapi.model.ApplicationEntity"
	machineEntity = "com.appdynamics.modules.apm.topology.impl.persistenceapi.model.MachineEntity"
)

// cond is an ALLOW_SELECTED constraint with one condition.
func cond(entity, match, attribute, value string) string {
	return fmt.Sprintf(`{"entity_type_id":%q,"constraint_type":"ALLOW_SELECTED","match_conditions":[{"match_type":%q,"attribute_type":%q,"match_string":%q}]}`,
		entity, match, attribute, value)
}

// ruleBody is a rule named name; extra (`,"key":value...`) adds or
// overrides members.
func ruleBody(name string, extra string) string {
	m := map[string]json.RawMessage{"version": json.RawMessage(`0`), "name": json.RawMessage(strconv.Quote(name)),
		"enabled": json.RawMessage(`true`), "constraints": json.RawMessage(`[]`),
		"entitlements": json.RawMessage(`[{"license_module_type":"JAVA","number_of_licenses":2}]`)}
	if extra != "" {
		if err := json.Unmarshal([]byte("{"+strings.TrimPrefix(extra, ",")+"}"), &m); err != nil {
			panic(err)
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func globalID(t *testing.T, f *fixture) string {
	t.Helper()
	acc, err := f.auth.Account(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	return acc.GlobalID
}

func TestRuleCreate(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		r := f.do(t, admin("POST", rules, seedRule))
		if r.status != 200 || r.header.Get("Location") != rules+"/"+seedRuleID {
			t.Fatalf("seed create: %d %v %s", r.status, r.header.Get("Location"), r.body)
		}
		got := r.json(t)
		if got["id"] != seedRuleID || got["access_key"] != "ap1845ad-1f3e-4c9b-909b-a3cfa510bfb0" ||
			got["total_licenses"] != float64(1000) || got["version"] != float64(0) || got["peak_usage"] != nil ||
			got["enabled"] != true || got["description"] != nil || got["account_id"] != globalID(t, f) {
			t.Errorf("seed create answered %s", r.body)
		}
		if n := len(got["entitlements"].([]any)); n != 10 {
			t.Errorf("%d entitlements, want 10", n)
		}
		// The seed's body as it was read, account_id included, is accepted too.
		withAccount := strings.Replace(seedRule, `"access_key"`, fmt.Sprintf(`"account_id":%q,"access_key"`, globalID(t, f)), 1)
		withAccount = strings.Replace(withAccount, seedRuleID, "021116a4-124c-4b73-9343-f315836f103b", 1)
		withAccount = strings.Replace(withAccount, "ap1845ad", "bp1845ad", 1)
		withAccount = strings.Replace(withAccount, "Default_API9", "Default_API10", 1)
		if r := f.do(t, admin("POST", rules, withAccount)); r.status != 200 {
			t.Errorf("create with own account_id: %d %s", r.status, r.body)
		}

		r = f.do(t, admin("POST", rules, `{"name":"generated","entitlements":[{"license_module_type":"JAVA","number_of_licenses":5}]}`))
		gen := r.json(t)
		if r.status != 200 || len(gen["id"].(string)) != 36 || gen["access_key"] == "" || gen["enabled"] != true ||
			gen["total_licenses"] != float64(5) {
			t.Errorf("generated id and key: %d %s", r.status, r.body)
		}

		before := len(listRules(t, f))
		wantProblem(t, f.do(t, admin("POST", rules, ruleBody("v1", `,"version":1`))), 400, "VERSION_MUST_BE_ZERO")
		wantProblem(t, f.do(t, admin("POST", rules, ruleBody("Default_API9", ""))), 409, "NAME_TAKEN")
		wantProblem(t, f.do(t, admin("POST", rules, ruleBody("dupkey", `,"access_key":"ap1845ad-1f3e-4c9b-909b-a3cfa510bfb0"`))), 409, "ACCESS_KEY_TAKEN")
		wantProblem(t, f.do(t, admin("POST", rules, ruleBody("dupid", `,"id":"`+seedRuleID+`"`))), 409, "ID_TAKEN")
		acc, err := f.auth.Account(context.Background(), 1)
		if err != nil {
			t.Fatal(err)
		}
		wantProblem(t, f.do(t, admin("POST", rules, ruleBody("acckey", `,"access_key":"`+acc.AccessKey+`"`))), 409, "ACCESS_KEY_TAKEN")
		if after := len(listRules(t, f)); after != before {
			t.Errorf("rules: %d before, %d after refused creates", before, after)
		}
	})
}

func listRules(t *testing.T, f *fixture) []map[string]any {
	t.Helper()
	r := f.do(t, admin("GET", rules, nil))
	var out []map[string]any
	if err := json.Unmarshal(r.body, &out); err != nil || r.status != 200 {
		t.Fatalf("list rules: %d %s", r.status, r.body)
	}
	return out
}

func TestRuleValidation(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		ent := func(list string) string {
			return `{"version":0,"name":"x","entitlements":` + list + `}`
		}
		cons := func(list string) string {
			return `{"version":0,"name":"x","entitlements":[],"constraints":` + list + `}`
		}
		for _, tc := range []struct {
			name, body, field string
		}{
			{"unknown module type", ent(`[{"license_module_type":"COBOL","number_of_licenses":1}]`), "entitlements[0].license_module_type"},
			{"module twice", ent(`[{"license_module_type":"JAVA","number_of_licenses":1},{"license_module_type":"JAVA","number_of_licenses":2}]`), "entitlements[1].license_module_type"},
			{"negative count", ent(`[{"license_module_type":"JAVA","number_of_licenses":-1}]`), "entitlements[0].number_of_licenses"},
			{"missing count", ent(`[{"license_module_type":"JAVA"}]`), "entitlements[0].number_of_licenses"},
			{"fractional count", ent(`[{"license_module_type":"JAVA","number_of_licenses":1.5}]`), "entitlements[0].number_of_licenses"},
			{"missing name", `{"version":0,"entitlements":[]}`, "name"},
			{"blank name", `{"version":0,"name":"  "}`, "name"},
			{"id not a UUID", `{"version":0,"name":"x","id":"rule-1"}`, "id"},
			{"access key with spaces", `{"version":0,"name":"x","access_key":"a b"}`, "access_key"},
			{"bad entity type", cons(`[{"entity_type_id":"NODE","constraint_type":"ALLOW_ALL","match_conditions":[]}]`), "constraints[0].entity_type_id"},
			{"bad constraint type", cons(`[{"entity_type_id":"` + machineEntity + `","constraint_type":"DENY","match_conditions":[]}]`), "constraints[0].constraint_type"},
			{"bad match type", cons(`[` + cond(machineEntity, "LIKE", "NAME", "a") + `]`), "constraints[0].match_conditions[0].match_type"},
			{"bad attribute", cons(`[` + cond(machineEntity, "EQUALS", "TIER", "a") + `]`), "constraints[0].match_conditions[0].attribute_type"},
			{"ID with STARTS_WITH", cons(`[` + cond(appEntity, "STARTS_WITH", "ID", "1") + `]`), "constraints[0].match_conditions[0].match_type"},
			{"empty match string", cons(`[` + cond(machineEntity, "EQUALS", "NAME", "") + `]`), "constraints[0].match_conditions[0].match_string"},
			{"non-integer app id", cons(`[` + cond(appEntity, "EQUALS", "ID", "abc") + `]`), "constraints[0].match_conditions[0].match_string"},
			{"bad regex", cons(`[` + cond(machineEntity, "REGEX", "NAME", "(") + `]`), "constraints[0].match_conditions[0].match_string"},
			{"ALLOW_SELECTED without conditions", cons(`[{"entity_type_id":"` + appEntity + `","constraint_type":"ALLOW_SELECTED","match_conditions":[]}]`), "constraints[0].match_conditions"},
			{"ALLOW_ALL with conditions", cons(`[{"entity_type_id":"` + appEntity + `","constraint_type":"ALLOW_ALL","match_conditions":[{"match_type":"EQUALS","attribute_type":"NAME","match_string":"a"}]}]`), "constraints[0].match_conditions"},
			{"two constraints on one type", cons(`[` + cond(appEntity, "EQUALS", "NAME", "a") + `,` + cond(appEntity, "EQUALS", "NAME", "b") + `]`), "constraints[1].entity_type_id"},
			{"unknown field", `{"version":0,"name":"x","entitlement":[]}`, "entitlement"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				m := wantProblem(t, f.do(t, admin("POST", rules, tc.body)), 400, "VALIDATION_FAILED")
				if fields := fieldsOf(m); !contains(fields, tc.field) {
					t.Errorf("errors %v do not name %q", fields, tc.field)
				}
			})
		}
		if n := len(listRules(t, f)); n != 0 {
			t.Errorf("%d rules stored after invalid creates", n)
		}
	})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestRuleReads(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		if r := f.do(t, admin("POST", rules, seedRule)); r.status != 200 {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		body := ruleBody("constrained", `,"constraints":[`+cond(appEntity, "STARTS_WITH", "NAME", "Sangrah-")+`]`)
		if r := f.do(t, admin("POST", rules, body)); r.status != 200 {
			t.Fatalf("create constrained: %d %s", r.status, r.body)
		}
		list := listRules(t, f)
		if len(list) != 2 {
			t.Fatalf("list: %v", list)
		}
		for _, s := range list {
			if len(s["entitlements"].([]any)) != 0 || len(s["constraints"].([]any)) != 0 {
				t.Errorf("summary carries details: %v", s)
			}
		}
		if list[0]["name"] != "Default_API9" || list[0]["total_licenses"] != float64(1000) || list[1]["total_licenses"] != float64(2) {
			t.Errorf("summaries: %v", list)
		}

		full := f.do(t, admin("GET", rules+"/"+seedRuleID, nil))
		if full.status != 200 || len(full.json(t)["entitlements"].([]any)) != 10 {
			t.Fatalf("by id: %d %s", full.status, full.body)
		}
		for _, path := range []string{
			"/mds/v1/license/rules/" + seedRuleID,
			rules + "/accessKey/ap1845ad-1f3e-4c9b-909b-a3cfa510bfb0",
			rules + "/name/Default_API9",
		} {
			r := f.do(t, admin("GET", path, nil))
			if r.status != 200 {
				t.Errorf("GET %s: %d %s", path, r.status, r.body)
				continue
			}
			if diff := cmp.Diff(full.json(t), r.json(t)); diff != "" {
				t.Errorf("GET %s differs from GET by id (-id +this):\n%s", path, diff)
			}
		}
		c := f.do(t, admin("GET", rules+"/name/constrained", nil)).json(t)
		want := []any{map[string]any{"entity_type_id": appEntity, "constraint_type": "ALLOW_SELECTED",
			"match_conditions": []any{map[string]any{"match_type": "STARTS_WITH", "attribute_type": "NAME", "match_string": "Sangrah-"}}}}
		if diff := cmp.Diff(want, c["constraints"]); diff != "" {
			t.Errorf("constraints (-want +got):\n%s", diff)
		}
		for _, path := range []string{rules + "/name/nope", rules + "/accessKey/nope",
			rules + "/7a1116a4-124c-4b73-9343-f315836f103b", "/mds/v1/license/rules/x", rules + "/x/history"} {
			wantProblem(t, f.do(t, admin("GET", path, nil)), 404, "RULE_NOT_FOUND")
		}
	})
}

func TestRuleOptimisticUpdate(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		if r := f.do(t, admin("POST", rules, seedRule)); r.status != 200 {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		// Read, change, write back: the seed's update cycle.
		read := f.do(t, admin("GET", rules+"/"+seedRuleID, nil)).json(t)
		read["entitlements"].([]any)[0].(map[string]any)["number_of_licenses"] = 1000
		read["access_key"] = "api845ad-1f3e-4c9b-909b-a3cfa510bfb0"
		r := f.do(t, admin("PUT", rules, read))
		got := r.json(t)
		if r.status != 200 || got["version"] != float64(1) || got["total_licenses"] != float64(1900) ||
			got["access_key"] != "api845ad-1f3e-4c9b-909b-a3cfa510bfb0" {
			t.Fatalf("PUT with the version read: %d %s", r.status, r.body)
		}

		// The same stale body again: someone (we) changed it in between.
		read["description"] = "stale"
		m := wantProblem(t, f.do(t, admin("PUT", rules, read)), 409, "VERSION_CONFLICT")
		if m["currentVersion"] != float64(1) {
			t.Errorf("conflict names current version %v", m["currentVersion"])
		}
		stored := f.do(t, admin("GET", rules+"/"+seedRuleID, nil)).json(t)
		if diff := cmp.Diff(got, stored); diff != "" {
			t.Errorf("a stale PUT changed the rule (-before +after):\n%s", diff)
		}

		delete(read, "version")
		wantProblem(t, f.do(t, admin("PUT", rules, read)), 400, "VALIDATION_FAILED")
		wantProblem(t, f.do(t, admin("PUT", rules, ruleBody("x", `,"id":"7a1116a4-124c-4b73-9343-f315836f103b"`))), 404, "RULE_NOT_FOUND")
		wantProblem(t, f.do(t, admin("PUT", rules, ruleBody("x", ""))), 400, "VALIDATION_FAILED")

		// Ten writers that all read version 1: exactly one wins.
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			codes = map[int]int{}
			won   string
		)
		for i := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := maps(stored)
				body["description"] = fmt.Sprintf("writer %d", i)
				r := f.do(t, admin("PUT", rules, body))
				mu.Lock()
				defer mu.Unlock()
				codes[r.status]++
				if r.status == 200 {
					won = body["description"].(string)
				}
			}()
		}
		wg.Wait()
		if codes[200] != 1 || codes[409] != 9 {
			t.Fatalf("10 parallel PUTs of version 1: %v, want one 200 and nine 409", codes)
		}
		final := f.do(t, admin("GET", rules+"/"+seedRuleID, nil)).json(t)
		if final["version"] != float64(2) || final["description"] != won {
			t.Errorf("after the race: version %v description %v, want 2 and %q", final["version"], final["description"], won)
		}

		// History: every version, newest first, with who and when.
		var hist []map[string]any
		hr := f.do(t, admin("GET", rules+"/"+seedRuleID+"/history", nil))
		if err := json.Unmarshal(hr.body, &hist); err != nil || hr.status != 200 {
			t.Fatalf("history: %d %s", hr.status, hr.body)
		}
		var versions []float64
		for _, h := range hist {
			versions = append(versions, h["version"].(float64))
			if h["changed_by"] != "admin@customer1" || h["changed_at"] == "" {
				t.Errorf("history entry without author: %v", h)
			}
		}
		if diff := cmp.Diff([]float64{2, 1, 0}, versions); diff != "" {
			t.Errorf("history versions (-want +got):\n%s", diff)
		}
		if hist[2]["total_licenses"] != float64(1000) || hist[2]["access_key"] != "ap1845ad-1f3e-4c9b-909b-a3cfa510bfb0" ||
			hist[1]["total_licenses"] != float64(1900) || hist[0]["description"] != won {
			t.Errorf("history content: %v", hist)
		}
	})
}

func maps(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

func TestRuleDeletePermissionsAndTenancy(t *testing.T) {
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
		if r := f.do(t, admin("POST", rules, seedRule)); r.status != 200 {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		viewer := func(method, path string, body any) req {
			return req{method: method, path: path, body: body, user: "viewer@customer1", pass: "viewer-password"}
		}
		bob := func(method, path string, body any) req {
			return req{method: method, path: path, body: body, user: "bob@acme", pass: "bob-password"}
		}
		for _, p := range []string{rules, rules + "/" + seedRuleID, rules + "/" + seedRuleID + "/history", rules + "/name/Default_API9"} {
			if r := f.do(t, viewer("GET", p, nil)); r.status != 200 {
				t.Errorf("viewer GET %s: %d", p, r.status)
			}
		}
		wantProblem(t, f.do(t, viewer("POST", rules, ruleBody("v", ""))), 403, "PERMISSION_DENIED")
		wantProblem(t, f.do(t, viewer("PUT", rules, seedRule)), 403, "PERMISSION_DENIED")
		wantProblem(t, f.do(t, viewer("DELETE", rules+"/"+seedRuleID, nil)), 403, "PERMISSION_DENIED")

		// Another account sees none of it, and may use the same name.
		if n := f.do(t, bob("GET", rules, nil)); n.status != 200 || string(n.body) != "[]" {
			t.Errorf("acme's list: %d %s", n.status, n.body)
		}
		wantProblem(t, f.do(t, bob("GET", rules+"/"+seedRuleID, nil)), 404, "RULE_NOT_FOUND")
		wantProblem(t, f.do(t, bob("GET", rules+"/accessKey/ap1845ad-1f3e-4c9b-909b-a3cfa510bfb0", nil)), 404, "RULE_NOT_FOUND")
		wantProblem(t, f.do(t, bob("DELETE", rules+"/"+seedRuleID, nil)), 404, "RULE_NOT_FOUND")
		if r := f.do(t, bob("POST", rules, ruleBody("Default_API9", ""))); r.status != 200 {
			t.Errorf("acme creates its own Default_API9: %d %s", r.status, r.body)
		}

		if r := f.do(t, admin("DELETE", rules+"/"+seedRuleID, nil)); r.status != 204 {
			t.Fatalf("delete: %d %s", r.status, r.body)
		}
		wantProblem(t, f.do(t, admin("GET", rules+"/"+seedRuleID, nil)), 404, "RULE_NOT_FOUND")
		wantProblem(t, f.do(t, admin("GET", rules+"/"+seedRuleID+"/history", nil)), 404, "RULE_NOT_FOUND")
		wantProblem(t, f.do(t, admin("DELETE", rules+"/"+seedRuleID, nil)), 404, "RULE_NOT_FOUND")
		// The id and key are free again.
		if r := f.do(t, admin("POST", rules, seedRule)); r.status != 200 {
			t.Errorf("re-create after delete: %d %s", r.status, r.body)
		}
	})
}
