package httpapi_test

import (
	"fmt"
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

// BenchmarkRelease is one agent's release (DELETE of its registration)
// through the whole handler on each engine; the registration before each
// is not timed. `go test ./internal/httpapi -run '^$' -bench Release`.
func BenchmarkRelease(b *testing.B) {
	for _, e := range storetest.Engines() {
		b.Run(e.Name, func(b *testing.B) {
			f := newFixture(b, e.Open(b))
			withLicence(b, f, 1000)
			pool := createAllocation(b, f, `{"name":"bench","limits":[{"package":"PREMIUM","units":100}]}`)
			b.ReportAllocs()
			var cpu time.Duration
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				id := wantGranted(b, register(b, f, agent{AgentID: fmt.Sprintf("bench-agent-%d", i), AgentType: "MACHINE_AGENT",
					LicenseKey: pool, Host: onHost(fmt.Sprintf("bench-host-%d", i), 4)}, ""), 201)["registrationId"].(string)
				del := admin("DELETE", registrations+"/"+id, nil)
				cpu0 := processCPU(b)
				b.StartTimer()
				if r := f.do(b, del); r.status != 204 {
					b.Fatalf("release: %d %s", r.status, r.body)
				}
				b.StopTimer()
				cpu += processCPU(b) - cpu0
				b.StartTimer()
			}
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// BenchmarkRegistration is one lone registration (nothing else queued) of
// a new agent on one of ten hosts through the whole handler on each
// engine. `go test ./internal/httpapi -run '^$' -bench Registration`.
func BenchmarkRegistration(b *testing.B) {
	for _, e := range storetest.Engines() {
		b.Run(e.Name, func(b *testing.B) {
			f := newFixture(b, e.Open(b))
			withLicence(b, f, 1000)
			pool := createAllocation(b, f, `{"name":"bench","limits":[{"package":"PREMIUM","units":100}]}`)
			b.ReportAllocs()
			cpu0 := processCPU(b)
			for i := 0; b.Loop(); i++ {
				wantGranted(b, register(b, f, agent{AgentID: fmt.Sprintf("bench-agent-%d", i), AgentType: "APP_AGENT",
					LicenseKey: pool, Host: onHost(fmt.Sprintf("bench-host-%d", i%10), 4)}, ""), 201)
			}
			b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}
