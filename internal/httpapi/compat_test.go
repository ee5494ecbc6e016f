package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lcorp/licensing-controller/internal/httpapi"
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

// TestTokenRequestsAsRealClientsSendThem: the token endpoint reads a form
// body whatever the Content-Type says (AppDynamics' own example sends
// protobuf; requests.post(data=…) sends none), a JSON object, or the client
// credentials in HTTP Basic; client names may hold spaces.
func TestTokenRequestsAsRealClientsSendThem(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		r := f.do(t, admin("POST", "/controller/api/accounts/1/api-clients", `{"name":"License Dashboard Client Key","role":"license-viewer"}`))
		if r.status != http.StatusCreated {
			t.Fatalf("client with spaces: %d %s", r.status, r.body)
		}
		secret := r.json(t)["secret"].(string)
		id := "License Dashboard Client Key@customer1"
		form := "grant_type=client_credentials&client_id=" + url.QueryEscape(id) + "&client_secret=" + url.QueryEscape(secret)
		basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
		for _, tc := range []struct {
			name, contentType, body, authorization string
		}{
			{"form", "application/x-www-form-urlencoded", form, ""},
			{"AppDynamics protobuf example", "application/vnd.appd.cntrl+protobuf;v=1", form, ""},
			{"no Content-Type", "", form, ""},
			{"text/plain", "text/plain", form, ""},
			{"JSON object", "application/json", `{"grant_type":"client_credentials","client_id":"` + id + `","client_secret":"` + secret + `"}`, ""},
			{"HTTP Basic", "application/x-www-form-urlencoded", "grant_type=client_credentials", basic},
		} {
			t.Run(tc.name, func(t *testing.T) {
				hr := httptest.NewRequest("POST", "/controller/api/oauth/access_token", strings.NewReader(tc.body))
				if tc.contentType != "" {
					hr.Header.Set("Content-Type", tc.contentType)
				}
				if tc.authorization != "" {
					hr.Header.Set("Authorization", tc.authorization)
				}
				w := httptest.NewRecorder()
				f.h.ServeHTTP(w, hr)
				var tok map[string]any
				if err := json.Unmarshal(w.Body.Bytes(), &tok); w.Code != http.StatusOK || err != nil || tok["access_token"] == nil {
					t.Fatalf("%d %s", w.Code, w.Body)
				}
				if r := f.do(t, req{method: "GET", path: lv1 + "/info", token: tok["access_token"].(string)}); r.status != http.StatusOK {
					t.Errorf("token does not work: %d %s", r.status, r.body)
				}
			})
		}
		for _, bad := range []string{"a@b", "a/b", " lead", "trail ", "tab\there", strings.Repeat("x", 256)} {
			r := f.do(t, admin("POST", "/controller/api/accounts/1/api-clients", map[string]string{"name": bad, "role": "license-viewer"}))
			wantProblem(t, r, http.StatusBadRequest, "VALIDATION_FAILED")
		}
	})
}

