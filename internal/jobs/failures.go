// Package jobs holds what the background jobs share: counting and logging
// their failures so that one account's or one job's failure is isolated,
// visible in the metrics, and logged once rather than every second.
package jobs

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/lcorp/licensing-controller/internal/fault"
)

// Failures counts background job failures in
// lc_background_job_failures_total{job} and logs each failure kind of a
// job and scope (an account, say) once, until that scope succeeds again.
type Failures struct {
	log     *slog.Logger
	counter *prometheus.CounterVec
	mu      sync.Mutex
	seen    map[string]string // job/scope -> kind logged
}

// NewFailures registers the counter with reg (nil: not registered).
func NewFailures(reg prometheus.Registerer, log *slog.Logger) *Failures {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Failures{log: log, seen: map[string]string{},
		counter: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lc_background_job_failures_total",
			Help: "Failed runs of background jobs (per account where a job works per account), by job.",
		}, []string{"job"})}
	if reg != nil {
		if err := reg.Register(f.counter); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				f.counter = are.ExistingCollector.(*prometheus.CounterVec)
			}
		}
	}
	return f
}

// kind classifies an error for "log once": its fault code, or its kind.
func kind(err error) string {
	if fe, ok := fault.As(err); ok {
		return fe.Code
	}
	for _, k := range []error{fault.ErrUnavailable, fault.ErrTransient, fault.ErrInvalid, fault.ErrConflict} {
		if errors.Is(err, k) {
			return k.Error()
		}
	}
	return "error"
}

// Fail counts a failure of job in scope and logs it unless the same kind
// of failure was logged for them since their last success.
func (f *Failures) Fail(ctx context.Context, job, scope string, err error) {
	if f == nil {
		return
	}
	f.counter.WithLabelValues(job).Inc()
	key, k := job+"/"+scope, kind(err)
	f.mu.Lock()
	logged := f.seen[key] == k
	f.seen[key] = k
	f.mu.Unlock()
	if !logged {
		f.log.ErrorContext(ctx, "background job failed (logged once until it recovers)", "job", job, "scope", scope, "error", err)
	}
}

// OK records a success of job in scope: a later failure is logged again.
func (f *Failures) OK(ctx context.Context, job, scope string) {
	if f == nil {
		return
	}
	key := job + "/" + scope
	f.mu.Lock()
	_, failed := f.seen[key]
	delete(f.seen, key)
	f.mu.Unlock()
	if failed {
		f.log.InfoContext(ctx, "background job recovered", "job", job, "scope", scope)
	}
}

// Count returns the failures counted for job.
func (f *Failures) Count(job string) float64 {
	var m dto.Metric
	if err := f.counter.WithLabelValues(job).Write(&m); err != nil || m.Counter == nil {
		return 0
	}
	return m.Counter.GetValue()
}
