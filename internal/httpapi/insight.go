package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lcorp/licensing-controller/internal/fault"
	"github.com/lcorp/licensing-controller/internal/usage"
)

// Operator insight (API.md §13): forecasts and lint of allocations.

// PackageForecastDTO is one package's forecast.
type PackageForecastDTO struct {
	Package string `json:"package" example:"PREMIUM"`
	Used    int64  `json:"used" example:"36"`
	Limit   int64  `json:"limit" example:"40"`
	// TrendPerDay is units per day: the Theil–Sen slope of the daily maxima.
	TrendPerDay float64 `json:"trendPerDay" example:"2"`
	// ExhaustsAt is when used reaches the limit at the trend; null when it
	// is flat or falling.
	ExhaustsAt *time.Time `json:"exhaustsAt"`
	// Low and High bound ExhaustsAt by the slope's 95 % confidence interval.
	Low   *time.Time `json:"low"`
	High  *time.Time `json:"high"`
	Basis string     `json:"basis" example:"daily maxima, Theil–Sen, 14 days"`
}

// ForecastDTO is the forecast of an allocation or the account.
type ForecastDTO struct {
	Packages []PackageForecastDTO `json:"packages"`
}

// allocationForecast godoc
//
//	@Summary		When an allocation runs out at the current trend
//	@Description	Per package: the units used now, the limit, the trend (Theil–Sen slope of the daily maxima of used units over the last window days, robust to one-off spikes), the estimated exhaustion (null when flat or falling) and a low/high range.
//	@Tags			insight
//	@Produce		json
//	@Security		BasicAuth
//	@Security		BearerAuth
//	@Param			accountId		path		int		true	"account id"
//	@Param			allocationId	path		string	true	"allocation id"
//	@Param			window			query		int		false	"days of history (2-365, default 14)"
//	@Success		200				{object}	ForecastDTO
//	@Failure		400				{object}	Problem	"VALIDATION_FAILED"
//	@Failure		401				{object}	Problem
//	@Failure		403				{object}	Problem	"PERMISSION_DENIED (LICENSE_RULE)"
//	@Failure		404				{object}	Problem	"ACCOUNT_NOT_FOUND, ALLOCATION_NOT_FOUND"
//	@Failure		503				{object}	Problem
//	@Router			/controller/licensing/v1/account/{accountId}/allocation/{allocationId}/forecast [get]
func (a *API) allocationForecast(c *gin.Context) { a.forecast(c, c.Param("allocationId")) }

// accountForecast godoc
//
//	@Summary		When the account's licence runs out at the current trend, per package
//	@Description	As the allocation forecast, for the account's used units (a host charged by several allocations counts once) against its licensed units.
//	@Tags			insight
//	@Produce		json
//	@Security		BasicAuth
//	@Security		BearerAuth
//	@Param			accountId	path		int	true	"account id"
//	@Param			window		query		int	false	"days of history (2-365, default 14)"
//	@Success		200			{object}	ForecastDTO
//	@Failure		400			{object}	Problem	"VALIDATION_FAILED"
//	@Failure		401			{object}	Problem
//	@Failure		403			{object}	Problem	"PERMISSION_DENIED (LICENSE_RULE)"
//	@Failure		404			{object}	Problem	"ACCOUNT_NOT_FOUND"
//	@Failure		503			{object}	Problem
//	@Router			/controller/licensing/v1/account/{accountId}/allocation/forecast [get]
func (a *API) accountForecast(c *gin.Context) { a.forecast(c, "") }

func (a *API) forecast(c *gin.Context, allocationID string) {
	window := 0
	if s := c.Query("window"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 2 || n > usage.MaxForecastWindow {
			a.fail(c, fault.Invalid("window", "must be an integer from 2 to 365 (days)"))
			return
		}
		window = n
	}
	f, err := a.series.Forecast(c.Request.Context(), accountID(c), allocationID, window, a.now())
	if err != nil {
		a.fail(c, err)
		return
	}
	out := ForecastDTO{Packages: make([]PackageForecastDTO, 0, len(f.Packages))}
	for _, p := range f.Packages {
		out.Packages = append(out.Packages, PackageForecastDTO{Package: p.Package, Used: p.Used, Limit: p.Limit,
			TrendPerDay: p.TrendPerDay, ExhaustsAt: p.ExhaustsAt, Low: p.Low, High: p.High, Basis: p.Basis})
	}
	c.JSON(http.StatusOK, out)
}

// FindingDTO is one lint finding.
type FindingDTO struct {
	Code     string `json:"code" example:"HOST_COUNTED_TWICE" enums:"HOST_COUNTED_TWICE,FILTER_MATCHES_NOTHING,SHADOWED_BY_EARLIER,LIMIT_BELOW_USAGE,NO_LIMITS,REGEX_TOO_BROAD,EXPIRES_SOON"`
	Severity string `json:"severity" example:"warning" enums:"error,warning,info"`
	Message  string `json:"message"`
	// Allocations are the ids of the allocations involved.
	Allocations []string `json:"allocations"`
	Hosts       []string `json:"hosts"`
	// ExtraUnits is what the finding costs (HOST_COUNTED_TWICE) or the
	// units over the limit (LIMIT_BELOW_USAGE).
	ExtraUnits int64 `json:"extraUnits" example:"16"`
}

// allocationLint godoc
//
//	@Summary		What is wrong or wasteful in the account's allocations
//	@Description	From the allocations, the live host charges and the agents seen in the last 7 days: hosts charged in two allocations (HOST_COUNTED_TWICE, with the extra units), filters that match no agent (FILTER_MATCHES_NOTHING), allocations with the same filters as an earlier one (SHADOWED_BY_EARLIER), usage over a limit (LIMIT_BELOW_USAGE), allocations without units (NO_LIMITS), REGEX filters matching every application or host seen (REGEX_TOO_BROAD), a licence expiring within 30 days (EXPIRES_SOON). Errors first. Nothing is written.
//	@Tags			insight
//	@Produce		json
//	@Security		BasicAuth
//	@Security		BearerAuth
//	@Param			accountId	path		int	true	"account id"
//	@Success		200			{array}		FindingDTO
//	@Failure		401			{object}	Problem
//	@Failure		403			{object}	Problem	"PERMISSION_DENIED (LICENSE_RULE)"
//	@Failure		404			{object}	Problem	"ACCOUNT_NOT_FOUND"
//	@Failure		503			{object}	Problem
//	@Router			/controller/licensing/v1/account/{accountId}/allocation/lint [get]
func (a *API) allocationLint(c *gin.Context) {
	fs, err := a.lint.Lint(c.Request.Context(), accountID(c))
	if err != nil {
		a.fail(c, err)
		return
	}
	out := make([]FindingDTO, 0, len(fs))
	for _, f := range fs {
		d := FindingDTO{Code: f.Code, Severity: f.Severity, Message: f.Message, Allocations: f.Allocations, Hosts: f.Hosts, ExtraUnits: f.ExtraUnits}
		if d.Allocations == nil {
			d.Allocations = []string{}
		}
		if d.Hosts == nil {
			d.Hosts = []string{}
		}
		out = append(out, d)
	}
	c.JSON(http.StatusOK, out)
}
