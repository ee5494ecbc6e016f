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

// Limits of a series query (API.md §6).
const (
	MaxSeriesRange  = 366 * 24 * time.Hour
	MaxSeriesPoints = 10000
)

// Usage types of a unit usage.
const (
	UsageLicenseUnit = "LICENSE_UNIT"
	UsageUnitHours   = "UNIT_HOURS"
)

// Rollup resolutions the store maintains, coarsest first.
var rollups = []time.Duration{24 * time.Hour, time.Hour}

// SeriesRead selects the samples of one account or pool at From ≤ t < To
// and how to bucket them: bucket i holds Origin + i×Step ≤ t < Origin +
// (i+1)×Step. Times are Unix seconds.
type SeriesRead struct {
	AccountID int64
	PoolID    string // "" = the account level
	From, To  int64
	Origin    int64 // dateFrom: buckets count from it
	Step      int64
	// Resolution 0 reads the raw samples; 3600 or 86400 reads that rollup,
	// whose buckets must then fit (From, To, Origin and Step multiples of it).
	Resolution int64
}

// Aggregate is the partial aggregate of one package in one bucket.
type Aggregate struct {
	Package                   string
	Bucket                    int64
	ProvMin, ProvMax, ProvSum int64
	UsedMin, UsedMax, UsedSum int64
	N                         int64
}

// AgentAggregate is the partial aggregate of one agent type's registered
// agents; N counts the samples at which the type had agents at all.
type AgentAggregate struct {
	Package                string
	AgentType              string
	Bucket                 int64
	RegMin, RegMax, RegSum int64
	N                      int64
}

// SeriesStore is what the time series read model needs.
type SeriesStore interface {
	SeriesAggregates(ctx context.Context, r SeriesRead) ([]Aggregate, error)
	AgentAggregates(ctx context.Context, r SeriesRead) ([]AgentAggregate, error)
	AccountIDs(ctx context.Context) ([]int64, error)
}

// Series answers usage time series queries (API.md §6).
type Series struct {
	store    SeriesStore
	lic      *licensing.Service
	interval time.Duration
}

// Interval is the sampling interval the series are made of.
func (s *Series) Interval() time.Duration { return s.interval }

// NewSeries returns a Series over samples taken every interval.
func NewSeries(store SeriesStore, lic *licensing.Service, interval time.Duration) *Series {
	return &Series{store: store, lic: lic, interval: interval}
}

// SeriesQuery asks for the series of an account, a licence of it, or one
// of its allocations (or licence rules) by licence key.
type SeriesQuery struct {
	AccountID          int64
	LicenseID          string // optional: must be one of the account's licences
	LicenseKey         string // optional: an allocation's licence key or a rule's access key
	From, To           time.Time
	GranularityMinutes int
	EntityTypes        bool
	ConsumptionBased   bool
	// RawOnly reads the raw samples even where a rollup fits (tests compare
	// both paths).
	RawOnly bool
}

// Stat summarises the samples of a bucket.
type Stat struct {
	Min, Max, Avg float64
	Count         int64
}

// Registration is one agent type's registered agents in a bucket.
type Registration struct {
	Type       string
	Registered Stat
}

// Point is one bucket.
type Point struct {
	Timestamp     time.Time
	Provisioned   Stat
	Used          Stat
	Registrations []Registration // only when asked
}

// UnitUsage is one usage type's points.
type UnitUsage struct {
	UsageType          string
	GranularityMinutes int
	Data               []Point
}

// PackageUsage is one package's usage.
type PackageUsage struct {
	Name       string
	UnitUsages []UnitUsage
}

// RuleRef names the allocation (or rule) of a series.
type RuleRef struct {
	ID, Name, LicenseKey string
}

// SeriesResult is the answer of a series query.
type SeriesResult struct {
	AccountID int64
	Rule      *RuleRef // nil at account level
	Packages  []PackageUsage
}

// validate checks the query's ranges and returns every violation at once.
func (s *Series) validate(q SeriesQuery) error {
	var fields []fault.FieldError
	add := func(f, m string) { fields = append(fields, fault.FieldError{Field: f, Message: m}) }
	span := q.To.Sub(q.From)
	switch {
	case span <= 0:
		add("dateTo", "must be after dateFrom")
	case span > MaxSeriesRange:
		add("dateTo", "must be at most 366 days after dateFrom")
	}
	g := time.Duration(q.GranularityMinutes) * time.Minute
	switch {
	case q.GranularityMinutes <= 0 || g%s.interval != 0:
		add("granularityMinutes", fmt.Sprintf("must be a positive multiple of the sampling interval (%s)", s.interval))
	case span > 0 && (span+g-1)/g > MaxSeriesPoints:
		add("granularityMinutes", fmt.Sprintf("gives %d points; at most %d per series", (span+g-1)/g, MaxSeriesPoints))
	}
	return fault.Invalids(fields)
}

