package httpapi_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
)

// TestDowngradeLeavesAllocationsEditable: after a smaller licence arrives,
// writes that keep or lower a package's total are allowed (so the operator
// can repair the over-allocation); only writes that raise it are refused.
func TestDowngradeLeavesAllocationsEditable(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		withLicence(t, f, 100)
		idA, _ := newAllocation(t, f, alloc("a", 60, ""))
		idB, _ := newAllocation(t, f, alloc("b", 40, ""))
		f.clock.Advance(time.Second) // the smaller licence is the newer one
		withLicence(t, f, 50)
		if info := f.do(t, admin("GET", lv1+"/info", nil)).json(t); info["overAllocated"] != true {
			t.Fatalf("overAllocated = %v after the downgrade", info["overAllocated"])
		}
		for _, tc := range []struct {
			name, method, path, body string
			status                   int
		}{
			{"rename only", "PUT", allocations + "/" + idA, alloc("a-renamed", 60, ""), 200},
			{"lower a limit", "PUT", allocations + "/" + idA, alloc("a", 30, ""), 200},
			{"raise a limit while over", "PUT", allocations + "/" + idB, alloc("b", 45, ""), 409},
			{"add units while over", "POST", allocations, alloc("c", 1, ""), 409},
			{"add an allocation without units", "POST", allocations, alloc("d", 0, ""), 201},
			{"lower to the licence", "PUT", allocations + "/" + idB, alloc("b", 20, ""), 200},
			{"then raising over it is refused", "PUT", allocations + "/" + idB, alloc("b", 21, ""), 409},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := f.do(t, admin(tc.method, tc.path, tc.body))
				if tc.status == 409 {
					wantProblem(t, r, 409, "OVER_ALLOCATION")
				} else if r.status != tc.status {
					t.Errorf("%d %s, want %d", r.status, r.body, tc.status)
				}
			})
		}
		if info := f.do(t, admin("GET", lv1+"/info", nil)).json(t); info["overAllocated"] != false {
			t.Errorf("overAllocated = %v after the repair", info["overAllocated"])
		}
	})
}

// TestRefusalAndReleaseReasons: no licence at all is NO_LICENSE (not
// LICENSE_EXPIRED), and a forced allocation delete records its releases
// as ALLOCATION_DELETED.
func TestRefusalAndReleaseReasons(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		withLicence(t, f, 100)
		id, key := newAllocation(t, f, `{"name":"a","limits":[{"package":"PREMIUM","units":10}]}`)
		wantGranted(t, register(t, f, agent{AgentID: "a1", AgentType: "APP_AGENT", LicenseKey: key, Host: onHost("h1", 2)}, ""), http.StatusCreated)
		if r := f.do(t, admin("DELETE", allocations+"/"+id+"?force=true", nil)); r.status != http.StatusNoContent {
			t.Fatalf("forced delete: %d %s", r.status, r.body)
		}
		db, err := st.DB()
		if err != nil {
			t.Fatal(err)
		}
		var reason string
		if err := db.QueryRow("SELECT reason FROM usage_events WHERE kind = 'RELEASED' AND agent_id = 'a1'").Scan(&reason); err != nil {
			t.Fatal(err)
		}
		if reason != "ALLOCATION_DELETED" {
			t.Errorf("release reason = %q, want ALLOCATION_DELETED", reason)
		}

		ls := f.do(t, admin("GET", lv1+"/licenses", nil)).json(t)["data"].([]any)
		for _, l := range ls {
			if r := f.do(t, admin("DELETE", lv1+"/licenses/"+l.(map[string]any)["id"].(string), nil)); r.status != http.StatusNoContent {
				t.Fatalf("delete licence: %d %s", r.status, r.body)
			}
		}
		refusal(t, register(t, f, agent{AgentID: "a2", AgentType: "APP_AGENT", Host: onHost("h2", 2)}, ""), http.StatusForbidden, "NO_LICENSE")
	})
}

