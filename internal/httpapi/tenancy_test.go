package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lcorp/licensing-controller/internal/auth"
	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
)

// TestOtherAccountsIDs tries every by-id route of account 2 with the ids of
// account 1's licence, allocation, rule, registration, user and API client:
// each is a 404 and account 1's resources read the same afterwards.
func TestOtherAccountsIDs(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		ctx := context.Background()
		acmeID := otherAccount(t, f)
		if _, err := f.auth.CreateUser(ctx, 1, "carol", auth.RoleLicenseViewer, "carol-password"); err != nil {
			t.Fatal(err)
		}
		if r := f.do(t, admin("POST", "/controller/api/accounts/1/api-clients", `{"name":"registrar","role":"agent-registrar"}`)); r.status != 201 {
			t.Fatalf("api client: %d %s", r.status, r.body)
		}

		// Account 1's resources.
		r := f.do(t, admin("POST", lv1+"/licenses", map[string]string{"payload": signed(t, "customer1", "2099-12-31T23:59:59Z", 100)}))
		if r.status != http.StatusCreated {
			t.Fatalf("licence: %d %s", r.status, r.body)
		}
		licID := r.json(t)["id"].(string)
		r = f.do(t, admin("POST", allocations, alloc("team-a", 10, "")))
		if r.status != http.StatusCreated {
			t.Fatalf("allocation: %d %s", r.status, r.body)
		}
		allocID, allocKey := r.json(t)["id"].(string), r.json(t)["licenseKey"].(string)
		r = f.do(t, admin("POST", rules, ruleBody("java-rule", `,"access_key":"rule-key-of-one"`)))
		if r.status/100 != 2 {
			t.Fatalf("rule: %d %s", r.status, r.body)
		}
		ruleID := r.json(t)["id"].(string)
		r = register(t, f, agent{AgentID: "a1", AgentType: "APP_AGENT", LicenseKey: allocKey,
			Host: onHost("h1", 4), Application: app(18156, "shop")}, "")
		regID := wantGranted(t, r, http.StatusCreated)["registrationId"].(string)

		// What account 1 sees before and after.
		reads := []string{lv1 + "/licenses/" + licID, allocations + "/" + allocID, rules + "/" + ruleID,
			rules + "/" + ruleID + "/history", lv1 + "/registrations", "/controller/api/accounts/1/users",
			"/controller/api/accounts/1/api-clients", lv1 + "/info"}
		snapshot := func() map[string]string {
			out := map[string]string{}
			for _, p := range reads {
				r := f.do(t, admin("GET", p, nil))
				if r.status != http.StatusOK {
					t.Fatalf("GET %s: %d %s", p, r.status, r.body)
				}
				out[p] = string(r.body)
			}
			return out
		}
		before := snapshot()

		acmeLicence := signed(t, "acme", "2099-12-31T23:59:59Z", 100)
		seriesWindow := "?dateFrom=2026-11-01T00:00:00Z&dateTo=2026-11-02T00:00:00Z&granularityMinutes=60"
		b := fmt.Sprintf("/controller/licensing/v1/account/%d", acmeID)
		ruleUpdate := fmt.Sprintf(`{"id":%q,"version":1,"name":"taken","enabled":true,"constraints":[],
		 "entitlements":[{"license_module_type":"JAVA","number_of_licenses":5}]}`, ruleID)
		for _, tc := range []struct {
			method, path string
			body         any
			code         string
		}{
			{"GET", b + "/licenses/" + licID, nil, "LICENSE_NOT_FOUND"},
			{"PUT", b + "/licenses/" + licID, map[string]string{"payload": acmeLicence}, "LICENSE_NOT_FOUND"},
			{"PATCH", b + "/licenses/" + licID, map[string]string{"payload": acmeLicence}, "LICENSE_NOT_FOUND"},
			{"DELETE", b + "/licenses/" + licID, nil, "LICENSE_NOT_FOUND"},
			{"GET", b + "/allocation/" + allocID, nil, "ALLOCATION_NOT_FOUND"},
			{"PUT", b + "/allocation/" + allocID, alloc("stolen", 1, ""), "ALLOCATION_NOT_FOUND"},
			{"DELETE", b + "/allocation/" + allocID + "?force=true", nil, "ALLOCATION_NOT_FOUND"},
			{"POST", b + "/registrations/" + regID + "/heartbeat", nil, "REGISTRATION_NOT_FOUND"},
			{"DELETE", b + "/registrations/" + regID, nil, "REGISTRATION_NOT_FOUND"},
			{"GET", rules + "/" + ruleID, nil, "RULE_NOT_FOUND"},
			{"GET", "/mds/v1/license/rules/" + ruleID, nil, "RULE_NOT_FOUND"},
			{"GET", rules + "/" + ruleID + "/history", nil, "RULE_NOT_FOUND"},
			{"GET", rules + "/accessKey/rule-key-of-one", nil, "RULE_NOT_FOUND"},
			{"GET", rules + "/name/java-rule", nil, "RULE_NOT_FOUND"},
			{"PUT", rules, ruleUpdate, "RULE_NOT_FOUND"},
			{"DELETE", rules + "/" + ruleID + "?force=true", nil, "RULE_NOT_FOUND"},
			{"PUT", fmt.Sprintf("/controller/api/accounts/%d/users/carol", acmeID), `{"role":"account-owner"}`, "USER_NOT_FOUND"},
			{"DELETE", fmt.Sprintf("/controller/api/accounts/%d/users/carol", acmeID), nil, "USER_NOT_FOUND"},
			{"DELETE", fmt.Sprintf("/controller/api/accounts/%d/api-clients/registrar", acmeID), nil, "CLIENT_NOT_FOUND"},
			{"GET", "/controller/licensing/v1/usage/license/" + licID + seriesWindow, nil, "LICENSE_NOT_FOUND"},
			{"GET", fmt.Sprintf("/controller/licensing/v1/usage/account/%d/allocation/%s", acmeID, allocKey) + seriesWindow, nil, "ALLOCATION_NOT_FOUND"},
			// Account 1's own paths are not found for account 2 either.
			{"GET", lv1 + "/licenses/" + licID, nil, "ACCOUNT_NOT_FOUND"},
			{"DELETE", lv1 + "/registrations/" + regID, nil, "ACCOUNT_NOT_FOUND"},
		} {
			t.Run(tc.method+" "+tc.path, func(t *testing.T) {
				r := f.do(t, req{method: tc.method, path: tc.path, body: tc.body, user: "bob@acme", pass: "bob-password"})
				wantProblem(t, r, http.StatusNotFound, tc.code)
			})
		}
		if diff := cmp.Diff(before, snapshot()); diff != "" {
			t.Errorf("account 1 changed after account 2's requests (-before +after):\n%s", diff)
		}
		// Access keys are the account's own business: account 2 may use
		// account 1's, and is not told that it exists.
		r = f.do(t, req{method: "POST", path: rules, body: ruleBody("mine", `,"access_key":"rule-key-of-one"`), user: "bob@acme", pass: "bob-password"})
		if r.status/100 != 2 {
			t.Errorf("account 2 uses a key of account 1: %d %s", r.status, r.body)
		}
	})
}
