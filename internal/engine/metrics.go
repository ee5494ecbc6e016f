package engine

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// collector exports pool usage and limits at scrape time: one set-based
// query, no per-pool round trips.
type collector struct{ e *Engine }

var (
	usedDesc = prometheus.NewDesc("lc_pool_used_units",
		"Units (allocations, per package) or licences (rules, per module) in use.",
		[]string{"account", "pool_kind", "pool", "pool_name", "package"}, nil)
	limitDesc = prometheus.NewDesc("lc_pool_limit_units",
		"Limit of a pool per package (allocations) or module (rules), as last loaded by this instance.",
		[]string{"account", "pool_kind", "pool", "pool_name", "package"}, nil)
	leasesDesc = prometheus.NewDesc("lc_leases", "Live leases.", nil, nil)
	expiryDesc = prometheus.NewDesc("lc_license_expiry_seconds",
		"Seconds until the account's effective licence expires (negative once it has).", []string{"account"}, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- usedDesc
	ch <- limitDesc
	ch <- leasesDesc
	ch <- expiryDesc
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Every account's pools (from the cache while they are fresh): the
	// licence expiry of each, the limits of the pools.
	ids, err := c.e.store.AccountIDs(ctx)
	if err != nil {
		c.e.log.Warn("metrics: accounts", "error", err)
	}
	sets := make([]*poolSet, 0, len(ids))
	for _, id := range ids {
		ps, err := c.e.pools(ctx, c.e.store, id)
		if err != nil {
			c.e.log.Warn("metrics: pools", "account_id", id, "error", err)
			continue
		}
		sets = append(sets, ps)
		if ps.HasLicense {
			ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, ps.Expires.Sub(c.e.now()).Seconds(), itoa(id))
		}
	}
	// Dashboards show names: the pools this instance has loaded carry theirs.
	names := map[string]string{}
	for _, ps := range sets {
		for _, a := range ps.Allocations {
			names[a.ID] = a.Name
		}
		for _, r := range ps.Rules {
			names[r.ID] = r.Name
		}
	}
	usage, err := c.e.store.AllPoolUsage(ctx)
	if err != nil {
		c.e.log.Warn("metrics: pool usage", "error", err)
	}
	for _, u := range usage {
		ch <- prometheus.MustNewConstMetric(usedDesc, prometheus.GaugeValue, float64(u.Used),
			itoa(u.AccountID), u.Kind, u.PoolID, names[u.PoolID], u.Item)
	}
	for _, ps := range sets {
		acc := itoa(ps.Account.ID)
		for _, a := range ps.Allocations {
			for _, l := range a.Limits {
				ch <- prometheus.MustNewConstMetric(limitDesc, prometheus.GaugeValue, float64(l.Units), acc, PoolAllocation, a.ID, a.Name, l.Package)
			}
		}
		for _, r := range ps.Rules {
			for _, en := range r.Entitlements {
				ch <- prometheus.MustNewConstMetric(limitDesc, prometheus.GaugeValue, float64(en.Licenses), acc, PoolRule, r.ID, r.Name, en.ModuleType)
			}
		}
	}
	if n, err := c.e.store.CountLiveLeases(ctx, c.e.now()); err == nil {
		ch <- prometheus.MustNewConstMetric(leasesDesc, prometheus.GaugeValue, float64(n))
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
