package httpapi_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
)

// TestReRegistrationMustMatchTheLease: an agentId that holds a live lease
// re-registers with the same key, host and type (200, the same lease);
// with another one it is a 409 naming what differs, instead of a silent
// 200 under the old lease.
func TestReRegistrationMustMatchTheLease(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		withLicence(t, f, 100)
		_, key := newAllocation(t, f, `{"name":"a","limits":[{"package":"PREMIUM","units":10}]}`)
		base := agent{AgentID: "a1", AgentType: "APP_AGENT", Host: onHost("h1", 2)}
		id := wantGranted(t, register(t, f, base, ""), http.StatusCreated)["registrationId"]
		if r := register(t, f, base, ""); r.status != http.StatusOK || r.json(t)["registrationId"] != id {
			t.Errorf("same agent again: %d %s", r.status, r.body)
		}
		for _, tc := range []struct {
			name    string
			change  func(*agent)
			differs []string
		}{
			{"another key", func(a *agent) { a.LicenseKey = key }, []string{"licenseKey"}},
			{"an unknown key", func(a *agent) { a.LicenseKey = "nope" }, []string{"licenseKey"}},
			{"another host", func(a *agent) { a.Host = onHost("h2", 2) }, []string{"host.id"}},
			{"another type and host", func(a *agent) { a.AgentType = "MACHINE_AGENT"; a.Host = onHost("h3", 2) }, []string{"host.id", "agentType"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				a := base
				tc.change(&a)
				m := wantProblem(t, register(t, f, a, ""), http.StatusConflict, "AGENT_ID_IN_USE")
				var got []string
				for _, d := range m["differs"].([]any) {
					got = append(got, d.(string))
				}
				if !slices.Equal(got, tc.differs) || m["registrationId"] != id {
					t.Errorf("differs %v (registration %v), want %v (%v)", got, m["registrationId"], tc.differs, id)
				}
			})
		}
	})
}

// TestHeartbeatSaysWhenTheVCPUDoesNotFit: a larger vCpu that does not fit
// keeps the old charge and says so (vCpuApplied false, NO_MORE_UNITS),
// recorded as an UNDERCOUNTED event.
func TestHeartbeatSaysWhenTheVCPUDoesNotFit(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		withLicence(t, f, 100)
		_, key := newAllocation(t, f, `{"name":"a","limits":[{"package":"PREMIUM","units":10},{"package":"INFRA","units":0}]}`)
		id := wantGranted(t, register(t, f, agent{AgentID: "a1", AgentType: "APP_AGENT", LicenseKey: key, Host: onHost("h1", 4)}, ""), http.StatusCreated)["registrationId"].(string)
		hb := func(vcpu int) map[string]any {
			t.Helper()
			r := f.do(t, admin("POST", registrations+"/"+id+"/heartbeat", map[string]any{"vCpu": vcpu}))
			if r.status != http.StatusOK {
				t.Fatalf("heartbeat: %d %s", r.status, r.body)
			}
			return r.json(t)
		}
		if m := hb(8); m["vCpuApplied"] != true || m["hostUnits"] != float64(8) {
			t.Errorf("vCpu 8 fits: %v", m)
		}
		if m := hb(12); m["vCpuApplied"] != false || m["reason"] != "NO_MORE_UNITS" || m["hostUnits"] != float64(8) {
			t.Errorf("vCpu 12 does not fit: %v", m)
		}
		if m := f.do(t, admin("POST", registrations+"/"+id+"/heartbeat", nil)).json(t); m["vCpuApplied"] != nil {
			t.Errorf("a heartbeat without vCpu says vCpuApplied: %v", m)
		}
		db, err := st.DB()
		if err != nil {
			t.Fatal(err)
		}
		var n, units int64
		if err := db.QueryRow("SELECT COUNT(*), COALESCE(SUM(units), 0) FROM usage_events WHERE kind = 'UNDERCOUNTED' AND agent_id = 'a1'").Scan(&n, &units); err != nil {
			t.Fatal(err)
		}
		if n != 1 || units != 4 {
			t.Errorf("UNDERCOUNTED events: %d with %d units, want 1 with 4", n, units)
		}
	})
}
