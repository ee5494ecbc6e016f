package httpapi_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/lcorp/licensing-controller/internal/auth"
	"github.com/lcorp/licensing-controller/internal/httpapi"
	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
)

const auditPath = lv1 + "/audit"

func auditEntries(t *testing.T, f *fixture, query string) []map[string]any {
	t.Helper()
	r := f.do(t, admin("GET", auditPath+query, nil))
	if r.status != http.StatusOK {
		t.Fatalf("audit%s: %d %s", query, r.status, r.body)
	}
	var out []map[string]any
	for _, e := range r.json(t)["data"].([]any) {
		out = append(out, e.(map[string]any))
	}
	return out
}

// TestAuditRecordsWhoChangedWhat: bob's PUT of an allocation is recorded
// with bob, the request id and the old and new limits; an API client is
// recorded without its secret; a licence viewer may not read the trail.
func TestAuditRecordsWhoChangedWhat(t *testing.T) {
	defer httpapi.SetAuditCSVPage(2)() // the export below reads several pages
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		ctx := context.Background()
		withLicence(t, f, 100)
		if _, err := f.auth.CreateUser(ctx, 1, "bob", auth.RoleLicenseAdmin, "bob-password"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.auth.CreateUser(ctx, 1, "viewer", auth.RoleLicenseViewer, "viewer-password"); err != nil {
			t.Fatal(err)
		}
		r := f.do(t, admin("POST", allocations, alloc("team-a", 40, "")))
		if r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		id := r.json(t)["id"].(string)
		put := req{method: "PUT", path: allocations + "/" + id, body: alloc("team-a", 25, ""), user: "bob@customer1", pass: "bob-password",
			header: map[string]string{"X-Request-Id": "bob-change-1"}}
		// A name a spreadsheet would run as a formula.
		if r := f.do(t, admin("POST", allocations, alloc("=HYPERLINK(\"http://evil.example\")", 1, ""))); r.status != 201 {
			t.Fatalf("formula name: %d %s", r.status, r.body)
		}
		if r := f.do(t, put); r.status != 200 {
			t.Fatalf("bob's PUT: %d %s", r.status, r.body)
		}
		// A dry run and a refused write leave no entry.
		if r := f.do(t, admin("PUT", allocations+"/"+id+"?dryRun=true", alloc("team-a", 30, ""))); r.status != 200 {
			t.Fatalf("dry run: %d %s", r.status, r.body)
		}
		if r := f.do(t, admin("PUT", allocations+"/"+id, alloc("team-a", 1000, ""))); r.status != 409 {
			t.Fatalf("over-allocation: %d %s", r.status, r.body)
		}

		es := auditEntries(t, f, "?resourceType=allocation&resourceId="+id)
		if len(es) != 2 {
			t.Fatalf("%d entries of the allocation, want 2 (create, update): %v", len(es), es)
		}
		upd := es[0] // newest first
		actor := upd["actor"].(map[string]any)
		if upd["action"] != "update" || actor["name"] != "bob" || actor["kind"] != "user" || actor["account"] != "customer1" ||
			upd["requestId"] != "bob-change-1" {
			t.Errorf("update entry: %v", upd)
		}
		units := func(side string) any {
			return upd[side].(map[string]any)["limits"].([]any)[0].(map[string]any)["units"]
		}
		if units("before") != 40.0 || units("after") != 25.0 {
			t.Errorf("limits before %v, after %v; want 40 and 25", units("before"), units("after"))
		}
		if es[1]["action"] != "create" || es[1]["before"] != nil || es[1]["actor"].(map[string]any)["name"] != "admin" {
			t.Errorf("create entry: %v", es[1])
		}
		if got := auditEntries(t, f, "?actor=bob@customer1"); len(got) != 1 || got[0]["requestId"] != "bob-change-1" {
			t.Errorf("actor filter: %v", got)
		}

		// An API client: recorded, its secret nowhere in the trail.
		r = f.do(t, admin("POST", "/controller/api/accounts/1/api-clients", map[string]any{"name": "ci", "role": "license-viewer"}))
		if r.status != 201 {
			t.Fatalf("client: %d %s", r.status, r.body)
		}
		secret := r.json(t)["secret"].(string)
		raw := f.do(t, admin("GET", auditPath, nil)).body
		if strings.Contains(string(raw), secret) || strings.Contains(string(raw), "$2a$") || strings.Contains(string(raw), "bob-password") {
			t.Fatal("the audit trail holds a secret, hash or password")
		}
		if got := auditEntries(t, f, "?resourceType=apiClient"); len(got) != 1 || got[0]["resource"].(map[string]any)["name"] != "ci" {
			t.Errorf("client entries: %v", got)
		}
		if got := auditEntries(t, f, "?resourceType=user"); len(got) != 3 || got[2]["actor"].(map[string]any)["kind"] != "cli" {
			t.Errorf("user entries: %v, want 3 (the bootstrap's admin, by the command line; bob; viewer)", got)
		}

		// Webhooks are audited too, without their secret.
		hook := createWebhook(t, f, map[string]any{"url": "https://hooks.example.com/x", "secret": "a-secret-of-twenty-chars"})
		if got := auditEntries(t, f, "?resourceType=webhook"); len(got) != 1 || strings.Contains(string(f.do(t, admin("GET", auditPath, nil)).body), "a-secret-of-twenty-chars") {
			t.Errorf("webhook entries: %v", got)
		}
		if r := f.do(t, admin("DELETE", webhooksPath+"/"+hook["id"].(string), nil)); r.status != 204 {
			t.Fatalf("delete webhook: %d %s", r.status, r.body)
		}

		wantProblem(t, f.do(t, req{method: "GET", path: auditPath, user: "viewer@customer1", pass: "viewer-password"}), 403, "PERMISSION_DENIED")
		wantProblem(t, f.do(t, admin("GET", auditPath+"?resourceType=planet", nil)), 400, "VALIDATION_FAILED")
		wantProblem(t, f.do(t, admin("GET", auditPath+"?since=2026-13-01", nil)), 400, "VALIDATION_FAILED")

		// Paging and CSV.
		all := auditEntries(t, f, "")
		page := f.do(t, admin("GET", auditPath+"?size=2", nil)).json(t)
		if len(page["data"].([]any)) != 2 || page["next"] == nil || len(all) < 6 {
			t.Errorf("page of 2 of %d: %v", len(all), page["next"])
		}
		r = f.do(t, admin("GET", auditPath+"?format=csv", nil))
		rows, err := csv.NewReader(strings.NewReader(string(r.body))).ReadAll()
		if err != nil || r.status != 200 || len(rows) != len(all)+1 || rows[0][3] != "actor" {
			t.Fatalf("csv: %d %v rows=%d err=%v", r.status, r.header, len(rows), err)
		}
		var before map[string]any
		for _, row := range rows[1:] {
			if row[3] == "bob" {
				if err := json.Unmarshal([]byte(row[10]), &before); err != nil {
					t.Fatalf("csv before: %v", err)
				}
			}
		}
		if before["name"] != "team-a" {
			t.Errorf("csv before of bob's change: %v", before)
		}
		for _, row := range rows[1:] {
			if row[6] == "allocation" && strings.Contains(row[8], "HYPERLINK") && !strings.HasPrefix(row[8], "'=") {
				t.Errorf("a formula in the export is not defused: %q", row[8])
			}
		}
	})
}

// TestAuditOfAnotherAccountIsNotVisible: one account never reads another's trail.
func TestAuditOfAnotherAccountIsNotVisible(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		acme := otherAccount(t, f)
		withLicence(t, f, 100)
		createAllocation(t, f, alloc("mine", 10, ""))
		r := f.do(t, req{method: "GET", path: "/controller/licensing/v1/account/1/audit", user: "bob@acme", pass: "bob-password"})
		if r.status != 404 && r.status != 403 {
			t.Fatalf("bob reads account 1's trail: %d %s", r.status, r.body)
		}
		r = f.do(t, req{method: "GET", path: fmt.Sprintf("/controller/licensing/v1/account/%d/audit", acme), user: "bob@acme", pass: "bob-password"})
		if r.status != 200 || strings.Contains(string(r.body), "mine") {
			t.Fatalf("acme's trail: %d %s", r.status, r.body)
		}
	})
}
