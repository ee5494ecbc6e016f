package jobs

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRunCountsFailuresOncePerJob(t *testing.T) {
	f := NewFailures(prometheus.NewRegistry(), nil)
	var okRuns, failRuns, reportedRuns atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, f,
			Job{Name: "ok", Interval: 10 * time.Millisecond, Run: func(context.Context) error { okRuns.Add(1); return nil }},
			Job{Name: "fails", Interval: 10 * time.Millisecond, Run: func(context.Context) error { failRuns.Add(1); return errors.New("boom") }},
			Job{Name: "reported", Interval: 10 * time.Millisecond, Run: func(context.Context) error {
				reportedRuns.Add(1)
				return Reported(errors.New("counted by the job itself"))
			}})
	}()
	deadline := time.Now().Add(5 * time.Second)
	for okRuns.Load() < 3 || failRuns.Load() < 3 || reportedRuns.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("runs: ok %d, fails %d, reported %d", okRuns.Load(), failRuns.Load(), reportedRuns.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if n := f.Count("fails"); n < 3 || n != float64(failRuns.Load()) {
		t.Errorf("failures of fails: %v, want one per run (%d)", n, failRuns.Load())
	}
	if n := f.Count("reported"); n != 0 {
		t.Errorf("a reported error was counted again: %v", n)
	}
	if n := f.Count("ok"); n != 0 {
		t.Errorf("failures of ok: %v", n)
	}
	if Reported(nil) != nil {
		t.Error("Reported(nil) is not nil")
	}
}