// scope resolves the query to the pool it reads ("" = account level).
// Errors: ErrNotFound (LICENSE_NOT_FOUND, ALLOCATION_NOT_FOUND).
func (s *Series) scope(ctx context.Context, q SeriesQuery) (string, *RuleRef, error) {
	if q.LicenseID != "" {
		if err := s.checkLicense(ctx, q.AccountID, q.LicenseID); err != nil {
			return "", nil, err
		}
	}
	if q.LicenseKey == "" {
		return "", nil, nil
	}
	as, err := s.lic.Allocations(ctx, q.AccountID, licensing.AllocationQuery{LicenseKey: q.LicenseKey})
	if err != nil {
		return "", nil, err
	}
	if len(as) == 1 {
		return as[0].ID, &RuleRef{ID: as[0].ID, Name: as[0].Name, LicenseKey: as[0].LicenseKey}, nil
	}
	r, err := s.lic.Rule(ctx, q.AccountID, licensing.RuleLookup{AccessKey: q.LicenseKey})
	switch {
	case err == nil:
		return r.ID, &RuleRef{ID: r.ID, Name: r.Name, LicenseKey: r.AccessKey}, nil
	case errors.Is(err, fault.ErrNotFound):
		return "", nil, fault.New(fault.ErrNotFound, "ALLOCATION_NOT_FOUND", "no allocation with licence key %q", q.LicenseKey)
	}
	return "", nil, err
}

// maxLicenses bounds the licences searched for a payload licenceId.
const maxLicenses = 1000

// checkLicense finds one of the account's licences by the id of its document
// (GET /licenses) or by the licenseId of its payload (what /info shows).
// Errors: ErrNotFound (LICENSE_NOT_FOUND).
func (s *Series) checkLicense(ctx context.Context, accountID int64, id string) error {
	_, err := s.lic.License(ctx, accountID, id)
	if !errors.Is(err, fault.ErrNotFound) {
		return err
	}
	ls, lerr := s.lic.Licenses(ctx, accountID, 0, maxLicenses)
	if lerr != nil {
		return lerr
	}
	for _, l := range ls {
		if l.Payload.LicenseID == id {
			return nil
		}
	}
	return err
}

// Query answers a series query. Errors: ErrInvalid (VALIDATION_FAILED),
// ErrNotFound (LICENSE_NOT_FOUND, ALLOCATION_NOT_FOUND).
func (s *Series) Query(ctx context.Context, q SeriesQuery) (SeriesResult, error) {
	q.From, q.To = q.From.UTC().Truncate(time.Second), q.To.UTC().Truncate(time.Second)
	if err := s.validate(q); err != nil {
		return SeriesResult{}, err
	}
	pool, rule, err := s.scope(ctx, q)
	if err != nil {
		return SeriesResult{}, err
	}
	return s.queryPool(ctx, q, pool, rule)
}

// queryPool is Query of a pool already resolved ("" : the account).
func (s *Series) queryPool(ctx context.Context, q SeriesQuery, pool string, rule *RuleRef) (SeriesResult, error) {
	step := int64(q.GranularityMinutes) * 60
	// Buckets sit on clock boundaries (multiples of the granularity since
	// the Unix epoch), as real controllers answer: the first one is the
	// one that holds dateFrom.
	origin := q.From.Unix() / step * step
	aggs, agents, err := s.read(ctx, q, SeriesRead{AccountID: q.AccountID, PoolID: pool,
		From: q.From.Unix(), To: q.To.Unix(), Origin: origin, Step: step})
	if err != nil {
		return SeriesResult{}, err
	}
	return SeriesResult{AccountID: q.AccountID, Rule: rule, Packages: s.assemble(q, origin, step, aggs, agents)}, nil
}

type bucketKey struct {
	pkg    string
	bucket int64
}

type agentKey struct {
	pkg, typ string
	bucket   int64
}

// read fetches the partial aggregates and merges them per bucket. A rollup
// serves the whole rollup buckets inside the range when the granularity is
// a multiple of its resolution; the raw samples serve the rest (the head
// before the first rollup boundary after dateFrom, the tail after the
// last one).
func (s *Series) read(ctx context.Context, q SeriesQuery, r SeriesRead) (map[bucketKey]*Aggregate, map[agentKey]*AgentAggregate, error) {
	parts := []SeriesRead{r}
	if !q.RawOnly {
		for _, res := range rollups {
			sec := int64(res / time.Second)
			if r.Step%sec != 0 {
				continue
			}
			start := (r.From + sec - 1) / sec * sec // the first rollup boundary at or after From
			core := start + max(r.To-start, 0)/sec*sec
			if core <= start {
				continue
			}
			rolled := r
			rolled.From, rolled.To, rolled.Resolution = start, core, sec
			parts = []SeriesRead{rolled}
			if r.From < start {
				head := r
				head.To = start
				parts = append(parts, head)
			}
			if core < r.To {
				tail := r
				tail.From = core
				parts = append(parts, tail)
			}
			break
		}
	}
	aggs := map[bucketKey]*Aggregate{}
	agents := map[agentKey]*AgentAggregate{}
	for _, p := range parts {
		rows, err := s.store.SeriesAggregates(ctx, p)
		if err != nil {
			return nil, nil, err
		}
		for _, a := range rows {
			k := bucketKey{a.Package, a.Bucket}
			if cur, ok := aggs[k]; ok {
				mergeAggregate(cur, a)
			} else {
				aggs[k] = &a
			}
		}
		if !q.EntityTypes {
			continue
		}
		ags, err := s.store.AgentAggregates(ctx, p)
		if err != nil {
			return nil, nil, err
		}
		for _, a := range ags {
			k := agentKey{a.Package, a.AgentType, a.Bucket}
			if cur, ok := agents[k]; ok {
				cur.RegMin, cur.RegMax = min(cur.RegMin, a.RegMin), max(cur.RegMax, a.RegMax)
				cur.RegSum += a.RegSum
				cur.N += a.N
			} else {
				agents[k] = &a
			}
		}
	}
	return aggs, agents, nil
}

