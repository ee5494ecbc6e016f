package engine

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/lcorp/licensing-controller/internal/jobs"
	"github.com/lcorp/licensing-controller/internal/licensing"
)

// SeriesKey names one usage series: an account's (PoolID "") or a pool's
// units of one package (a rule's: licences of one module).
type SeriesKey struct {
	AccountID int64
	PoolID    string
	Package   string
}

// Sample is one series at one sampling time.
type Sample struct {
	SeriesKey
	Provisioned int64
	Used        int64
	// Registered counts live leases per agent type (types without agents
	// are absent).
	Registered map[string]int64
}

// Registered is the number of live leases of one agent type in a pool
// (PoolID "": the account level) and package at a sampling time.
type Registered struct {
	SeriesKey
	AgentType string
	N         int64
}

// SampleUsage is what the sampler reads of the live usage, aggregated by
// the database.
type SampleUsage struct {
	// Pools is the units (licences) in use per pool and package (module).
	Pools []PoolUsage
	// Accounts is the account-level units per package: the union of the
	// charged hosts, each counted once (PoolID and Kind empty).
	Accounts []PoolUsage
	// Registered is the live leases per pool, package and agent type, and
	// per account (PoolID ""): there the allocations' agents count in the
	// package their host counts in.
	Registered []Registered
}

// SeriesStore is the persistence of the usage sampler. Errors wrap fault kinds.
type SeriesStore interface {
	InTx(ctx context.Context, fn func(SeriesStore) error) error
	// Licensing is the licensing store bound to the same transaction.
	Licensing() licensing.Store
	AccountIDs(ctx context.Context) ([]int64, error)
	// ClaimSample records that the sampling time at is taken; false when
	// it was already (another sampler, a restart). Until the transaction
	// ends, a concurrent claim of the same time waits.
	ClaimSample(ctx context.Context, at time.Time) (bool, error)
	SampleUsage(ctx context.Context, now time.Time) (SampleUsage, error)
	// SaveSamples stores the samples of one sampling time and adds them to
	// the hourly and daily rollups.
	SaveSamples(ctx context.Context, at time.Time, samples []Sample) error
	// PruneSamples deletes samples and rollups older than before, batch
	// rows per statement, and returns how many rows went.
	PruneSamples(ctx context.Context, before time.Time, batch int) (int64, error)
	// HasSamples reports whether the account has samples at the time at.
	HasSamples(ctx context.Context, accountID int64, at time.Time) (bool, error)
}

// SamplerOptions configure a Sampler.
type SamplerOptions struct {
	Interval  time.Duration    // sampling interval, default 5m
	Retention time.Duration    // samples and rollups kept, default 400 days
	Poll      time.Duration    // how often Run looks at the clock, default min(Interval, 1s)
	Now       func() time.Time // default time.Now
	Logger    *slog.Logger
	// Failures counts and logs the failures of accounts' samples (nil:
	// logged only).
	Failures *jobs.Failures
}

// MaxGapFill bounds how far back the intervals an account missed (its
// samples failed) are filled in once they succeed again.
const MaxGapFill = 24 * time.Hour

// Job names of the sampler in lc_background_job_failures_total.
const (
	JobSampler = "usage-sampler"
	JobPruner  = "usage-retention"
)

// PruneBatch is the most rows one pruning statement deletes, so that pruning
// never holds long locks.
const PruneBatch = 5000

// Sampler records the usage series of API.md §6 every sampling interval.
type Sampler struct {
	store SeriesStore
	lic   *licensing.Service
	opt   SamplerOptions
	mu    sync.Mutex
	// missed is, per account, the first sampling time whose samples failed
	// since the account last succeeded; missedAll the first time whole
	// sampling failed (the database was down, say). The intervals from
	// there are filled in when the account succeeds again. Intervals that
	// were not sampled at all (the service was stopped) are not.
	missed    map[int64]time.Time
	missedAll time.Time
}

