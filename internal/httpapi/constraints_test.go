package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
)

// apiConstraints is API.md §3's example, as real clients write it.
const apiConstraints = `[
 {"entity_type_id":"com.appdynamics.modules.apm.topology.impl.persistenceapi.model.ApplicationEntity",
  "constraint_type":"ALLOW_SELECTED",
  "match_conditions":[{"match_type":"STARTS_WITH","attribute_type":"NAME","match_string":"DES_Demo"}]},
 {"entity_type_id":"com.appdynamics.modules.apm.topology.impl.persistenceapi.model.MachineEntity",
  "constraint_type":"ALLOW_ALL","match_conditions":[]}]`

// TestConstraintsInTheAppDynamicsShape: the example round-trips exactly,
// and each kind of condition admits and refuses as API.md §3 says.
func TestConstraintsInTheAppDynamicsShape(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		r := f.do(t, admin("POST", rules, ruleBody("demo", `,"constraints":`+apiConstraints)))
		if r.status != http.StatusOK {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		var want, got any
		if err := json.Unmarshal([]byte(apiConstraints), &want); err != nil {
			t.Fatal(err)
		}
		rule := f.do(t, admin("GET", rules+"/name/demo", nil)).json(t)
		got = rule["constraints"]
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("constraints do not round-trip (-sent +read):\n%s", diff)
		}
		// A PUT of what was read keeps it.
		if r := f.do(t, admin("PUT", rules, rule)); r.status != http.StatusOK || cmp.Diff(want, r.json(t)["constraints"]) != "" {
			t.Errorf("PUT back: %d %s", r.status, r.body)
		}

		for _, tc := range []struct {
			name, constraints string
			admit, refuse     agent
		}{
			{"application name starts with", apiConstraints,
				agent{AgentType: "APP_AGENT", Host: onHost("h1", nil), Application: app(1, "DES_Demo-1")},
				agent{AgentType: "APP_AGENT", Host: onHost("h2", nil), Application: app(2, "Other")}},
			{"application id equals", `[` + cond(appEntity, "EQUALS", "ID", "18156") + `]`,
				agent{AgentType: "APP_AGENT", Host: onHost("h3", nil), Application: app(18156, "x")},
				agent{AgentType: "APP_AGENT", Host: onHost("h4", nil), Application: app(18157, "x")}},
			{"machine name equals", `[` + cond(machineEntity, "EQUALS", "NAME", "db-host.example") + `]`,
				agent{AgentType: "MACHINE_AGENT", Host: map[string]any{"id": "h5", "name": "db-host.example"}},
				agent{AgentType: "MACHINE_AGENT", Host: map[string]any{"id": "db-host.example", "name": "other"}}},
			{"machine id equals", `[` + cond(machineEntity, "EQUALS", "ID", "h7") + `]`,
				agent{AgentType: "MACHINE_AGENT", Host: map[string]any{"id": "h7", "name": "x"}},
				agent{AgentType: "MACHINE_AGENT", Host: map[string]any{"id": "h8", "name": "h7"}}},
			{"allow all", `[{"entity_type_id":"` + appEntity + `","constraint_type":"ALLOW_ALL","match_conditions":[]}]`,
				agent{AgentType: "APP_AGENT", Host: onHost("h9", nil), Application: app(3, "Anything")}, agent{}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				name := "r-" + tc.name
				body := fmt.Sprintf(`{"version":0,"name":%q,"enabled":true,"constraints":%s,
				 "entitlements":[{"license_module_type":"JAVA","number_of_licenses":10},{"license_module_type":"MACHINE_AGENT","number_of_licenses":10}]}`, name, tc.constraints)
				r := f.do(t, admin("POST", rules, body))
				if r.status != http.StatusOK {
					t.Fatalf("create: %d %s", r.status, r.body)
				}
				key := r.json(t)["access_key"].(string)
				a := tc.admit
				a.AgentID, a.LicenseKey = name+"-admit", key
				wantGranted(t, register(t, f, a, ""), http.StatusCreated)
				if tc.refuse.AgentType != "" {
					b := tc.refuse
					b.AgentID, b.LicenseKey = name+"-refuse", key
					refusal(t, register(t, f, b, ""), http.StatusForbidden, "DENIED_BY_FILTER")
				}
			})
		}
	})
}
