package httpapi

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lcorp/licensing-controller/internal/fault"
	"github.com/lcorp/licensing-controller/internal/usage"
)

// StatDTO summarises the samples of a bucket. For LICENSE_UNIT usage and
// registrations all four are integers (typed clients declare them long;
// avg is rounded half away from zero); UNIT_HOURS values may be fractional.
type StatDTO struct {
	Min   float64 `json:"min" example:"40"`
	Max   float64 `json:"max" example:"48"`
	Avg   float64 `json:"avg" example:"45"`
	Count int64   `json:"count" example:"12"`
}

// SeriesRegistrationDTO is one agent type's registered agents in a bucket.
type SeriesRegistrationDTO struct {
	Type string `json:"type" example:"APP_AGENT"`
	// EntityType is the AppDynamics display name of the agent type.
	EntityType string  `json:"entityType" example:"App Agent (Java)"`
	Registered StatDTO `json:"registered"`
}

// entityTypes are the AppDynamics display names of the agent types
// (API.md §6).
var entityTypes = map[string]string{
	"APP_AGENT": "App Agent (Java)", "DOT_NET_APP_AGENT": "App Agent (.NET)", "PHP_APP_AGENT": "App Agent (PHP)",
	"NODEJS_APP_AGENT": "App Agent (Node.js)", "PYTHON_APP_AGENT": "App Agent (Python)", "GOLANG_SDK": "Go SDK",
	"NATIVE_WEB_SERVER": "Web Server Agent", "NATIVE_SDK": "C/C++ SDK", "DB_AGENT": "Database Collector",
	"MACHINE_AGENT": "Machine Agent", "SIM_MACHINE_AGENT": "Machine Agent (SIM)", "NETVIZ_AGENT": "Network Visibility",
}

// entityType is the display name of an agent type (the type itself for
// one the table lacks).
func entityType(agentType string) string {
	if n, ok := entityTypes[agentType]; ok {
		return n
	}
	return agentType
}

// PointDTO is one bucket of a usage series.
type PointDTO struct {
	Timestamp     time.Time                `json:"timestamp" example:"2026-11-22T10:00:00Z"`
	Provisioned   StatDTO                  `json:"provisioned"`
	Used          StatDTO                  `json:"used"`
	Registrations *[]SeriesRegistrationDTO `json:"registrations,omitempty"`
}

// UnitUsageDTO is one usage type's points, ascending.
type UnitUsageDTO struct {
	UsageType            string     `json:"usageType" example:"LICENSE_UNIT" enums:"LICENSE_UNIT,UNIT_HOURS"`
	GranularityInMinutes int        `json:"granularityInMinutes" example:"60"`
	Data                 []PointDTO `json:"data"`
}

// PackageUsageDTO is one package's usage.
type PackageUsageDTO struct {
	Name       string         `json:"name" example:"PREMIUM"`
	UnitUsages []UnitUsageDTO `json:"unitUsages"`
}

// LicenseRuleRefDTO names the allocation of an allocation series.
type LicenseRuleRefDTO struct {
	ID         string `json:"id"`
	Name       string `json:"name" example:"Default"`
	LicenseKey string `json:"licenseKey"`
}

// UsageSeriesDTO is a usage time series (API.md §6).
type UsageSeriesDTO struct {
	AccountID   int64              `json:"accountId" example:"1"`
	LicenseRule *LicenseRuleRefDTO `json:"licenseRule"`
	Packages    []PackageUsageDTO  `json:"packages"`
}

func statDTO(s usage.Stat) StatDTO {
	return StatDTO{Min: s.Min, Max: s.Max, Avg: s.Avg, Count: s.Count}
}

// intStatDTO is statDTO in integers: math.Round rounds half away from zero.
func intStatDTO(s usage.Stat) StatDTO {
	return StatDTO{Min: math.Round(s.Min), Max: math.Round(s.Max), Avg: math.Round(s.Avg), Count: s.Count}
}

func usageSeriesDTO(r usage.SeriesResult, withEntityTypes bool) UsageSeriesDTO {
	out := UsageSeriesDTO{AccountID: r.AccountID, Packages: make([]PackageUsageDTO, 0, len(r.Packages))}
	if r.Rule != nil {
		out.LicenseRule = &LicenseRuleRefDTO{ID: r.Rule.ID, Name: r.Rule.Name, LicenseKey: r.Rule.LicenseKey}
	}
	for _, p := range r.Packages {
		pd := PackageUsageDTO{Name: p.Name, UnitUsages: make([]UnitUsageDTO, 0, len(p.UnitUsages))}
		for _, u := range p.UnitUsages {
			ud := UnitUsageDTO{UsageType: u.UsageType, GranularityInMinutes: u.GranularityMinutes, Data: make([]PointDTO, 0, len(u.Data))}
			stat := intStatDTO
			if u.UsageType == usage.UsageUnitHours {
				stat = statDTO
			}
			for _, pt := range u.Data {
				d := PointDTO{Timestamp: pt.Timestamp, Provisioned: stat(pt.Provisioned), Used: stat(pt.Used)}
				if withEntityTypes && u.UsageType == usage.UsageLicenseUnit {
					regs := make([]SeriesRegistrationDTO, len(pt.Registrations))
					for i, rg := range pt.Registrations {
						regs[i] = SeriesRegistrationDTO{Type: rg.Type, EntityType: entityType(rg.Type), Registered: intStatDTO(rg.Registered)}
					}
					d.Registrations = &regs
				}
				ud.Data = append(ud.Data, d)
			}
			pd.UnitUsages = append(pd.UnitUsages, ud)
		}
		out.Packages = append(out.Packages, pd)
	}
	return out
}

