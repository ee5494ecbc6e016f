package httpapi_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/lcorp/licensing-controller/internal/store/storetest"
)

// BenchmarkHeartbeat is one agent's single heartbeat through the whole
// handler (authentication, middleware, engine, store) on each engine: the
// service's own cost per heartbeat, without a network or a load generator
// in the figures. `go test ./internal/httpapi -run '^$' -bench Heartbeat`.
func BenchmarkHeartbeat(b *testing.B) {
	for _, e := range storetest.Engines() {
		b.Run(e.Name, func(b *testing.B) {
			f := newFixture(b, e.Open(b))
			withLicence(b, f, 1000)
			pool := createAllocation(b, f, `{"name":"bench","limits":[{"package":"PREMIUM","units":100}]}`)
			id := wantGranted(b, register(b, f, agent{AgentID: "bench-agent", AgentType: "MACHINE_AGENT", LicenseKey: pool,
				Host: onHost("bench-host", 4)}, ""), 201)["registrationId"].(string)
			hb := admin("POST", registrations+"/"+id+"/heartbeat", nil)
			b.ReportAllocs()
			cpu0 := processCPU(b)
			for b.Loop() {
				if r := f.do(b, hb); r.status != 200 {
					b.Fatalf("heartbeat: %d %s", r.status, r.body)
				}
			}
			// This process's CPU: the service's, not PostgreSQL's.
			b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// processCPU is the user and system CPU this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
