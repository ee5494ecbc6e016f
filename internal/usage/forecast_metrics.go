package usage

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lcorp/licensing-controller/internal/licensing"
)

var exhaustionDesc = prometheus.NewDesc("lc_pool_exhaustion_seconds",
	"Seconds until an allocation's package runs out at the current trend (the forecast of API.md §13); absent when flat or falling.",
	[]string{"account", "pool", "pool_name", "package"}, nil)

// ForecastCollector exports lc_pool_exhaustion_seconds. Forecasts read a
// few series points per allocation; they are recomputed at most every
// refresh, not at every scrape.
type ForecastCollector struct {
	series  *Series
	lic     *licensing.Service
	now     func() time.Time
	log     *slog.Logger
	refresh time.Duration

	mu      sync.Mutex
	at      time.Time
	metrics []prometheus.Metric
}

// NewForecastCollector returns the collector; now may be nil (time.Now).
func NewForecastCollector(series *Series, lic *licensing.Service, now func() time.Time, log *slog.Logger) *ForecastCollector {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ForecastCollector{series: series, lic: lic, now: now, log: log, refresh: time.Minute}
}

// Describe implements prometheus.Collector.
func (c *ForecastCollector) Describe(ch chan<- *prometheus.Desc) { ch <- exhaustionDesc }

// Collect implements prometheus.Collector.
func (c *ForecastCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.metrics == nil || now.Sub(c.at) >= c.refresh || now.Before(c.at) {
		c.metrics, c.at = c.compute(now), now
	}
	for _, m := range c.metrics {
		ch <- m
	}
}

func (c *ForecastCollector) compute(now time.Time) []prometheus.Metric {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ids, err := c.series.store.AccountIDs(ctx)
	if err != nil {
		c.log.Warn("metrics: forecast accounts", "error", err)
		return []prometheus.Metric{}
	}
	out := []prometheus.Metric{}
	for _, id := range ids {
		allocs, err := c.lic.Allocations(ctx, id, licensing.AllocationQuery{})
		if err != nil {
			c.log.Warn("metrics: forecast allocations", "account_id", id, "error", err)
			continue
		}
		for _, a := range allocs {
			f, err := c.series.forecastPool(ctx, id, a.ID, 0, now, nil)
			if err != nil {
				c.log.Warn("metrics: forecast", "account_id", id, "allocation", a.ID, "error", err)
				continue
			}
			for _, p := range f.Packages {
				if p.ExhaustsAt != nil {
					out = append(out, prometheus.MustNewConstMetric(exhaustionDesc, prometheus.GaugeValue,
						max(p.ExhaustsAt.Sub(now).Seconds(), 0), strconv.FormatInt(id, 10), a.ID, a.Name, p.Package))
				}
			}
		}
	}
	return out
}
