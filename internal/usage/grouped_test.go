package usage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

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

// sent is a store that sends its rows as they are, in one reused row, and
// counts the reads.
type sent struct {
	rows  []engine.UsageRow
	reads int
}

func (s *sent) send(sink engine.UsageSink) error {
	s.reads++
	sink.Start()
	var r engine.UsageRow
	for i := range s.rows[:len(s.rows)/2] { // an attempt that fails half way
		r = s.rows[i]
		if err := sink.Row(&r); err != nil {
			return err
		}
	}
	sink.Start()
	for i := range s.rows {
		r = s.rows[i]
		if err := sink.Row(&r); err != nil {
			return err
		}
		r = engine.UsageRow{HostID: "reused"}
	}
	return nil
}

func (s *sent) UsageByApps(_ context.Context, _ int64, _ []int64, _ []string, _ time.Time, sink engine.UsageSink) error {
	return s.send(sink)
}

func (s *sent) UsageByHosts(_ context.Context, _ int64, _ []string, _ time.Time, sink engine.UsageSink) error {
	return s.send(sink)
}

func (*sent) Applications(context.Context, int64) ([]engine.Application, error) { return nil, nil }

// Grouping the rows as they arrive gives the answer grouping them all at
// the end gives: with each key's rows together (as the stores send them)
// in one read, with them apart (in any order) in a second, and after a
// read that started over.
func TestGroupingAsRowsArriveAnswersAsGroupingAtTheEnd(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var rows []engine.UsageRow
	for a := range 20 {
		for n := range 1 + rng.IntN(12) {
			h := rng.IntN(15)
			r := row(int64(a), fmt.Sprintf("h%d", h), ptr(int64(2+h%8)), fmt.Sprintf("p%d", rng.IntN(3)), rng.IntN(4) == 0, fmt.Sprintf("n%d-%d", a, n))
			r.HostName = r.HostID + ".example"
			rows = append(rows, r)
		}
	}
	rows = append(rows, engine.UsageRow{AgentType: "MACHINE_AGENT", PoolKind: engine.PoolAllocation, PoolID: "p1", HostID: "h3"})
	byKey := func(key func(r engine.UsageRow) string) []engine.UsageRow {
		out := slices.Clone(rows)
		slices.SortStableFunc(out, func(a, b engine.UsageRow) int { return strings.Compare(key(a), key(b)) })
		return out
	}
	appKey := func(r engine.UsageRow) string {
		if r.AppID == nil {
			return ""
		}
		return fmt.Sprintf("%09d", *r.AppID)
	}
	shuffled := slices.Clone(rows)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })

	ctx := context.Background()
	wantApps, wantHosts := byApp(slices.Clone(rows), true), byHost(slices.Clone(rows), true)
	for _, c := range []struct {
		name        string
		apps, hosts []engine.UsageRow
		reads       int
	}{
		{"in key order", byKey(appKey), byKey(func(r engine.UsageRow) string { return r.HostID }), 1},
		{"apart", shuffled, shuffled, 2},
	} {
		store := &sent{rows: c.apps}
		apps, err := NewService(store, nil).ByApplicationIDs(ctx, 1, []int64{1})
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(wantApps, apps); d != "" || store.reads != c.reads {
			t.Errorf("%s: by application in %d reads, want %d (-at the end +as they arrive):\n%s", c.name, store.reads, c.reads, d)
		}
		store = &sent{rows: c.hosts}
		hosts, err := NewService(store, nil).ByHosts(ctx, 1, []string{"h1"})
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(wantHosts, hosts); d != "" || store.reads != c.reads {
			t.Errorf("%s: by host in %d reads, want %d (-at the end +as they arrive):\n%s", c.name, store.reads, c.reads, d)
		}
	}
}
