package httpapi_test

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lcorp/licensing-controller/internal/httpapi"
	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
)

// hostileSegments replace every path parameter of every route.
var hostileSegments = []string{"%00", "a%00b", "%ff", "%ED%A0%80", "9223372036854775808", "-9223372036854775809", strings.Repeat("x", 5000)}

// hostileBodies are sent to every route that takes a body.
var hostileBodies = []string{
	`{"name":"a\u0000b","role":"license-viewer","password":"password1"}`,
	`{"name":"\ud800","fallbackModeDelay":false,"machineAgentPriority":false}`,
	"{\"name\":\"\xff\xfe\"}",
	`{"name":"x","limits":[{"package":"PREMIUM","units":9223372036854775808}]}`,
	`{"name":"x","limits":[{"package":"PREMIUM","units":9223372036854775807}]}`,
	`{"agentId":"a\u0000","agentType":"APP_AGENT","host":{"id":"h","vCpu":9223372036854775807}}`,
	`{"agentId":"a","agentType":"APP_AGENT","host":{"id":"h\u0000"},"application":{"id":9223372036854775807,"name":"\udfff"}}`,
	`{"ids":["\u0000","` + "\xc3\x28" + `"]}`,
	`{"payload":"\u0000"}`,
	`{"vCpu":-9223372036854775808}`,
	`{"version":9223372036854775807,"id":"\u0000","name":"n","entitlements":[{"license_module_type":"JAVA","number_of_licenses":-9223372036854775808}]}`,
	`{"url":"http://x/\u0000","events":["\udfff"],"thresholds":[9223372036854775808],"secret":"\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000"}`,
	`{"url":"https://` + strings.Repeat("h", 3000) + `/","thresholds":[-9223372036854775808,100]}`,
	`{"name":"x"}{"name":"y"}`,
	`{"name":"x","name":"y"}`,
	`[` + strings.Repeat(`"`+strings.Repeat("a", 1000)+`",`, 100) + `"a"]`,
}

// hostileQuery is added to every route.
const hostileQuery = "?name=%00&tag=%ff&license-key=%ED%A0%80&size=9223372036854775808&offset=-1&host=a%00&appId=9223372036854775808" +
	"&dateFrom=%00&dateTo=%ff&granularityMinutes=9223372036854775808&force=%00&dryRun=%ff&startDate=%00&includeAgents=%ff&output=JSON" +
	"&since=%00&until=%ff&actor=a%00&resourceType=%ED%A0%80&resourceId=%ff&includeUsage=%ff"

// TestHostileInputSweep sends NUL bytes, invalid UTF-8, lone surrogates and
// 2^63 in every path parameter, query value and body field of every route,
// authenticated and not: no answer is a 5xx.
func TestHostileInputSweep(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		routes := f.h.(*httpapi.Router).Routes()
		if len(routes) < 40 {
			t.Fatalf("only %d routes", len(routes))
		}
		basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin@customer1:"+adminPassword))
		auths := []string{basic, "", "Basic " + base64.StdEncoding.EncodeToString([]byte("ad\x00min@customer1:x")),
			"Basic " + base64.StdEncoding.EncodeToString([]byte("admin@cust\xffomer1:x")), "Bearer \x00"}
		n := 0
		send := func(method, path, body, authz, ct string) {
			t.Helper()
			var r *http.Request
			if body == "" {
				r = httptest.NewRequest(method, "http://x"+"/", nil)
			} else {
				r = httptest.NewRequest(method, "http://x"+"/", strings.NewReader(body))
				r.Header.Set("Content-Type", ct)
			}
			r.URL.RawPath = ""
			u, err := r.URL.Parse(path)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			r.URL = u
			r.RequestURI = u.RequestURI()
			if authz != "" {
				r.Header.Set("Authorization", authz)
			}
			w := httptest.NewRecorder()
			f.h.ServeHTTP(w, r)
			n++
			if w.Code >= 500 {
				t.Errorf("%s %s (auth %q, body %.80q): %d %s", method, path, authz, body, w.Code, w.Body.String())
			}
		}
		for _, rt := range routes {
			if strings.HasPrefix(rt.Path, "/swagger") {
				continue
			}
			for _, seg := range hostileSegments {
				path := withParams(rt.Path, seg)
				for _, a := range auths {
					send(rt.Method, path+hostileQuery, "", a, "")
				}
				if rt.Method == "GET" || rt.Method == "DELETE" {
					continue
				}
				for _, b := range hostileBodies {
					send(rt.Method, path, b, basic, "application/json")
				}
				send(rt.Method, path, "grant_type=%00&client_id=a%00b&client_secret=%ff", "", "application/x-www-form-urlencoded")
				send(rt.Method, path, "grant_type=client_credentials&client_id=%ED%A0%80@customer1&client_secret=x", "", "")
			}
			// Valid path parameters, hostile bodies and queries.
			path := withParams(rt.Path, "1")
			send(rt.Method, path+hostileQuery, "", basic, "")
			for _, b := range hostileBodies {
				send(rt.Method, path, b, basic, "application/json")
				send(rt.Method, path, b, basic, "application/json; charset=latin1")
			}
		}
		t.Logf("%d requests over %d routes", n, len(routes))
	})
}

// withParams fills every :param and *param of a route pattern with v.
func withParams(pattern, v string) string {
	parts := strings.Split(pattern, "/")
	for i, p := range parts {
		if strings.HasPrefix(p, ":") || strings.HasPrefix(p, "*") {
			parts[i] = v
		}
	}
	return strings.Join(parts, "/")
}