// seriesQuery parses the query parameters of §6; the service checks ranges.
// dateFrom and dateTo default to the 24 hours before now (dateFrom alone
// runs to now, dateTo alone from the day before), granularityMinutes to 60 for windows up to
// 7 days and 1440 beyond (rounded up to a multiple of the interval).
func seriesQuery(c *gin.Context, now time.Time, interval time.Duration) (usage.SeriesQuery, error) {
	var (
		q      = usage.SeriesQuery{AccountID: accountID(c)}
		fields []fault.FieldError
	)
	add := func(f, m string) { fields = append(fields, fault.FieldError{Field: f, Message: m}) }
	date := func(name string, dst *time.Time) {
		v := c.Query(name)
		if v == "" {
			return
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			add(name, "must be an RFC 3339 date-time, e.g. 2026-11-22T10:00:00Z")
			return
		}
		*dst = t
	}
	flag := func(name string, dst *bool) {
		v := c.Query(name)
		if v == "" {
			return
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			add(name, "must be true or false")
			return
		}
		*dst = b
	}
	date("dateFrom", &q.From)
	date("dateTo", &q.To)
	switch {
	case q.From.IsZero() && q.To.IsZero():
		q.To = now
		q.From = now.Add(-24 * time.Hour)
	case q.From.IsZero():
		q.From = q.To.Add(-24 * time.Hour)
	case q.To.IsZero():
		q.To = now
		if !q.To.After(q.From) {
			q.To = q.From.Add(24 * time.Hour)
		}
	}
	switch v := c.Query("granularityMinutes"); {
	case v == "":
		g := time.Hour
		if q.To.Sub(q.From) > 7*24*time.Hour {
			g = 24 * time.Hour
		}
		if interval > 0 && g%interval != 0 {
			g = (g/interval + 1) * interval
		}
		q.GranularityMinutes = int(g / time.Minute)
	default:
		n, err := strconv.Atoi(v)
		if err != nil {
			add("granularityMinutes", "must be an integer")
		} else {
			q.GranularityMinutes = n
		}
	}
	flag("includeEntityTypes", &q.EntityTypes)
	flag("includeConsumptionBased", &q.ConsumptionBased)
	return q, fault.Invalids(fields)
}

func (a *API) writeSeries(c *gin.Context, licenseID, licenseKey string) {
	q, err := seriesQuery(c, time.Now().UTC(), a.series.Interval())
	if err != nil {
		a.fail(c, err)
		return
	}
	q.LicenseID, q.LicenseKey = licenseID, licenseKey
	r, err := a.series.Query(c.Request.Context(), q)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, usageSeriesDTO(r, q.EntityTypes))
}

// accountSeries godoc
//
//	@Summary		Usage time series of the account
//	@Description	Provisioned (licensed) and used units per package, bucketed from dateFrom; a host charged by several allocations counts once. Buckets without samples are left out.
//	@Tags			usage series
//	@Produce		json
//	@Security		BasicAuth
//	@Security		BearerAuth
//	@Param			accountId				path		int		true	"account id"
//	@Param			dateFrom				query		string	false	"start, RFC 3339 (default: dateTo - 24 h); the first bucket is the clock-aligned one holding it"	example(2026-11-22T00:00:00Z)
//	@Param			dateTo					query		string	false	"end (exclusive), RFC 3339, at most 366 days after dateFrom (default: now)"
//	@Param			granularityMinutes		query		int		false	"bucket width: a positive multiple of the sampling interval; at most 10 000 buckets (default: 60 up to 7 days, else 1440)"
//	@Param			includeEntityTypes		query		bool	false	"add the registered agents per type"
//	@Param			includeConsumptionBased	query		bool	false	"add a UNIT_HOURS usage (unit-hours consumed per bucket)"
//	@Success		200						{object}	UsageSeriesDTO
//	@Failure		400						{object}	Problem	"VALIDATION_FAILED"
//	@Failure		401						{object}	Problem
//	@Failure		403						{object}	Problem	"PERMISSION_DENIED (LICENSE_USAGE)"
//	@Failure		404						{object}	Problem	"ACCOUNT_NOT_FOUND"
//	@Failure		503						{object}	Problem
//	@Router			/controller/licensing/v1/usage/account/{accountId} [get]
func (a *API) accountSeries(c *gin.Context) { a.writeSeries(c, "", "") }

