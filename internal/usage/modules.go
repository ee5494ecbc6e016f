package usage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lcorp/licensing-controller/internal/fault"
	"github.com/lcorp/licensing-controller/internal/licensing"
)

// The older AppDynamics licence API (API.md §12): the account's licence
// modules, their properties and their usage.

// Module is a vCPU package or an agent module the account is licensed for.
type Module struct {
	Name        string // PREMIUM, JAVA, ...
	Edition     string // PRO, TRIAL, LITE, ...
	Expires     time.Time
	Provisioned int64
}

// Modules lists every package and module that the effective licence or a
// licence rule provides, packages first.
func (s *Series) Modules(ctx context.Context, accountID int64) ([]Module, error) {
	info, err := s.lic.AccountInfo(ctx, accountID)
	var (
		out   []Module
		index = map[string]int{}
	)
	add := func(m Module) {
		if i, ok := index[m.Name]; ok {
			out[i].Provisioned = licensing.SatAdd(out[i].Provisioned, m.Provisioned)
			return
		}
		index[m.Name] = len(out)
		out = append(out, m)
	}
	if err == nil {
		p := info.License.Payload
		units := p.Units(time.Now())
		for _, pk := range p.Packages {
			exp := p.ExpirationDate
			if pk.ExpirationDate != nil && pk.ExpirationDate.Before(exp) {
				exp = *pk.ExpirationDate
			}
			if _, seen := index[pk.PackageName]; !seen {
				add(Module{Name: pk.PackageName, Edition: edition(pk.Type), Expires: exp.UTC(), Provisioned: units[pk.PackageName]})
			}
		}
	} else if !isNotFound(err) {
		return nil, fmt.Errorf("licence modules: %w", err)
	}
	rules, err := s.lic.Rules(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("licence modules: %w", err)
	}
	fromLicence := len(out)
	for _, r := range rules {
		for _, e := range r.Entitlements {
			if i, ok := index[e.ModuleType]; ok && i < fromLicence {
				continue // the licence provisions it; rules share those
			}
			exp := time.Time{}
			if info.License.ID != "" {
				exp = info.License.Payload.ExpirationDate.UTC()
			}
			add(Module{Name: e.ModuleType, Edition: "PRO", Expires: exp, Provisioned: e.Licenses})
		}
	}
	slices.SortStableFunc(out, func(a, b Module) int { return cmp.Compare(moduleRank(a.Name), moduleRank(b.Name)) })
	return out, nil
}

func moduleRank(name string) int {
	if slices.Contains(licensing.Packages, name) {
		return 0
	}
	return 1
}

func edition(packageType string) string {
	switch packageType {
	case "PAID", "":
		return "PRO"
	}
	return packageType
}

// ModuleUsage is one bucket of a module's usage.
type ModuleUsage struct {
	Start       time.Time
	Used        Stat
	Provisioned Stat
}

// ModuleUsages returns a module's usage in buckets of granularity between
// from and to: a vCPU package from the account's series, an agent module
// summed over the licence rules that provide it (min and max are then the
// sums of the rules' minima and maxima). Errors: ErrInvalid (dates), and
// none for a module without samples (an empty list).
func (s *Series) ModuleUsages(ctx context.Context, accountID int64, module string, from, to time.Time, granularity time.Duration) ([]ModuleUsage, error) {
	q := SeriesQuery{AccountID: accountID, From: from, To: to, GranularityMinutes: int(granularity / time.Minute)}
	var results []SeriesResult
	if slices.Contains(licensing.Packages, module) {
		r, err := s.Query(ctx, q)
		if err != nil {
			return nil, err
		}
		results = append(results, r)
	} else {
		rules, err := s.lic.Rules(ctx, accountID)
		if err != nil {
			return nil, fmt.Errorf("module usage: %w", err)
		}
		for _, rule := range rules {
			if _, ok := rule.Licenses(module); !ok {
				continue
			}
			rq := q
			rq.LicenseKey = rule.AccessKey
			r, err := s.Query(ctx, rq)
			if err != nil {
				return nil, err
			}
			results = append(results, r)
		}
		if len(results) == 0 {
			if err := s.validate(q); err != nil { // the dates are still checked
				return nil, err
			}
		}
	}
	byStart := map[time.Time]*ModuleUsage{}
	for _, r := range results {
		for _, p := range r.Packages {
			if p.Name != module {
				continue
			}
			for _, u := range p.UnitUsages {
				if u.UsageType != UsageLicenseUnit {
					continue
				}
				for _, pt := range u.Data {
					m, ok := byStart[pt.Timestamp]
					if !ok {
						m = &ModuleUsage{Start: pt.Timestamp}
						byStart[pt.Timestamp] = m
					}
					m.Used = sumStat(m.Used, pt.Used)
					m.Provisioned = sumStat(m.Provisioned, pt.Provisioned)
				}
			}
		}
	}
	out := make([]ModuleUsage, 0, len(byStart))
	for _, m := range byStart {
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b ModuleUsage) int { return a.Start.Compare(b.Start) })
	return out, nil
}

// sumStat adds two series' statistics of one bucket.
func sumStat(a, b Stat) Stat {
	if a.Count == 0 {
		return b
	}
	return Stat{Min: a.Min + b.Min, Max: a.Max + b.Max, Avg: a.Avg + b.Avg, Count: max(a.Count, b.Count)}
}

func isNotFound(err error) bool { return errors.Is(err, fault.ErrNotFound) }
