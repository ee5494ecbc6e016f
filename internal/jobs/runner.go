package jobs

import (
	"context"
	"errors"
	"sync"
	"time"
)

// errReported marks an error whose parts a job counted and logged itself.
var errReported = errors.New("reported by the job")

// Reported marks err as counted and logged by the job (per account, say):
// Run neither counts nor logs it again.
func Reported(err error) error {
	if err == nil {
		return nil
	}
	return errors.Join(errReported, err)
}

// Job is one background job: a name (in metrics and logs), how often it
// runs, and one run. A job that works per account isolates the accounts
// itself and reports them through Failures; an error it returns counts as
// a failure of the job as a whole.
type Job struct {
	Name     string
	Interval time.Duration
	Run      func(ctx context.Context) error
}

// Run runs every job at start and then every interval until ctx ends, one
// goroutine per job (a slow job does not hold the others back), and
// returns when all have stopped. Run it under the leader lock.
func Run(ctx context.Context, f *Failures, js ...Job) {
	var wg sync.WaitGroup
	for _, j := range js {
		wg.Go(func() { loop(ctx, f, j) })
	}
	wg.Wait()
}

func loop(ctx context.Context, f *Failures, j Job) {
	t := time.NewTicker(j.Interval)
	defer t.Stop()
	for {
		if err := j.Run(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			if !errors.Is(err, errReported) {
				f.Fail(ctx, j.Name, "job", err)
			}
		} else {
			f.OK(ctx, j.Name, "job")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
