package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/lcorp/licensing-controller/internal/jobs"
)

// JobEventRetention names event retention in lc_background_job_failures_total.
const JobEventRetention = "event-retention"

// EventPruneBatch is the most events one retention statement deletes.
const EventPruneBatch = 5000

// PruneEvents deletes the usage events older than retention (at the
// engine's clock), in batches, and returns how many went.
func (e *Engine) PruneEvents(ctx context.Context, retention time.Duration) (int64, error) {
	batch := e.opt.EventPruneBatch
	if batch <= 0 {
		batch = EventPruneBatch
	}
	n, err := e.store.PruneEvents(ctx, e.now().UTC().Add(-retention), batch)
	if err != nil {
		return n, fmt.Errorf("event retention: %w", err)
	}
	return n, nil
}

// RunEventRetention prunes events older than retention at start and then
// hourly, until ctx ends. Run it on the leader.
func (e *Engine) RunEventRetention(ctx context.Context, retention time.Duration, failures *jobs.Failures) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := e.PruneEvents(ctx, retention); err != nil && ctx.Err() == nil {
			failures.Fail(ctx, JobEventRetention, "all accounts", err)
		} else if err == nil {
			failures.OK(ctx, JobEventRetention, "all accounts")
			if n > 0 {
				e.log.InfoContext(ctx, "event retention pruned usage events", "events", n, "retention", retention)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
