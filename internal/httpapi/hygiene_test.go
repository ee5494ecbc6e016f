package httpapi_test

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/lcorp/licensing-controller/internal/licensing"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
)

// TestBadBytesNameTheField: NUL, invalid UTF-8, duplicate keys, trailing
// data and foreign charsets are refused at the edge with 400 (or 415)
// naming what was wrong, before authentication where they come first.
func TestBadBytesNameTheField(t *testing.T) {
	f := newFixture(t, storetest.Engines()[0].Open(t))
	basic := func(login string) map[string]string {
		return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(login))}
	}
	for _, tc := range []struct {
		name   string
		r      req
		status int
		field  string
	}{
		{"NUL in a path parameter", admin("GET", allocations+"/a%00b", nil), 400, "allocationId"},
		{"invalid UTF-8 in a path parameter", admin("GET", rules+"/name/%ff", nil), 400, "name"},
		{"NUL in a query value", admin("GET", allocations+"?tag=%00", nil), 400, "tag"},
		{"bad escape in the query", admin("GET", allocations+"?tag=%zz", nil), 400, "query"},
		{"NUL in the basic-auth user", req{method: "GET", path: lv1 + "/info", header: basic("ad\x00min@customer1:x")}, 400, "Authorization"},
		{"invalid UTF-8 in the basic-auth user", req{method: "GET", path: lv1 + "/info", header: basic("admin@cust\xffomer1:x")}, 400, "Authorization"},
		{"NUL in a JSON string", admin("POST", allocations, `{"name":"a\u0000"}`), 400, "name"},
		{"lone surrogate in a nested string", admin("POST", allocations, `{"name":"n","tags":["ok","\ud800x"]}`), 400, "tags[1]"},
		{"invalid UTF-8 in a JSON string", admin("POST", allocations, "{\"name\":\"\xff\"}"), 400, "name"},
		{"duplicate key", admin("POST", allocations, `{"name":"a","limits":[{"package":"PREMIUM","package":"INFRA","units":1}]}`), 400, "limits[0].package"},
		{"data after the value", admin("POST", allocations, `{"name":"a"} {"name":"b"}`), 400, "body"},
		// An object or array of the wrong type is named, not the field before it.
		{"an object for an array", admin("POST", allocations, `{"name":"x","limits":{}}`), 400, "limits"},
		{"an object for a list of strings", admin("POST", lv1+"/webhooks", `{"url":"http://x/","events":{"a":1}}`), 400, "events"},
		{"an object for a boolean", admin("POST", lv1+"/webhooks", `{"url":"http://x/","thresholds":[80],"enabled":{}}`), 400, "enabled"},
		{"an array for a string", admin("POST", lv1+"/webhooks", `{"url":"http://x/","events":[[]]}`), 400, "events[0]"},
		{"a number for a string", admin("POST", lv1+"/webhooks", `{"url":"http://x/","events":["ping", 7]}`), 400, "events[1]"},
		// encoding/json matches keys ignoring case, even through Unicode
		// folding: a second spelling would silently win.
		{"a key in another case", admin("POST", allocations, `{"name":"case-a","NAME":"case-b","limits":[]}`), 400, "NAME"},
		{"a key folded from the Kelvin sign", admin("POST", allocations, `{"name":"k","limits":[{"package":"PREMIUM","pacKage":"ENTERPRISE","units":1}]}`), 400, "limits[0].pacKage"},
		{"only wrong-case keys", admin("POST", rules, `{"Name":"c","Version":0}`), 400, "Name"},
		{"latin1 charset", req{method: "POST", path: allocations, body: `{"name":"a"}`, user: "admin@customer1", pass: adminPassword,
			header: map[string]string{"Content-Type": "application/json; charset=iso-8859-1"}}, 415, ""},
		{"heartbeat with a form body", req{method: "POST", path: registrations + "/x/heartbeat", body: `vCpu=4`, user: "admin@customer1", pass: adminPassword,
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, 415, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.do(t, tc.r)
			code := "VALIDATION_FAILED"
			if tc.status == 415 {
				code = "UNSUPPORTED_MEDIA_TYPE"
			}
			m := wantProblem(t, r, tc.status, code)
			if tc.field != "" && !slices.Contains(fieldsOf(m), tc.field) {
				t.Errorf("errors %v do not name %q", m["errors"], tc.field)
			}
		})
	}
	t.Run("OAuth client_id with NUL", func(t *testing.T) {
		hr := httptest.NewRequest("POST", "/controller/api/oauth/access_token",
			strings.NewReader("grant_type=client_credentials&client_id=a%00b@customer1&client_secret=s"))
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, hr)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `"invalid_request"`) ||
			!strings.Contains(w.Body.String(), "client_id") {
			t.Errorf("token with NUL: %d %s", w.Code, w.Body)
		}
	})
}

// TestMalformedCredentialsAreFailedLogins: bad bytes in a credential count
// against the address like wrong passwords, so they cannot be sent without
// limit.
func TestMalformedCredentialsAreFailedLogins(t *testing.T) {
	f := newFixture(t, storetest.Engines()[0].Open(t))
	bad := map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("x\x00@customer1:x"))}
	for i := range 100 {
		if r := f.do(t, req{method: "GET", path: lv1 + "/info", header: bad}); r.status != 400 {
			t.Fatalf("attempt %d: %d %s", i, r.status, r.body)
		}
	}
	wantProblem(t, f.do(t, req{method: "GET", path: lv1 + "/info", header: bad}), 429, "TOO_MANY_FAILED_LOGINS")
}

