package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lcorp/licensing-controller/internal/store/storetest"
)

// fuzzBody posts fuzzed bodies to one route of a service on the embedded
// store: never a 5xx, always JSON, and a 400 always names a field.
func fuzzBody(f *testing.F, path string, seeds []string) {
	for _, s := range append(seeds, hostileBodies...) {
		f.Add(s)
	}
	fx := newFixture(f, storetest.Engines()[0].Open(f))
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest("POST", path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.SetBasicAuth("admin@customer1", adminPassword)
		w := httptest.NewRecorder()
		fx.h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%q: %d %s", body, w.Code, w.Body)
		}
		var m map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
			t.Fatalf("%q: %d, body is not a JSON object: %s", body, w.Code, w.Body)
		}
		if w.Code == http.StatusBadRequest && m["code"] == "VALIDATION_FAILED" {
			if errs, _ := m["errors"].([]any); len(errs) == 0 {
				t.Errorf("%q: a 400 without errors[]: %s", body, w.Body)
			}
		}
	})
}

func FuzzRegistrationBody(f *testing.F) {
	fuzzBody(f, registrations+"?dryRun=true", []string{
		`{"agentId":"a","agentType":"APP_AGENT","host":{"id":"h","vCpu":4},"application":{"id":1,"name":"n"}}`,
		`{"agentId":"a","agentType":"MACHINE_AGENT","licenseKey":"k","host":{"id":"h","vCpu":null}}`,
	})
}

func FuzzAllocationBody(f *testing.F) {
	fuzzBody(f, allocations, []string{
		`{"name":"a","filters":[{"type":"APPLICATION","operator":"REGEX","value":"^x"}],"limits":[{"package":"PREMIUM","units":1}],"tags":["t"]}`,
		`{"name":"a","limits":[{"package":"INFRA","units":1000000000}]}`,
	})
}

func FuzzRuleBody(f *testing.F) {
	fuzzBody(f, rules, []string{seedRule, ruleBody("r", `,"constraints":[`+cond(machineEntity, "EQUALS", "NAME", "h")+`]`)})
}