// licenseSeries godoc
//
//	@Summary		Usage time series of a licence of the caller's account
//	@Description	The account's series, for one of its licences.
//	@Tags			usage series
//	@Produce		json
//	@Security		BasicAuth
//	@Security		BearerAuth
//	@Param			licenseId				path		string	true	"licence: its document id (GET /licenses) or its licenseId (as /info shows)"
//	@Param			dateFrom				query		string	false	"start, RFC 3339 (default: dateTo - 24 h); the first bucket is the clock-aligned one holding it"
//	@Param			dateTo					query		string	false	"end (exclusive), RFC 3339, at most 366 days after dateFrom (default: now)"
//	@Param			granularityMinutes		query		int		false	"bucket width: a positive multiple of the sampling interval; at most 10 000 buckets (default: 60 up to 7 days, else 1440)"
//	@Param			includeEntityTypes		query		bool	false	"add the registered agents per type"
//	@Param			includeConsumptionBased	query		bool	false	"add a UNIT_HOURS usage (unit-hours consumed per bucket)"
//	@Success		200						{object}	UsageSeriesDTO
//	@Failure		400						{object}	Problem	"VALIDATION_FAILED"
//	@Failure		401						{object}	Problem
//	@Failure		403						{object}	Problem	"PERMISSION_DENIED (LICENSE_USAGE)"
//	@Failure		404						{object}	Problem	"LICENSE_NOT_FOUND"
//	@Failure		503						{object}	Problem
//	@Router			/controller/licensing/v1/usage/license/{licenseId} [get]
func (a *API) licenseSeries(c *gin.Context) { a.writeSeries(c, c.Param("licenseId"), "") }

// allocationSeries godoc
//
//	@Summary		Usage time series of one allocation
//	@Description	Provisioned (the allocation's limit) and used units per package. The key may also be a licence rule's access key.
//	@Tags			usage series
//	@Produce		json
//	@Security		BasicAuth
//	@Security		BearerAuth
//	@Param			accountId				path		int		true	"account id"
//	@Param			licenseKey				path		string	true	"the allocation's licence key"
//	@Param			dateFrom				query		string	false	"start, RFC 3339 (default: dateTo - 24 h); the first bucket is the clock-aligned one holding it"
//	@Param			dateTo					query		string	false	"end (exclusive), RFC 3339, at most 366 days after dateFrom (default: now)"
//	@Param			granularityMinutes		query		int		false	"bucket width: a positive multiple of the sampling interval; at most 10 000 buckets (default: 60 up to 7 days, else 1440)"
//	@Param			includeEntityTypes		query		bool	false	"add the registered agents per type"
//	@Param			includeConsumptionBased	query		bool	false	"add a UNIT_HOURS usage (unit-hours consumed per bucket)"
//	@Success		200						{object}	UsageSeriesDTO
//	@Failure		400						{object}	Problem	"VALIDATION_FAILED"
//	@Failure		401						{object}	Problem
//	@Failure		403						{object}	Problem	"PERMISSION_DENIED (LICENSE_USAGE)"
//	@Failure		404						{object}	Problem	"ACCOUNT_NOT_FOUND, ALLOCATION_NOT_FOUND"
//	@Failure		503						{object}	Problem
//	@Router			/controller/licensing/v1/usage/account/{accountId}/allocation/{licenseKey} [get]
func (a *API) allocationSeries(c *gin.Context) { a.writeSeries(c, "", c.Param("licenseKey")) }

// licenseAllocationSeries godoc
//
//	@Summary		Usage time series of one allocation, by licence
//	@Description	As the account variant, for one of the caller's licences.
//	@Tags			usage series
//	@Produce		json
//	@Security		BasicAuth
//	@Security		BearerAuth
//	@Param			licenseId				path		string	true	"licence: its document id (GET /licenses) or its licenseId (as /info shows)"
//	@Param			licenseKey				path		string	true	"the allocation's licence key"
//	@Param			dateFrom				query		string	false	"start, RFC 3339 (default: dateTo - 24 h); the first bucket is the clock-aligned one holding it"
//	@Param			dateTo					query		string	false	"end (exclusive), RFC 3339, at most 366 days after dateFrom (default: now)"
//	@Param			granularityMinutes		query		int		false	"bucket width: a positive multiple of the sampling interval; at most 10 000 buckets (default: 60 up to 7 days, else 1440)"
//	@Param			includeEntityTypes		query		bool	false	"add the registered agents per type"
//	@Param			includeConsumptionBased	query		bool	false	"add a UNIT_HOURS usage (unit-hours consumed per bucket)"
//	@Success		200						{object}	UsageSeriesDTO
//	@Failure		400						{object}	Problem	"VALIDATION_FAILED"
//	@Failure		401						{object}	Problem
//	@Failure		403						{object}	Problem	"PERMISSION_DENIED (LICENSE_USAGE)"
//	@Failure		404						{object}	Problem	"LICENSE_NOT_FOUND, ALLOCATION_NOT_FOUND"
//	@Failure		503						{object}	Problem
//	@Router			/controller/licensing/v1/usage/license/{licenseId}/allocation/{licenseKey} [get]
func (a *API) licenseAllocationSeries(c *gin.Context) {
	a.writeSeries(c, c.Param("licenseId"), c.Param("licenseKey"))
}