// TestEdgeFindingsOfTheOutsideSweep: what an outside sweep found at the
// edge, each now refused (or accepted) as API.md §0 says.
func TestEdgeFindingsOfTheOutsideSweep(t *testing.T) {
	f := newFixture(t, storetest.Engines()[0].Open(t))
	t.Run("bad bytes in a body before authentication", func(t *testing.T) {
		wantProblem(t, f.do(t, req{method: "POST", path: allocations, body: `{"name":"a\u0000"}`}), http.StatusBadRequest, "VALIDATION_FAILED")
	})
	t.Run("a malformed Content-Type", func(t *testing.T) {
		r := f.do(t, req{method: "POST", path: rules, body: ruleBody("x", ""), user: "admin@customer1", pass: adminPassword,
			header: map[string]string{"Content-Type": "application/json; charset=latin1;;"}})
		wantProblem(t, r, http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE")
	})
	t.Run("media types ignore case", func(t *testing.T) {
		r := f.do(t, req{method: "POST", path: rules, body: ruleBody("upper", ""), user: "admin@customer1", pass: adminPassword,
			header: map[string]string{"Content-Type": "Application/JSON"}})
		if r.status != http.StatusOK {
			t.Errorf("%d %s", r.status, r.body)
		}
	})
	t.Run("a huge unknown key is not echoed whole", func(t *testing.T) {
		r := f.do(t, admin("POST", allocations, `{"`+strings.Repeat("A", 100_000)+`":1}`))
		wantProblem(t, r, http.StatusBadRequest, "VALIDATION_FAILED")
		if len(r.body) > 2000 {
			t.Errorf("problem is %d bytes", len(r.body))
		}
	})
	t.Run("OAuth credentials in the query string", func(t *testing.T) {
		r := f.do(t, admin("POST", "/controller/api/accounts/1/api-clients", `{"name":"q","role":"license-viewer"}`))
		secret := r.json(t)["secret"].(string)
		hr := httptest.NewRequest("POST", "/controller/api/oauth/access_token?grant_type=client_credentials&client_id=q@customer1&client_secret="+secret, nil)
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, hr)
		if w.Code == http.StatusOK {
			t.Errorf("a secret in the URL was accepted: %s", w.Body)
		}
	})
	t.Run("lower-case bearer", func(t *testing.T) {
		r := f.do(t, req{method: "GET", path: lv1 + "/info", header: map[string]string{"Authorization": "bearer not-a-token"}})
		wantProblem(t, r, http.StatusUnauthorized, "INVALID_TOKEN")
	})
	t.Run("a signed licence with NUL inside", func(t *testing.T) {
		doc, err := licensing.Sign([]byte(`{"licenseId":"L-\u0000","accountName":"customer1","expirationDate":"2099-01-01T00:00:00Z","packages":[]}`), signingKey)
		if err != nil {
			t.Fatal(err)
		}
		wantProblem(t, f.do(t, admin("POST", lv1+"/licenses", map[string]string{"payload": string(doc)})), http.StatusBadRequest, "INVALID_LICENSE")
	})
	t.Run("a licence whose package totals exceed the bound", func(t *testing.T) {
		doc, err := licensing.Sign([]byte(`{"licenseId":"L-2","accountName":"customer1","expirationDate":"2099-01-01T00:00:00Z",
			"packages":[{"packageName":"PREMIUM","licenseUnits":1000000000},{"packageName":"PREMIUM","licenseUnits":1000000000}]}`), signingKey)
		if err != nil {
			t.Fatal(err)
		}
		wantProblem(t, f.do(t, admin("POST", lv1+"/licenses", map[string]string{"payload": string(doc)})), http.StatusBadRequest, "INVALID_LICENSE")
	})
	t.Run("batch heartbeat ids", func(t *testing.T) {
		m := wantProblem(t, f.do(t, admin("POST", registrations+"/heartbeats", `{"ids":["","`+strings.Repeat("x", 200)+`"]}`)), http.StatusBadRequest, "VALIDATION_FAILED")
		if len(fieldsOf(m)) == 0 {
			t.Errorf("no field named: %v", m)
		}
	})
}

// TestDeepNestingIsRefusedCheaply: a body of nested arrays once cost
// gigabytes in the hygiene check (paths grow with depth) before
// authentication; it is a 400 now, bounded by the nesting limit.
func TestDeepNestingIsRefusedCheaply(t *testing.T) {
	f := newFixture(t, storetest.Engines()[0].Open(t))
	deep := strings.Repeat("[", 500_000)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r := f.do(t, req{method: "POST", path: allocations, body: deep})
	runtime.ReadMemStats(&after)
	m := wantProblem(t, r, http.StatusBadRequest, "VALIDATION_FAILED")
	if !slices.Contains(fieldsOf(m), "body") {
		t.Errorf("errors %v", m["errors"])
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Errorf("refusing a 500 KB body allocated %d MB", grew>>20)
	}
}
