package usage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/lcorp/licensing-controller/internal/fault"
	"github.com/lcorp/licensing-controller/internal/licensing"
)

// Forecast (API.md §13): when does a pool run out at the current trend?
// The trend is the Theil–Sen slope of the daily maxima of used units over
// the last window days: the median of the slopes between every two days,
// which one spike day barely moves. low and high bound the exhaustion time
// by the slopes at the edges of the slope's 95 % confidence interval.

// DefaultForecastWindow is the days of history a forecast reads by default.
const DefaultForecastWindow = 14

// MaxForecastWindow bounds the window.
const MaxForecastWindow = 365

// PackageForecast is one package's forecast.
type PackageForecast struct {
	Package     string
	Used, Limit int64
	// TrendPerDay is units per day (Theil–Sen over the daily maxima).
	TrendPerDay float64
	// ExhaustsAt is when used reaches the limit at the trend: nil when the
	// trend is flat or falling (or there is no limit); now when it has.
	ExhaustsAt *time.Time
	// Low and High are the earliest and latest exhaustion the slope's
	// confidence interval allows (High nil when that slope is not rising).
	Low, High *time.Time
	Days      int // days with samples in the window
	Basis     string
}

// Forecast is the forecast of a pool (or the account) per package.
type Forecast struct {
	Packages []PackageForecast
}

// Forecast forecasts one allocation (allocationID "" : the account) from
// the last window days (0: DefaultForecastWindow). Errors: ErrInvalid,
// ErrNotFound (ALLOCATION_NOT_FOUND).
func (s *Series) Forecast(ctx context.Context, accountID int64, allocationID string, window int, now time.Time) (Forecast, error) {
	if window != 0 && (window < 2 || window > MaxForecastWindow) {
		return Forecast{}, fault.Invalid("window", fmt.Sprintf("must be 2 to %d days", MaxForecastWindow))
	}
	if allocationID == "" {
		return s.forecastPool(ctx, accountID, "", window, now, nil)
	}
	a, err := s.lic.Allocation(ctx, accountID, allocationID)
	if err != nil {
		return Forecast{}, err
	}
	// Used and limit are the allocation's own now, not the last sample's:
	// a limit just changed counts at once.
	usage, err := s.lic.PoolUsages(ctx, accountID, []string{a.ID})
	if err != nil {
		return Forecast{}, err
	}
	live := map[string][2]int64{}
	for _, pkg := range licensing.Packages {
		live[pkg] = [2]int64{usage[a.ID][pkg], a.LimitOf(pkg)}
	}
	return s.forecastPool(ctx, accountID, a.ID, window, now, live)
}

