package httpapi_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lcorp/licensing-controller/internal/engine"
	"github.com/lcorp/licensing-controller/internal/jobs"
	"github.com/lcorp/licensing-controller/internal/pgtest"
	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
)

// TestOneAccountCannotStopSampling: a rule of account 2 whose entitlement
// was stored as 2^63-1 (before bounds existed) made the hourly rollup fail
// with "bigint out of range" on every tick, and no account got samples.
// Now account 1 keeps its samples and the failure is counted.
func TestOneAccountCannotStopSampling(t *testing.T) {
	st := storetest.Open(t, store.Options{URL: pgtest.URL(t)})
	f := newFixture(t, st)
	ctx := context.Background()
	acmeID := otherAccount(t, f)
	r := f.do(t, req{method: "POST", path: rules, body: ruleBody("big", ""), user: "bob@acme", pass: "bob-password"})
	if r.status/100 != 2 {
		t.Fatalf("rule: %d %s", r.status, r.body)
	}
	db, err := st.DB()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE license_rules SET entitlements = '[{"ModuleType":"JAVA","Licenses":9223372036854775807}]'
		WHERE account_id = $1`, acmeID); err != nil {
		t.Fatal(err)
	}
	failures := jobs.NewFailures(nil, nil)
	sampler := engine.NewSampler(st.Series(), f.lic, engine.SamplerOptions{Interval: 5 * time.Minute, Now: f.clock.Now, Failures: failures})
	start := f.clock.Now().Truncate(time.Hour)
	f.clock.Set(start)
	for i := range 3 { // the second sample of the hour overflows the rollup's sum
		if _, err := sampler.Sample(ctx); err != nil {
			t.Fatalf("sample %d: %v", i, err)
		}
		f.clock.Advance(5 * time.Minute)
	}
	if got := failures.Count(engine.JobSampler); got < 1 {
		t.Errorf("lc_background_job_failures_total{job=%q} = %v, want >= 1", engine.JobSampler, got)
	}
	for i := range 3 {
		at := start.Add(time.Duration(i) * 5 * time.Minute)
		if has, err := st.Series().HasSamples(ctx, 1, at); err != nil || !has {
			t.Errorf("account 1 has no samples at %s (%v)", at, err)
		}
	}
}

// failingSeries fails the samples of one account while fail is set.
type failingSeries struct {
	engine.SeriesStore
	account int64
	fail    *bool
}

func (s failingSeries) InTx(ctx context.Context, fn func(engine.SeriesStore) error) error {
	return s.SeriesStore.InTx(ctx, func(tx engine.SeriesStore) error {
		return fn(failingSeries{tx, s.account, s.fail})
	})
}

func (s failingSeries) SaveSamples(ctx context.Context, at time.Time, samples []engine.Sample) error {
	for _, sm := range samples {
		if *s.fail && sm.AccountID == s.account {
			return errors.New("injected failure")
		}
	}
	return s.SeriesStore.SaveSamples(ctx, at, samples)
}

// TestMissedIntervalsAreFilledIn: the intervals an account's samples failed
// get samples once it succeeds again; intervals that were never sampled
// (the service was stopped) stay empty.
func TestMissedIntervalsAreFilledIn(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		ctx := context.Background()
		fail := false
		sampler := engine.NewSampler(failingSeries{st.Series(), 1, &fail}, f.lic,
			engine.SamplerOptions{Interval: 5 * time.Minute, Now: f.clock.Now})
		start := f.clock.Now().Truncate(5 * time.Minute)
		f.clock.Set(start)
		for i := range 6 {
			fail = i >= 1 && i <= 3 // intervals 1-3 fail
			if _, err := sampler.Sample(ctx); err != nil {
				t.Fatalf("sample %d: %v", i, err)
			}
			f.clock.Advance(5 * time.Minute)
		}
		for i := range 6 {
			at := start.Add(time.Duration(i) * 5 * time.Minute)
			if has, err := st.Series().HasSamples(ctx, 1, at); err != nil || !has {
				t.Errorf("interval %d (%s): no samples (%v)", i, at.Format(time.TimeOnly), err)
			}
		}
		f.clock.Advance(5 * time.Minute) // interval 6 is not sampled at all
		if _, err := sampler.Sample(ctx); err != nil {
			t.Fatal(err)
		}
		if has, err := st.Series().HasSamples(ctx, 1, start.Add(30*time.Minute)); err != nil || has {
			t.Errorf("the interval that was never sampled has samples (%v)", err)
		}
	})
}

// TestRollupsCountEachAccountOnce: since each account's samples are saved
// on their own, the rollup of one save must take that account's samples
// only (found in review: with two accounts, account 1's hourly count was 2
// after one sample).
func TestRollupsCountEachAccountOnce(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st, longLeases)
		ctx := context.Background()
		for _, name := range []string{"acme", "globex"} {
			acc, err := f.auth.CreateAccount(ctx, name, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.lic.InstallTrial(ctx, acc.ID); err != nil {
				t.Fatal(err)
			}
		}
		t0 := f.clock.Now().Truncate(time.Hour)
		f.clock.Set(t0)
		sample(t, f)
		got := getSeries(t, f, seriesPath("/account/1", t0, t0.Add(time.Hour), 60, ""))
		pts := pointsOf(t, got, "PREMIUM", "LICENSE_UNIT")
		if len(pts) != 1 || pts[0].provisioned.Count != 1 || pts[0].provisioned.Avg != 100 {
			t.Errorf("hourly PREMIUM after one sample of three accounts: %+v", pts)
		}
	})
}
