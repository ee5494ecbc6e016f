package httpapi_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lcorp/licensing-controller/internal/auth"
	"github.com/lcorp/licensing-controller/internal/httpapi"
	"github.com/lcorp/licensing-controller/internal/pgtest"
	"github.com/lcorp/licensing-controller/internal/store"
)

// TestReadReplica runs the service on a real primary and a streaming
// standby (pg_basebackup -R) with LC_DATABASE_READ_URL. With the standby's
// replay paused, a reader who did not write sees the standby's state (its
// reads go there), the writer reads its own write from the primary until
// the window passes, a replica that lags more than its limit is left for
// the primary, and a stopped standby costs a read nothing.
func TestReadReplica(t *testing.T) {
	ctx := context.Background()
	pair := pgtest.NewReplicated(t)
	open := func(maxLag time.Duration) *store.Store {
		st, err := store.Open(ctx, store.Options{URL: pair.PrimaryURL, ReadURL: pair.StandbyURL, ReadMaxLag: maxLag})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	st := open(time.Hour) // the paused standby stays in use
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	const window = 1500 * time.Millisecond
	f := newFixtureDeps(t, st, func(d *httpapi.Deps) {
		d.ReadReplica = httpapi.ReadReplica{Mark: st.ReadReplica, Window: window}
	})
	withLicence(t, f, 100)
	if _, err := f.auth.CreateUser(ctx, 1, "viewer", auth.RoleLicenseAdmin, "viewer-password"); err != nil {
		t.Fatal(err)
	}
	viewer := func(path string) req {
		return req{method: "GET", path: path, user: "viewer@customer1", pass: "viewer-password"}
	}
	eventually := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("after 20 s: %s", what)
			}
		}
	}
	names := func(r resp) []string {
		t.Helper()
		if r.status != 200 {
			t.Fatalf("list: %d %s", r.status, r.body)
		}
		var as []struct{ Name string }
		if err := json.Unmarshal(r.body, &as); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, a := range as {
			out = append(out, a.Name)
		}
		return out
	}
	has := func(r resp, name string) bool { return strings.Contains(strings.Join(names(r), ","), name) }
	hostUsage := lv1 + "/grouped-usage/host?hostId=h-paused&includeAgents=true"
	eventually("the standby is in use", st.ReplicaInUse)
	eventually("the standby has the licence", func() bool { return f.do(t, viewer(lv1+"/info")).status == 200 })

	if err := pair.SetReplay(ctx, false); err != nil {
		t.Fatal(err)
	}
	createAllocation(t, f, `{"name":"while-paused","limits":[{"package":"PREMIUM","units":5}]}`)
	wantGranted(t, register(t, f, agent{AgentID: "a1", AgentType: "APP_AGENT", Host: onHost("h-paused", 2)}, ""), 201)
	if r := f.do(t, admin("GET", allocations, nil)); !has(r, "while-paused") {
		t.Errorf("the writer does not read its own write: %v", names(r))
	}
	if r := f.do(t, viewer(allocations)); has(r, "while-paused") {
		t.Errorf("another reader's list came from the primary, not the paused standby: %v", names(r))
	}
	if g := f.do(t, viewer(hostUsage)); g.status != 200 || strings.Contains(string(g.body), `"APP_AGENT"`) {
		t.Errorf("grouped usage of another reader did not come from the paused standby: %d %s", g.status, g.body)
	}
	if g := f.do(t, admin("GET", hostUsage, nil)); g.status != 200 || !strings.Contains(string(g.body), `"APP_AGENT"`) {
		t.Errorf("the writer's grouped usage: %d %s", g.status, g.body)
	}
	time.Sleep(window)
	if r := f.do(t, admin("GET", allocations, nil)); has(r, "while-paused") {
		t.Errorf("the writer still reads the primary %s after its write: %v", window, names(r))
	}

	// A replica further behind than LC_READ_MAX_LAG is left for the primary.
	lagging := open(time.Second)
	eventually("a store with a 1 s limit finds the paused standby too far behind", func() bool {
		lag, known := lagging.ReplicaLag()
		return known && lag > time.Second && !lagging.ReplicaInUse()
	})
	if !st.ReplicaInUse() {
		t.Error("the store with a 1 h limit left the paused standby too")
	}
	allocs, err := lagging.Licensing().FindAllocations(lagging.ReadReplica(ctx), 1)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range allocs {
		found = found || a.Name == "while-paused"
	}
	if !found {
		t.Errorf("a read of a store whose replica lags came from the replica: %d allocations", len(allocs))
	}

	if err := pair.SetReplay(ctx, true); err != nil {
		t.Fatal(err)
	}
	eventually("the standby replays the write", func() bool { return has(f.do(t, viewer(allocations)), "while-paused") })
	eventually("the caught-up standby is in use again", lagging.ReplicaInUse)

	// A stopped standby: reads go on, from the primary.
	if err := pair.StopStandby(); err != nil {
		t.Fatal(err)
	}
	createAllocation(t, f, `{"name":"standby-down","limits":[{"package":"PREMIUM","units":5}]}`)
	time.Sleep(window)
	for range 3 {
		if r := f.do(t, viewer(allocations)); !has(r, "standby-down") {
			t.Fatalf("with the standby down: %v", names(r))
		}
	}
	if st.ReplicaInUse() {
		t.Error("a standby that is down is still in use")
	}
	if err := pair.StartStandby(); err != nil {
		t.Fatal(err)
	}
	eventually("the restarted standby is in use again", st.ReplicaInUse)
}
