package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
)

// TestRuleRoutesUnderBothPrefixes: every licence-rule route answers under
// /controller/mds/v1 and /mds/v1, a create answers 200 with Location, and
// a trailing slash serves the route instead of redirecting.
func TestRuleRoutesUnderBothPrefixes(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		for i, prefix := range []string{"/controller/mds/v1/license/rules", "/mds/v1/license/rules"} {
			name := []string{"one", "two"}[i]
			r := f.do(t, admin("POST", prefix+"/", ruleBody(name, "")))
			if r.status != http.StatusOK || r.header.Get("Location") == "" {
				t.Fatalf("%s: create: %d %s (Location %q)", prefix, r.status, r.body, r.header.Get("Location"))
			}
			rule := r.json(t)
			id, key := rule["id"].(string), rule["access_key"].(string)
			for _, p := range []string{prefix, prefix + "/", prefix + "/" + id, prefix + "/" + id + "/", prefix + "/name/" + name,
				prefix + "/accessKey/" + key, prefix + "/" + id + "/history"} {
				if r := f.do(t, admin("GET", p, nil)); r.status != http.StatusOK {
					t.Errorf("GET %s: %d %s", p, r.status, r.body)
				}
			}
			rule["description"] = "changed"
			if r := f.do(t, admin("PUT", prefix, rule)); r.status != http.StatusOK {
				t.Errorf("PUT %s: %d %s", prefix, r.status, r.body)
			}
			if r := f.do(t, admin("DELETE", prefix+"/"+id, nil)); r.status != http.StatusNoContent {
				t.Errorf("DELETE %s/%s: %d %s", prefix, id, r.status, r.body)
			}
		}
		for _, p := range []string{lv1 + "/info/", lv1 + "/allocation/", "/controller/api/accounts/myaccount/"} {
			if r := f.do(t, admin("GET", p, nil)); r.status != http.StatusOK {
				t.Errorf("GET %s: %d %s", p, r.status, r.body)
			}
		}
	})
}

// TestProblemsCarryErrorMessage: AppDynamics scripts print errorMessage.
func TestProblemsCarryErrorMessage(t *testing.T) {
	f := newFixture(t, storetest.Engines()[0].Open(t))
	m := wantProblem(t, f.do(t, admin("GET", allocations+"/nope", nil)), http.StatusNotFound, "ALLOCATION_NOT_FOUND")
	if m["errorMessage"] == "" || m["errorMessage"] != m["detail"] {
		t.Errorf("errorMessage %q, detail %q", m["errorMessage"], m["detail"])
	}
}