// forecastPool is Forecast of a pool already resolved ("" : the account):
// /metrics forecasts every allocation without looking each one up again.
// live, when not nil, holds the pool's used and limit units per package
// now; without it the latest sample's figures stand in.
func (s *Series) forecastPool(ctx context.Context, accountID int64, pool string, window int, now time.Time,
	live map[string][2]int64) (Forecast, error) {
	if window == 0 {
		window = DefaultForecastWindow
	}
	now = now.UTC()
	day := int64(24 * 3600)
	end := now.Unix()/day*day + day // the end of today
	daily, err := s.queryChecked(ctx, SeriesQuery{AccountID: accountID, From: time.Unix(end-int64(window)*day, 0),
		To: time.Unix(end, 0), GranularityMinutes: 1440}, pool)
	if err != nil {
		return Forecast{}, err
	}
	// The latest sample: the current figures.
	step := int64(s.interval / time.Second)
	latest, err := s.queryChecked(ctx, SeriesQuery{AccountID: accountID, From: time.Unix((now.Unix()-3*step)/step*step, 0),
		To: now.Add(time.Second), GranularityMinutes: int(max(step/60, 1))}, pool)
	if err != nil && !errors.Is(err, fault.ErrInvalid) {
		return Forecast{}, err
	}
	current := map[string]Point{}
	for _, p := range latest.Packages {
		for _, u := range p.UnitUsages {
			if u.UsageType == "LICENSE_UNIT" && len(u.Data) > 0 {
				current[p.Name] = u.Data[len(u.Data)-1]
			}
		}
	}
	out := Forecast{Packages: []PackageForecast{}}
	for _, p := range daily.Packages {
		var pts []Point
		for _, u := range p.UnitUsages {
			if u.UsageType == "LICENSE_UNIT" {
				pts = u.Data
			}
		}
		if len(pts) == 0 {
			continue
		}
		last := pts[len(pts)-1]
		f := PackageForecast{Package: p.Name, Used: int64(last.Used.Max), Limit: int64(last.Provisioned.Max), Days: len(pts),
			Basis: fmt.Sprintf("daily maxima, Theil–Sen, %d days", window)}
		if c, ok := current[p.Name]; ok {
			f.Used, f.Limit = int64(c.Used.Max), int64(c.Provisioned.Max)
		}
		if l, ok := live[p.Name]; ok {
			f.Used, f.Limit = l[0], l[1]
		}
		xs, ys := make([]float64, len(pts)), make([]float64, len(pts))
		for i, pt := range pts {
			xs[i] = float64(pt.Timestamp.Unix()-pts[0].Timestamp.Unix()) / float64(day)
			ys[i] = pt.Used.Max
		}
		slope, lo, hi := theilSen(xs, ys)
		f.TrendPerDay = math.Round(slope*1000) / 1000
		f.ExhaustsAt, f.Low, f.High = exhaustion(now, f.Used, f.Limit, slope), exhaustion(now, f.Used, f.Limit, hi),
			exhaustion(now, f.Used, f.Limit, lo)
		out.Packages = append(out.Packages, f)
	}
	slices.SortFunc(out.Packages, func(x, y PackageForecast) int { return cmp.Compare(packageRank(x.Package), packageRank(y.Package)) })
	return out, nil
}

// queryChecked is a validated query of a resolved pool.
func (s *Series) queryChecked(ctx context.Context, q SeriesQuery, pool string) (SeriesResult, error) {
	q.From, q.To = q.From.UTC().Truncate(time.Second), q.To.UTC().Truncate(time.Second)
	if err := s.validate(q); err != nil {
		return SeriesResult{}, err
	}
	return s.queryPool(ctx, q, pool, nil)
}

// exhaustion is when used reaches limit rising slope units a day from now.
func exhaustion(now time.Time, used, limit int64, slope float64) *time.Time {
	switch {
	case limit <= 0:
		return nil
	case used >= limit:
		t := now
		return &t
	case slope <= 1e-9:
		return nil
	}
	days := float64(limit-used) / slope
	if days > 100*365 {
		return nil
	}
	t := now.Add(time.Duration(days * float64(24*time.Hour))).Truncate(time.Second)
	return &t
}

// theilSen returns the median of the pairwise slopes and the slopes at the
// edges of its 95 % confidence interval (Sen 1968, normal approximation);
// fewer than two points give 0.
func theilSen(xs, ys []float64) (slope, lo, hi float64) {
	var slopes []float64
	for i := range xs {
		for j := i + 1; j < len(xs); j++ {
			if dx := xs[j] - xs[i]; dx > 0 {
				slopes = append(slopes, (ys[j]-ys[i])/dx)
			}
		}
	}
	n := len(slopes)
	if n == 0 {
		return 0, 0, 0
	}
	slices.Sort(slopes)
	if n%2 == 1 {
		slope = slopes[n/2]
	} else {
		slope = (slopes[n/2-1] + slopes[n/2]) / 2
	}
	m := float64(len(xs))
	c := 1.96 * math.Sqrt(m*(m-1)*(2*m+5)/18)
	at := func(r float64) float64 {
		i := int(math.Round(r)) - 1
		return slopes[min(max(i, 0), n-1)]
	}
	return slope, at((float64(n) - c) / 2), at((float64(n)+c)/2 + 1)
}
