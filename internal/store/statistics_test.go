package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/lcorp/licensing-controller/internal/engine"
	"github.com/lcorp/licensing-controller/internal/pgtest"
	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
)

// A table that grew since its statistics were taken is analysed once, and
// again only after it grows further.
func TestAnalyzeStaleFollowsGrowth(t *testing.T) {
	st := storetest.Open(t, store.Options{URL: pgtest.URL(t)})
	ctx := context.Background()
	addHosts := func(from, n int) {
		t.Helper()
		hosts := make([]engine.Host, n)
		for i := range hosts {
			hosts[i] = engine.Host{AccountID: 1, ID: fmt.Sprintf("host-%05d", from+i), Name: "h", FirstSeenAt: time.Now()}
		}
		if err := st.Engine().SaveHosts(ctx, hosts); err != nil {
			t.Fatal(err)
		}
	}
	// waitAnalyzed calls AnalyzeStale until it analyses hosts: the row
	// counts it reads reach PostgreSQL's statistics within a second or so.
	waitAnalyzed := func() {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			tables, err := st.AnalyzeStale(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(tables, "hosts") {
				return
			}
		}
		t.Fatal("hosts was not analysed after it grew")
	}
	addHosts(0, 1500)
	waitAnalyzed()
	if tables, err := st.AnalyzeStale(ctx); err != nil || slices.Contains(tables, "hosts") {
		t.Fatalf("hosts analysed again without having changed: %v %v", tables, err)
	}
	addHosts(1500, 3000)
	waitAnalyzed()
}
