package httpapi_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
)

// TestQuantitiesAreBounded: on a 100-unit PREMIUM licence an allocation of
// 2^63-1 units once wrapped the sum negative and was accepted. Every
// quantity is bounded at the API and the sums cannot wrap.
func TestQuantitiesAreBounded(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		withLicence(t, f, 100)
		if r := f.do(t, admin("POST", allocations, alloc("ten", 10, ""))); r.status != http.StatusCreated {
			t.Fatalf("allocation of 10: %d %s", r.status, r.body)
		}
		for _, tc := range []struct {
			name, method, path, body string
			status                   int
			code, field              string
		}{
			{"allocation 2^63-1", "POST", allocations, `{"name":"huge","limits":[{"package":"PREMIUM","units":9223372036854775807}]}`, 400, "VALIDATION_FAILED", "limits[0].units"},
			{"allocation 2^63", "POST", allocations, `{"name":"huge","limits":[{"package":"PREMIUM","units":9223372036854775808}]}`, 400, "VALIDATION_FAILED", "limits[0].units"},
			{"allocation 10^9+1", "POST", allocations, `{"name":"huge","limits":[{"package":"PREMIUM","units":1000000001}]}`, 400, "VALIDATION_FAILED", "limits[0].units"},
			{"allocation 10^9 is over the licence", "POST", allocations, `{"name":"huge","limits":[{"package":"PREMIUM","units":1000000000}]}`, 409, "OVER_ALLOCATION", ""},
			{"rule 2^63-1", "POST", rules, `{"version":0,"name":"r","enabled":true,"constraints":[],"entitlements":[{"license_module_type":"JAVA","number_of_licenses":9223372036854775807}]}`, 400, "VALIDATION_FAILED", "entitlements[0].number_of_licenses"},
			{"vCpu 65537", "POST", registrations, `{"agentId":"a","agentType":"APP_AGENT","host":{"id":"h","vCpu":65537}}`, 400, "VALIDATION_FAILED", "host.vCpu"},
			{"vCpu 0", "POST", registrations, `{"agentId":"a","agentType":"APP_AGENT","host":{"id":"h","vCpu":0}}`, 400, "VALIDATION_FAILED", "host.vCpu"},
			{"vCpu 2^63", "POST", registrations, `{"agentId":"a","agentType":"APP_AGENT","host":{"id":"h","vCpu":9223372036854775808}}`, 400, "VALIDATION_FAILED", "host.vCpu"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				m := wantProblem(t, f.do(t, admin(tc.method, tc.path, tc.body)), tc.status, tc.code)
				if tc.field != "" && !slices.Contains(fieldsOf(m), tc.field) {
					t.Errorf("errors %v do not name %q", m["errors"], tc.field)
				}
			})
		}
		info := f.do(t, admin("GET", lv1+"/info", nil)).json(t)
		if info["overAllocated"] != false {
			t.Errorf("overAllocated = %v, want false", info["overAllocated"])
		}
		// The largest vCpu is a real host: refused for want of units, not as bad input.
		r := register(t, f, agent{AgentID: "big", AgentType: "APP_AGENT", Host: onHost("big", 65536)}, "")
		if r.status == http.StatusBadRequest || r.status >= 500 {
			t.Errorf("vCpu 65536: %d %s", r.status, r.body)
		}
	})
}