// NewSampler returns a Sampler.
func NewSampler(store SeriesStore, lic *licensing.Service, opt SamplerOptions) *Sampler {
	if opt.Interval <= 0 {
		opt.Interval = 5 * time.Minute
	}
	if opt.Retention <= 0 {
		opt.Retention = 400 * 24 * time.Hour
	}
	if opt.Poll <= 0 {
		opt.Poll = min(opt.Interval, time.Second)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Failures == nil {
		opt.Failures = jobs.NewFailures(nil, opt.Logger)
	}
	return &Sampler{store: store, lic: lic, opt: opt, missed: map[int64]time.Time{}}
}

// Interval is the sampling interval.
func (s *Sampler) Interval() time.Duration { return s.opt.Interval }

// slot is the sampling time of the interval that holds now.
func (s *Sampler) slot(now time.Time) time.Time {
	return now.UTC().Truncate(s.opt.Interval)
}

// Sample records every series at the sampling time of the current interval,
// in one transaction. It returns false when that time was sampled already.
// Each account's samples are saved in a savepoint of their own: an account
// whose samples fail is counted and logged and the others are saved; once
// it succeeds again, the intervals it missed (up to MaxGapFill) are filled
// in with the samples of the first interval that succeeded.
func (s *Sampler) Sample(ctx context.Context) (bool, error) {
	now := s.opt.Now().UTC()
	at := s.slot(now)
	var (
		sampled bool
		failed  map[int64]bool // accounts whose samples failed (true) or were saved
	)
	s.mu.Lock()
	missed, missedAll := maps.Clone(s.missed), s.missedAll
	s.mu.Unlock()
	err := s.store.InTx(ctx, func(tx SeriesStore) error {
		failed = map[int64]bool{}
		ok, err := tx.ClaimSample(ctx, at)
		if err != nil || !ok {
			return err
		}
		ids, err := tx.AccountIDs(ctx)
		if err != nil {
			return err
		}
		u, err := tx.SampleUsage(ctx, now)
		if err != nil {
			return err
		}
		for _, id := range ids {
			from, ok := missed[id]
			if !missedAll.IsZero() && (!ok || missedAll.Before(from)) {
				from = missedAll
			}
			err := tx.InTx(ctx, func(tx SeriesStore) error { return s.saveAccount(ctx, tx, id, at, from, u) })
			if err != nil {
				if ctx.Err() != nil {
					return err
				}
				s.opt.Failures.Fail(ctx, JobSampler, fmt.Sprintf("account %d", id), err)
				failed[id] = true
				continue
			}
			s.opt.Failures.OK(ctx, JobSampler, fmt.Sprintf("account %d", id))
			failed[id] = false
		}
		sampled = true
		return nil
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if s.missedAll.IsZero() && ctx.Err() == nil {
			s.missedAll = at
		}
		return false, fmt.Errorf("sample usage at %s: %w", at.Format(time.RFC3339), err)
	}
	if !sampled {
		return false, nil
	}
	for id, f := range failed {
		if _, ok := s.missed[id]; f && !ok {
			s.missed[id] = at
		} else if !f {
			delete(s.missed, id)
		}
	}
	if !s.missedAll.IsZero() {
		for id, f := range failed { // those that failed now missed the earlier intervals too
			if t, ok := s.missed[id]; f && (!ok || s.missedAll.Before(t)) {
				s.missed[id] = s.missedAll
			}
		}
		s.missedAll = time.Time{}
	}
	return true, nil
}

// saveAccount saves an account's samples at at, and, from the first
// interval it missed (zero: none), at the intervals that have none of its
// samples.
func (s *Sampler) saveAccount(ctx context.Context, tx SeriesStore, id int64, at, from time.Time, u SampleUsage) error {
	ss, err := s.accountSamples(ctx, tx, id, u)
	if err != nil {
		return err
	}
	if err := tx.SaveSamples(ctx, at, ss); err != nil {
		return err
	}
	if from.IsZero() || len(ss) == 0 {
		return nil
	}
	if earliest := at.Add(-MaxGapFill); from.Before(earliest) {
		from = earliest
	}
	for g := from; g.Before(at); g = g.Add(s.opt.Interval) {
		has, err := tx.HasSamples(ctx, id, g)
		if err != nil {
			return err
		}
		if has { // sampled meanwhile (another leader)
			continue
		}
		if err := tx.SaveSamples(ctx, g, ss); err != nil {
			return fmt.Errorf("fill the missed interval %s: %w", g.Format(time.RFC3339), err)
		}
	}
	return nil
}

// accountSamples builds an account's samples: the provisioned units come
// from its pools (a handful of rows), the usage from u.
func (s *Sampler) accountSamples(ctx context.Context, tx SeriesStore, accountID int64, u SampleUsage) ([]Sample, error) {
	ps, err := s.lic.Pools(ctx, tx.Licensing(), accountID)
	if err != nil {
		return nil, err
	}
	licensed, err := s.lic.LicensedUnits(ctx, tx.Licensing(), accountID)
	if err != nil {
		return nil, err
	}
	set := map[SeriesKey]*Sample{}
	get := func(k SeriesKey) *Sample {
		if sm, ok := set[k]; ok {
			return sm
		}
		sm := &Sample{SeriesKey: k, Registered: map[string]int64{}}
		set[k] = sm
		return sm
	}
	known := map[string]bool{} // pools of the account
	for _, pkg := range licensing.Packages {
		if n := licensed[pkg]; n > 0 {
			get(SeriesKey{accountID, "", pkg}).Provisioned = n
		}
	}
	for _, a := range ps.Allocations {
		known[a.ID] = true
		for _, l := range a.Limits {
			if l.Units > 0 {
				get(SeriesKey{accountID, a.ID, l.Package}).Provisioned = l.Units
			}
		}
	}
	for _, r := range ps.Rules {
		known[r.ID] = true
		for _, e := range r.Entitlements {
			get(SeriesKey{accountID, r.ID, e.ModuleType}).Provisioned = e.Licenses
		}
	}
	for _, p := range u.Pools {
		if p.AccountID == accountID && known[p.PoolID] && p.Used != 0 {
			get(SeriesKey{accountID, p.PoolID, p.Item}).Used = p.Used
		}
	}
	for _, p := range u.Accounts {
		if p.AccountID == accountID && p.Used != 0 {
			get(SeriesKey{accountID, "", p.Item}).Used = p.Used
		}
	}
	for _, r := range u.Registered {
		if r.AccountID == accountID && (r.PoolID == "" || known[r.PoolID]) {
			get(r.SeriesKey).Registered[r.AgentType] += r.N
		}
	}
	out := make([]Sample, 0, len(set))
	for _, sm := range set {
		out = append(out, *sm)
	}
	slices.SortFunc(out, func(a, b Sample) int {
		return cmp.Or(cmp.Compare(a.PoolID, b.PoolID), cmp.Compare(a.Package, b.Package))
	})
	return out, nil
}

// Prune deletes samples and rollups older than the retention.
func (s *Sampler) Prune(ctx context.Context) (int64, error) {
	before := s.opt.Now().UTC().Add(-s.opt.Retention)
	n, err := s.store.PruneSamples(ctx, before, PruneBatch)
	if err != nil {
		return n, fmt.Errorf("prune usage samples: %w", err)
	}
	return n, nil
}

// Run samples every interval, and prunes once per hour (and at start),
// until ctx ends. Run it on the leader only; should two run, the sampling
// time is claimed once all the same. Pruning runs beside sampling, so that
// a large backlog (a shortened retention) delays no sample.
func (s *Sampler) Run(ctx context.Context) {
	s.mu.Lock()
	clear(s.missed) // what another leader sampled meanwhile is not known
	s.missedAll = time.Time{}
	s.mu.Unlock()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { s.runPruner(ctx) })
	t := time.NewTicker(s.opt.Poll)
	defer t.Stop()
	var last time.Time
	for {
		if slot := s.slot(s.opt.Now()); slot.After(last) {
			if _, err := s.Sample(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				s.opt.Failures.Fail(ctx, JobSampler, "all accounts", err)
			} else {
				s.opt.Failures.OK(ctx, JobSampler, "all accounts")
				last = slot
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Sampler) runPruner(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := s.Prune(ctx); err != nil && ctx.Err() == nil {
			s.opt.Failures.Fail(ctx, JobPruner, "all accounts", err)
		} else if n > 0 {
			s.opt.Logger.Info("usage retention pruned samples and rollups", "rows", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
