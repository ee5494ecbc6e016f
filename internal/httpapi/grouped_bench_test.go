package httpapi

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lcorp/licensing-controller/internal/engine"
	"github.com/lcorp/licensing-controller/internal/usage"
)

// rowsOf serves fixed usage rows: the benchmark below measures the work
// after the database (grouping, DTO, JSON), which `make bench-engine`
// measures end to end on PostgreSQL.
type rowsOf []engine.UsageRow

func (r rowsOf) UsageByApps(_ context.Context, _ int64, _ []int64, _ []string, _ time.Time, sink engine.UsageSink) error {
	return r.send(sink)
}

func (r rowsOf) UsageByHosts(_ context.Context, _ int64, _ []string, _ time.Time, sink engine.UsageSink) error {
	return r.send(sink)
}

// send hands the rows over as a store does: a copy each, in one reused row.
func (r rowsOf) send(sink engine.UsageSink) error {
	sink.Start()
	var x engine.UsageRow
	for i := range r {
		x = r[i]
		if err := sink.Row(&x); err != nil {
			return err
		}
	}
	return nil
}

func (rowsOf) Applications(context.Context, int64) ([]engine.Application, error) { return nil, nil }

// estateRows are the live leases of 100 of lc-loadgen's applications: 45
// agents each, on hosts drawn from 10 000, spread over 50 allocations.
func estateRows() ([]engine.UsageRow, []int64) {
	rng := rand.New(rand.NewPCG(7, 8))
	types := []string{"APP_AGENT", "MACHINE_AGENT", "DOT_NET_APP_AGENT", "NODEJS_APP_AGENT"}
	version := "23.4.0"
	var rows []engine.UsageRow
	var ids []int64
	for a := range 100 {
		app := int64(a * 20)
		ids = append(ids, app)
		name := fmt.Sprintf("app-%d", app)
		for n := range 45 {
			h := rng.IntN(10000)
			alloc := h % 50
			vcpu := int64(2 + h%63)
			node, container := fmt.Sprintf("node-%d-%d", app, n), fmt.Sprintf("c%08x", rng.Uint32())
			rows = append(rows, engine.UsageRow{AgentType: types[rng.IntN(len(types))], AgentVersion: &version,
				PoolKind: engine.PoolAllocation, PoolID: fmt.Sprintf("pool-%02d", alloc), LicenseKey: fmt.Sprintf("key-%02d", alloc),
				HostID: fmt.Sprintf("a%d-h%d", alloc, h), HostName: fmt.Sprintf("a%d-h%d", alloc, h), AppID: &app, AppName: &name,
				Node: &node, ContainerID: &container, HostVCPU: &vcpu})
		}
	}
	return rows, ids
}

// discarding is a response writer that counts what it is sent, as a
// socket would take it.
type discarding struct {
	header http.Header
	n      int
}

func (d *discarding) Header() http.Header         { return d.header }
func (d *discarding) WriteHeader(int)             {}
func (d *discarding) Write(b []byte) (int, error) { d.n += len(b); return len(b), nil }

// BenchmarkGroupedUsageResponse groups 4 500 leases of 100 applications
// with their hosts and agents and writes the JSON answer.
func BenchmarkGroupedUsageResponse(b *testing.B) {
	rows, ids := estateRows()
	svc := usage.NewService(rowsOf(rows), nil)
	gin.SetMode(gin.ReleaseMode)
	size := 0
	b.ReportAllocs()
	for b.Loop() {
		items := appItems(true)
		t, err := svc.EachApplicationByID(context.Background(), 1, ids, items)
		if err != nil {
			b.Fatal(err)
		}
		w := &discarding{header: http.Header{}}
		c, _ := gin.CreateTestContext(w)
		c.Render(200, groupAnswer{t, items.encodedItems})
		size = w.n
	}
	b.ReportMetric(float64(size), "bytes/answer")
}