// newAllocation makes an allocation and returns its id and licence key.
func newAllocation(t *testing.T, f *fixture, body string) (id, key string) {
	t.Helper()
	r := f.do(t, admin("POST", allocations, body))
	if r.status != http.StatusCreated {
		t.Fatalf("allocation: %d %s", r.status, r.body)
	}
	m := r.json(t)
	return m["id"].(string), m["licenseKey"].(string)
}

// TestSubEntityIDsBelongToTheirAllocation: filter and limit ids sent on PUT
// must be the allocation's own (400 otherwise, not stored verbatim); ids
// sent on create are server-owned and replaced.
func TestSubEntityIDsBelongToTheirAllocation(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		withLicence(t, f, 100)
		r := f.do(t, admin("POST", allocations, `{"name":"a","filters":[{"id":"mine","type":"HOST","operator":"EQUALS","value":"h1"}],"limits":[{"id":"x","package":"PREMIUM","units":5}]}`))
		if r.status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		a := r.json(t)
		filterID := a["filters"].([]any)[0].(map[string]any)["id"].(string)
		limitID := a["limits"].([]any)[0].(map[string]any)["id"].(string)
		if filterID == "mine" || limitID == "x" {
			t.Errorf("create kept client ids: %s %s", filterID, limitID)
		}
		otherID, _ := newAllocation(t, f, alloc("b", 5, ""))
		otherFilter := f.do(t, admin("GET", allocations+"/"+otherID, nil)).json(t)["filters"].([]any)[0].(map[string]any)["id"].(string)
		path := allocations + "/" + a["id"].(string)
		put := func(fid, lid string) resp {
			return f.do(t, admin("PUT", path, fmt.Sprintf(`{"name":"a","filters":[{"id":%q,"type":"HOST","operator":"EQUALS","value":"h2"}],"limits":[{"id":%q,"package":"PREMIUM","units":6}]}`, fid, lid)))
		}
		m := wantProblem(t, put(otherFilter, limitID), http.StatusBadRequest, "VALIDATION_FAILED")
		if !slices.Contains(fieldsOf(m), "filters[0].id") {
			t.Errorf("errors %v do not name filters[0].id", m["errors"])
		}
		m = wantProblem(t, put(filterID, "not-ours"), http.StatusBadRequest, "VALIDATION_FAILED")
		if !slices.Contains(fieldsOf(m), "limits[0].id") {
			t.Errorf("errors %v do not name limits[0].id", m["errors"])
		}
		r = put(filterID, limitID)
		if r.status != http.StatusOK {
			t.Fatalf("put with own ids: %d %s", r.status, r.body)
		}
		got := r.json(t)
		if got["filters"].([]any)[0].(map[string]any)["id"] != filterID || got["limits"].([]any)[0].(map[string]any)["id"] != limitID {
			t.Errorf("own ids not kept: %s", r.body)
		}
	})
}

// TestAllocationsCannotTakeUnitsTheDefaultUses: units the Default
// allocation's agents hold cannot be handed to a new allocation (found by
// an attacker: 70 units in use on Default, an allocation of 70 more, 108 of
// 100 units in use).
func TestAllocationsCannotTakeUnitsTheDefaultUses(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		withLicence(t, f, 100)
		wantGranted(t, register(t, f, agent{AgentID: "big", AgentType: "APP_AGENT", Host: onHost("big", 70)}, ""), http.StatusCreated)
		wantProblem(t, f.do(t, admin("POST", allocations, alloc("late", 70, ""))), http.StatusConflict, "OVER_ALLOCATION")
		id, _ := newAllocation(t, f, alloc("fits", 30, ""))
		wantProblem(t, f.do(t, admin("PUT", allocations+"/"+id, alloc("fits", 31, ""))), http.StatusConflict, "OVER_ALLOCATION")
		if r := f.do(t, admin("PUT", allocations+"/"+id, alloc("fits", 20, ""))); r.status != http.StatusOK {
			t.Errorf("lowering: %d %s", r.status, r.body)
		}
	})
}
