package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// cpuSample is the CPU time used so far, from /proc (Linux): by the whole
// machine (every CPU, idle and I/O wait excluded), by the service and by
// the processes named postgres (a local server's).
type cpuSample struct {
	ok                         bool
	machine, service, postgres time.Duration
}

// userHZ is the unit of /proc's CPU times on Linux.
const userHZ = 100

func ticks(n int64) time.Duration { return time.Duration(n) * time.Second / userHZ }

func sampleCPU(servicePID int) cpuSample {
	var s cpuSample
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal …
	if len(f) < 9 || f[0] != "cpu" {
		return s
	}
	for i, v := range f[1:9] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		s.machine += ticks(n)
	}
	s.service = processCPU(strconv.Itoa(servicePID))
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		if comm, err := os.ReadFile(d + "/comm"); err == nil && strings.TrimSpace(string(comm)) == "postgres" {
			s.postgres += processCPU(filepath.Base(d))
		}
	}
	s.ok = true
	return s
}

// processCPU is a process's user and system time (all its threads).
func processCPU(pid string) time.Duration {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// The command name is in parentheses and may hold spaces.
	_, rest, ok := strings.Cut(string(b), ") ")
	if !ok {
		return 0
	}
	f := strings.Fields(rest) // state is field 3; utime and stime are 14 and 15
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ticks(u + st)
}

// perOp says how much CPU each of n operations took between a and b.
func perOp(a, b cpuSample, n int64) string {
	if !a.ok || !b.ok || n <= 0 {
		return "not measured (no /proc)"
	}
	us := func(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d.Microseconds())/float64(n)) }
	m, sv, pg := b.machine-a.machine, b.service-a.service, b.postgres-a.postgres
	return fmt.Sprintf("machine %s (service %s, PostgreSQL %s, the rest, this load generator included, %s)", us(m), us(sv), us(pg), us(m-sv-pg))
}