// TestAccountLinks: myaccount and accounts/{id} carry absolute links built
// from the request; X-Forwarded-Proto/Host count only from a trusted proxy.
func TestAccountLinks(t *testing.T) {
	st := storetest.Engines()[0].Open(t)
	f := newFixtureDeps(t, st, func(d *httpapi.Deps) { d.TrustedProxies = []string{"10.0.0.0/8"} })
	fwd := map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "controller.example.com"}
	for _, tc := range []struct {
		name, path, remote, want string
	}{
		{"direct", "/controller/api/accounts/myaccount", "192.0.2.1:5555", "http://example.com/controller/api/accounts/1"},
		{"by id", "/controller/api/accounts/1", "192.0.2.1:5555", "http://example.com/controller/api/accounts/1"},
		{"trusted proxy", "/controller/api/accounts/myaccount", "10.1.2.3:5555", "https://controller.example.com/controller/api/accounts/1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hr := httptest.NewRequest("GET", tc.path, nil)
			hr.RemoteAddr = tc.remote
			hr.SetBasicAuth("admin@customer1", adminPassword)
			for k, v := range fwd {
				hr.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			f.h.ServeHTTP(w, hr)
			var m struct {
				Links []struct{ Name, Href string }
			}
			if err := json.Unmarshal(w.Body.Bytes(), &m); w.Code != 200 || err != nil {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			got := map[string]string{}
			for _, l := range m.Links {
				got[l.Name] = l.Href
			}
			for _, n := range []string{"applications", "licensemodules", "users"} {
				if got[n] != tc.want+"/"+n {
					t.Errorf("link %s = %q, want %q", n, got[n], tc.want+"/"+n)
				}
			}
		})
	}
	acme, err := f.auth.CreateAccount(t.Context(), "acme", 0)
	if err != nil {
		t.Fatal(err)
	}
	wantProblem(t, f.do(t, admin("GET", fmt.Sprintf("/controller/api/accounts/%d", acme.ID), nil)), http.StatusNotFound, "ACCOUNT_NOT_FOUND")
}

// TestDisabledAllocation: allocations carry "disabled" (false by default);
// a disabled one refuses new registrations with 403 ALLOCATION_DISABLED and
// keeps its running leases.
func TestDisabledAllocation(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		withLicence(t, f, 100)
		body := `{"name":"a","limits":[{"package":"PREMIUM","units":10}]%s}`
		id, key := newAllocation(t, f, fmt.Sprintf(body, ""))
		if m := f.do(t, admin("GET", allocations+"/"+id, nil)).json(t); m["disabled"] != false {
			t.Errorf("disabled = %v, want false", m["disabled"])
		}
		first := agent{AgentID: "a1", AgentType: "APP_AGENT", LicenseKey: key, Host: onHost("h1", 2)}
		reg := wantGranted(t, register(t, f, first, ""), http.StatusCreated)["registrationId"].(string)
		r := f.do(t, admin("PUT", allocations+"/"+id, fmt.Sprintf(body, `,"disabled":true`)))
		if r.status != http.StatusOK || r.json(t)["disabled"] != true {
			t.Fatalf("disable: %d %s", r.status, r.body)
		}
		refusal(t, register(t, f, agent{AgentID: "a2", AgentType: "APP_AGENT", LicenseKey: key, Host: onHost("h2", 2)}, ""), http.StatusForbidden, "ALLOCATION_DISABLED")
		if r := f.do(t, admin("POST", registrations+"/"+reg+"/heartbeat", nil)); r.status != http.StatusOK {
			t.Errorf("heartbeat of a running lease: %d %s", r.status, r.body)
		}
		if r := register(t, f, first, ""); r.status != http.StatusOK {
			t.Errorf("re-registration of a running lease: %d %s", r.status, r.body)
		}
	})
}