func mergeAggregate(cur *Aggregate, a Aggregate) {
	cur.ProvMin, cur.ProvMax, cur.ProvSum = min(cur.ProvMin, a.ProvMin), max(cur.ProvMax, a.ProvMax), cur.ProvSum+a.ProvSum
	cur.UsedMin, cur.UsedMax, cur.UsedSum = min(cur.UsedMin, a.UsedMin), max(cur.UsedMax, a.UsedMax), cur.UsedSum+a.UsedSum
	cur.N += a.N
}

// packageRank orders packages INFRA, PREMIUM, ENTERPRISE, then rule modules by name.
func packageRank(p string) int {
	if i := slices.Index(licensing.Packages, p); i >= 0 {
		return i
	}
	return len(licensing.Packages)
}

// assemble builds the response's packages from the merged buckets.
func (s *Series) assemble(q SeriesQuery, origin, step int64, aggs map[bucketKey]*Aggregate, agents map[agentKey]*AgentAggregate) []PackageUsage {
	byPkg := map[string][]*Aggregate{}
	for _, a := range aggs {
		byPkg[a.Package] = append(byPkg[a.Package], a)
	}
	regs := map[bucketKey][]Registration{}
	for k, a := range agents {
		series, ok := aggs[bucketKey{k.pkg, k.bucket}]
		if !ok {
			continue
		}
		// A sample without agents of the type counts as 0.
		lo := a.RegMin
		if a.N < series.N {
			lo = 0
		}
		bk := bucketKey{k.pkg, k.bucket}
		regs[bk] = append(regs[bk], Registration{Type: k.typ, Registered: Stat{Min: float64(lo), Max: float64(a.RegMax),
			Avg: float64(a.RegSum) / float64(series.N), Count: series.N}})
	}
	names := make([]string, 0, len(byPkg))
	for p := range byPkg {
		names = append(names, p)
	}
	slices.SortFunc(names, func(a, b string) int { return cmp.Or(cmp.Compare(packageRank(a), packageRank(b)), cmp.Compare(a, b)) })
	hours := s.interval.Hours()
	out := make([]PackageUsage, 0, len(names))
	for _, name := range names {
		list := byPkg[name]
		slices.SortFunc(list, func(a, b *Aggregate) int { return cmp.Compare(a.Bucket, b.Bucket) })
		units := UnitUsage{UsageType: UsageLicenseUnit, GranularityMinutes: q.GranularityMinutes, Data: make([]Point, 0, len(list))}
		hoursUsage := UnitUsage{UsageType: UsageUnitHours, GranularityMinutes: q.GranularityMinutes, Data: make([]Point, 0, len(list))}
		for _, a := range list {
			ts := time.Unix(origin+a.Bucket*step, 0).UTC()
			n := float64(a.N)
			p := Point{Timestamp: ts,
				Provisioned: Stat{Min: float64(a.ProvMin), Max: float64(a.ProvMax), Avg: float64(a.ProvSum) / n, Count: a.N},
				Used:        Stat{Min: float64(a.UsedMin), Max: float64(a.UsedMax), Avg: float64(a.UsedSum) / n, Count: a.N}}
			if q.EntityTypes {
				rs := regs[bucketKey{name, a.Bucket}]
				slices.SortFunc(rs, func(x, y Registration) int { return cmp.Compare(x.Type, y.Type) })
				p.Registrations = append([]Registration{}, rs...)
			}
			units.Data = append(units.Data, p)
			if q.ConsumptionBased {
				// Each sample stands for one interval of usage.
				prov, used := float64(a.ProvSum)*hours, float64(a.UsedSum)*hours
				hoursUsage.Data = append(hoursUsage.Data, Point{Timestamp: ts,
					Provisioned: Stat{Min: prov, Max: prov, Avg: prov, Count: a.N},
					Used:        Stat{Min: used, Max: used, Avg: used, Count: a.N}})
			}
		}
		pu := PackageUsage{Name: name, UnitUsages: []UnitUsage{units}}
		if q.ConsumptionBased {
			pu.UnitUsages = append(pu.UnitUsages, hoursUsage)
		}
		out = append(out, pu)
	}
	return out
}
