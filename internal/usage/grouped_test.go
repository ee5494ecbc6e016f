package usage

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lcorp/licensing-controller/internal/engine"
)

func ptr[T any](v T) *T { return &v }

// row is a licensed agent of app on host, charged in pool.
func row(app int64, host string, vcpu *int64, pool string, fallback bool, node string) engine.UsageRow {
	r := engine.UsageRow{AgentType: "APP_AGENT", AgentVersion: ptr("24.7"), PoolKind: engine.PoolAllocation,
		PoolID: pool, LicenseKey: "key-" + pool, HostID: host, AppID: ptr(app), AppName: ptr("app"), Node: ptr(node),
		HostVCPU: vcpu, HostPackage: "PREMIUM", HostUnits: 8}
	if fallback {
		r.HostUnits, r.HostFallback = 4, true
	}
	return r
}

// A host of unknown vCPU charged fallback units counts once however many
// applications run on it; a host charged by two allocations is marked.
func TestGroupingCountsHostsOnce(t *testing.T) {
	rows := []engine.UsageRow{
		row(2, "h1", nil, "p1", true, "n3"),
		row(1, "h1", nil, "p1", true, "n1"),
		row(1, "h2", ptr(int64(8)), "p1", false, "n2"),
		row(1, "h2", ptr(int64(8)), "p2", false, "n2"),
		{AgentType: "MACHINE_AGENT", PoolKind: engine.PoolAllocation, PoolID: "p1", HostID: "h3", HostVCPU: ptr(int64(2))},
	}
	apps := byApp(rows, true)
	if apps.VCPUTotal != 8 || len(apps.Items) != 2 || apps.FallbackLicenseUnits["PREMIUM"] != 4 {
		t.Errorf("by application: vCPU %d, %d items, fallback %v; want 8, 2 (no machine agent), PREMIUM 4 once",
			apps.VCPUTotal, len(apps.Items), apps.FallbackLicenseUnits)
	}
	one := apps.Items["1"]
	if diff := cmp.Diff([]string{"n1", "n2"}, one.Nodes); diff != "" || one.VCPU != 8 || len(one.Hosts.Items) != 2 || len(one.Agents) != 2 { // one kind per licence key
		t.Errorf("application 1: %+v (nodes -want +got %s)", one, diff)
	}
	if !one.Hosts.Items["h2"].SharedByAllocations || one.Hosts.Items["h1"].SharedByAllocations {
		t.Errorf("h2 is charged by p1 and p2, h1 by p1 only: %+v", one.Hosts.Items)
	}

	hosts := byHost(rows, true)
	h1 := hosts.Items["h1"]
	if hosts.VCPUTotal != 10 || hosts.FallbackLicenseUnits["PREMIUM"] != 4 || h1.FallbackLicenseUnits["PREMIUM"] != 4 {
		t.Errorf("by host: vCPU %d, fallback %v, h1 fallback %v; want 10, PREMIUM 4, PREMIUM 4",
			hosts.VCPUTotal, hosts.FallbackLicenseUnits, h1.FallbackLicenseUnits)
	}
	if h1.Applications.VCPUTotal != 0 || len(h1.Applications.Items) != 2 || h1.Applications.Items["2"].Hosts != nil {
		t.Errorf("h1's applications: %+v", h1.Applications)
	}
	if len(hosts.Items["h3"].Applications.Items) != 0 {
		t.Errorf("a host with only a machine agent lists applications: %+v", hosts.Items["h3"].Applications)
	}
}