// TestSeriesAsTypedClientsReadThem: min/max/avg/count are JSON integers
// (avg rounded half away from zero), registrations carry entityType,
// buckets start on clock boundaries whatever dateFrom is, and the dates and
// granularity have defaults.
func TestSeriesAsTypedClientsReadThem(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st, longLeases)
		now := time.Now().UTC()
		t0 := now.Truncate(time.Hour).Add(-2 * time.Hour)
		f.clock.Set(t0)
		// Used units 1, 2: avg 1.5 rounds to 2.
		wantGranted(t, register(t, f, agent{AgentID: "a1", AgentType: "APP_AGENT", Host: onHost("h1", 1)}, ""), http.StatusCreated)
		sample(t, f)
		f.clock.Advance(5 * time.Minute)
		wantGranted(t, register(t, f, agent{AgentID: "a2", AgentType: "DB_AGENT", Host: onHost("h2", 1)}, ""), http.StatusCreated)
		sample(t, f)

		from := t0.Add(-17 * time.Minute) // not on a boundary
		r := f.do(t, admin("GET", seriesPath("/account/1", from, t0.Add(time.Hour), 60, "&includeEntityTypes=true"), nil))
		if r.status != http.StatusOK {
			t.Fatalf("%d %s", r.status, r.body)
		}
		var doc struct {
			Packages []struct {
				Name       string
				UnitUsages []struct {
					Data []map[string]json.RawMessage
				}
			}
		}
		if err := json.Unmarshal(r.body, &doc); err != nil {
			t.Fatal(err)
		}
		var premium []map[string]json.RawMessage
		for _, p := range doc.Packages {
			if p.Name == "PREMIUM" {
				premium = p.UnitUsages[0].Data
			}
		}
		if len(premium) != 1 {
			t.Fatalf("PREMIUM points: %s", r.body)
		}
		pt := premium[0]
		if ts := string(pt["timestamp"]); ts != `"`+t0.Format(time.RFC3339)+`"` {
			t.Errorf("timestamp %s, want the clock boundary %s", ts, t0.Format(time.RFC3339))
		}
		var used map[string]json.RawMessage
		if err := json.Unmarshal(pt["used"], &used); err != nil {
			t.Fatal(err)
		}
		for k, want := range map[string]string{"min": "1", "max": "2", "avg": "2", "count": "2"} {
			if string(used[k]) != want {
				t.Errorf("used.%s = %s, want the integer %s", k, used[k], want)
			}
		}
		var regs []struct {
			Type, EntityType string
			Registered       map[string]json.RawMessage
		}
		if err := json.Unmarshal(pt["registrations"], &regs); err != nil {
			t.Fatal(err)
		}
		names := map[string]string{}
		for _, rg := range regs {
			names[rg.Type] = rg.EntityType
			if strings.ContainsAny(string(rg.Registered["avg"]), ".eE") {
				t.Errorf("registered.avg %s is not an integer", rg.Registered["avg"])
			}
		}
		if names["APP_AGENT"] != "App Agent (Java)" || names["DB_AGENT"] != "Database Collector" {
			t.Errorf("entity types: %v", names)
		}

		// Defaults: the last 24 h, hourly; beyond 7 days, daily.
		d := f.do(t, admin("GET", usageV1+"/account/1", nil))
		if d.status != http.StatusOK || !strings.Contains(string(d.body), `"granularityInMinutes":60`) {
			t.Errorf("no query: %d %s", d.status, d.body)
		}
		long := f.do(t, admin("GET", usageV1+"/account/1?dateFrom="+url.QueryEscape(now.Add(-30*24*time.Hour).Format(time.RFC3339)), nil))
		if long.status != http.StatusOK || !strings.Contains(string(long.body), `"granularityInMinutes":1440`) {
			t.Errorf("30 days without granularity: %d %.300s", long.status, long.body)
		}
	})
}

// TestSeedExamplesAsTheyAre: the seed's own rule example carries another
// controller's account_id; it is informational, and the rule is the
// caller's.
func TestSeedExamplesAsTheyAre(t *testing.T) {
	f := newFixture(t, storetest.Engines()[0].Open(t))
	body := strings.Replace(seedRule, `"access_key"`, `"account_id": "8b1e92f2-387c-45b6-9bb5-ebd7f67587d4", "access_key"`, 1)
	r := f.do(t, admin("POST", rules, body))
	if r.status != http.StatusOK {
		t.Fatalf("seed rule with a foreign account_id: %d %s", r.status, r.body)
	}
	if got := r.json(t)["account_id"]; got != globalID(t, f) {
		t.Errorf("account_id = %v, want the caller's %s", got, globalID(t, f))
	}
	// The seed's allocation example, without the optional flags.
	if r := f.do(t, admin("POST", allocations, `{"name":"seed","filters":[],"limits":[{"package":"PREMIUM","units":1}],"tags":[]}`)); r.status != http.StatusCreated {
		t.Errorf("allocation without flags: %d %s", r.status, r.body)
	}
}
