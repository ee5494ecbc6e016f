package httpapi

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lcorp/licensing-controller/internal/fault"
	"github.com/lcorp/licensing-controller/internal/usage"
)

// moduleNames are the lower-case names of the older licence API (API.md §12).
var moduleNames = map[string]string{
	"JAVA": "java", "DOT_NET": "dotnet", "NATIVE_WEB_SERVER": "webserver", "NATIVE_SDK": "native-sdk",
	"NETVIZ": "netviz", "MACHINE_AGENT": "machine-agent", "SIM_MACHINE_AGENT": "sim-machine-agent",
	"NODEJS": "nodejs", "PHP": "php", "PYTHON": "python", "GOLANG_SDK": "golang-sdk", "APM": "apm",
	"INFRA": "infra", "PREMIUM": "premium", "ENTERPRISE": "enterprise",
}

func moduleName(m string) string {
	if n, ok := moduleNames[m]; ok {
		return n
	}
	return strings.ReplaceAll(strings.ToLower(m), "_", "-")
}

// LicenseModuleDTO is one licence module with the links to its properties
// and usages.
type LicenseModuleDTO struct {
	Name  string `json:"name" example:"java"`
	Links []Link `json:"links"`
}

// LicenseModulesDTO is the account's licence modules.
type LicenseModulesDTO struct {
	Modules []LicenseModuleDTO `json:"modules"`
	Links   []Link             `json:"links"`
}

// PropertyDTO is a name and a string value, as the older API writes them.
type PropertyDTO struct {
	Name  string `json:"name" example:"number-of-provisioned-licenses"`
	Value string `json:"value" example:"100"`
}

// PropertiesDTO is a module's properties.
type PropertiesDTO struct {
	Properties []PropertyDTO `json:"properties"`
}

// ModuleUsageDTO is one period of a module's usage; every figure an integer.
type ModuleUsageDTO struct {
	ID                  int64  `json:"id" example:"1763804400000"`
	AccountID           int64  `json:"accountId" example:"1"`
	AgentType           string `json:"agentType" example:"JAVA"`
	CreatedOn           int64  `json:"createdOn" example:"1763804400000"`
	CreatedOnIsoDate    string `json:"createdOnIsoDate" example:"2026-11-22T10:00:00Z"`
	Units               int64  `json:"units" example:"100"`
	MinUnitsUsed        int64  `json:"minUnitsUsed" example:"40"`
	MaxUnitsUsed        int64  `json:"maxUnitsUsed" example:"48"`
	AvgUnitsUsed        int64  `json:"avgUnitsUsed" example:"45"`
	TotalUnitsUsed      int64  `json:"totalUnitsUsed" example:"540"`
	SampleCount         int64  `json:"sampleCount" example:"12"`
	AvgUnitsAllowed     int64  `json:"avgUnitsAllowed" example:"100"`
	AvgUnitsProvisioned int64  `json:"avgUnitsProvisioned" example:"100"`
}

// ModuleUsagesDTO is a module's usage.
type ModuleUsagesDTO struct {
	Usages []ModuleUsageDTO `json:"usages"`
}

// licenseModules godoc
//
//	@Summary	The account's licence modules (the older AppDynamics licence API)
//	@Tags		licence modules
//	@Produce	json
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		accountId	path		int	true	"account id"
//	@Success	200			{object}	LicenseModulesDTO
//	@Failure	401			{object}	Problem
//	@Failure	403			{object}	Problem	"ACCOUNT_LICENSE missing"
//	@Failure	404			{object}	Problem	"ACCOUNT_NOT_FOUND"
//	@Failure	503			{object}	Problem
//	@Router		/controller/api/accounts/{accountId}/licensemodules [get]
func (a *API) licenseModules(c *gin.Context) {
	ms, err := a.series.Modules(c.Request.Context(), principal(c).AccountID)
	if err != nil {
		a.fail(c, err)
		return
	}
	base := a.baseURL(c) + "/controller/api/accounts/" + strconv.FormatInt(principal(c).AccountID, 10) + "/licensemodules"
	out := LicenseModulesDTO{Modules: make([]LicenseModuleDTO, len(ms)), Links: []Link{{Name: "self", Href: base}}}
	for i, m := range ms {
		n := moduleName(m.Name)
		out.Modules[i] = LicenseModuleDTO{Name: n, Links: []Link{{"usages", base + "/" + n + "/usages"}, {"properties", base + "/" + n + "/properties"}}}
	}
	c.JSON(http.StatusOK, out)
}

// module finds a module by its lower-case name. Errors: ErrNotFound.
func (a *API) module(c *gin.Context) (usage.Module, bool) {
	ms, err := a.series.Modules(c.Request.Context(), principal(c).AccountID)
	if err != nil {
		a.fail(c, err)
		return usage.Module{}, false
	}
	for _, m := range ms {
		if moduleName(m.Name) == c.Param("name") {
			return m, true
		}
	}
	a.fail(c, fault.New(fault.ErrNotFound, "MODULE_NOT_FOUND", "licence module %q not found", c.Param("name")))
	return usage.Module{}, false
}

// licenseModuleProperties godoc
//
//	@Summary	A licence module's properties (values are strings, as in the original API)
//	@Tags		licence modules
//	@Produce	json
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		accountId	path		int		true	"account id"
//	@Param		name		path		string	true	"module name, e.g. java, premium"
//	@Success	200			{object}	PropertiesDTO
//	@Failure	401			{object}	Problem
//	@Failure	403			{object}	Problem	"ACCOUNT_LICENSE missing"
//	@Failure	404			{object}	Problem	"ACCOUNT_NOT_FOUND, MODULE_NOT_FOUND"
//	@Failure	503			{object}	Problem
//	@Router		/controller/api/accounts/{accountId}/licensemodules/{name}/properties [get]
func (a *API) licenseModuleProperties(c *gin.Context) {
	m, ok := a.module(c)
	if !ok {
		return
	}
	n := strconv.FormatInt(m.Provisioned, 10)
	expiry := ""
	if !m.Expires.IsZero() {
		expiry = strconv.FormatInt(m.Expires.UnixMilli(), 10)
	}
	c.JSON(http.StatusOK, PropertiesDTO{Properties: []PropertyDTO{
		{"expiry-date", expiry}, {"edition", m.Edition}, {"number-of-provisioned-licenses", n},
		{"maximum-allowed-licenses", n}, {"license-provisioning-enabled", "true"}}})
}

// licenseModuleUsages godoc
//
//	@Summary		A licence module's usage, hourly (or every 5 minutes)
//	@Description	From the usage samples: a vCPU package from the account's series, an agent module summed over the licence rules that provide it. Every figure is an integer.
//	@Tags			licence modules
//	@Produce		json
//	@Security		BasicAuth
//	@Security		BearerAuth
//	@Param			accountId					path		int		true	"account id"
//	@Param			name						path		string	true	"module name, e.g. java, premium"
//	@Param			startdate					query		string	false	"epoch milliseconds or RFC 3339 (default: 24 h before enddate)"
//	@Param			enddate						query		string	false	"epoch milliseconds or RFC 3339 (default: now)"
//	@Param			showfiveminutesresolution	query		bool	false	"5-minute periods instead of hours"
//	@Success		200							{object}	ModuleUsagesDTO
//	@Failure		400							{object}	Problem	"VALIDATION_FAILED"
//	@Failure		401							{object}	Problem
//	@Failure		403							{object}	Problem	"ACCOUNT_LICENSE missing"
//	@Failure		404							{object}	Problem	"ACCOUNT_NOT_FOUND, MODULE_NOT_FOUND"
//	@Failure		503							{object}	Problem
//	@Router			/controller/api/accounts/{accountId}/licensemodules/{name}/usages [get]
func (a *API) licenseModuleUsages(c *gin.Context) {
	m, ok := a.module(c)
	if !ok {
		return
	}
	var fields []fault.FieldError
	date := func(name string) time.Time {
		v := c.Query(name)
		if v == "" {
			return time.Time{}
		}
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms > 0 && ms < 1<<50 {
			return time.UnixMilli(ms).UTC()
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			fields = append(fields, fault.FieldError{Field: name, Message: "must be epoch milliseconds or an RFC 3339 date-time"})
		}
		return t
	}
	from, to := date("startdate"), date("enddate")
	five := false
	if v := c.Query("showfiveminutesresolution"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			fields = append(fields, fault.FieldError{Field: "showfiveminutesresolution", Message: "must be true or false"})
		}
		five = b
	}
	if err := fault.Invalids(fields); err != nil {
		a.fail(c, err)
		return
	}
	if to.IsZero() {
		to = time.Now().UTC()
	}
	if from.IsZero() {
		from = to.Add(-24 * time.Hour)
	}
	g := time.Hour
	if five {
		g = 5 * time.Minute
	}
	if iv := a.series.Interval(); iv > 0 && g%iv != 0 {
		g = (g/iv + 1) * iv
	}
	us, err := a.series.ModuleUsages(c.Request.Context(), principal(c).AccountID, m.Name, from, to, g)
	if err != nil {
		a.fail(c, err)
		return
	}
	out := ModuleUsagesDTO{Usages: make([]ModuleUsageDTO, len(us))}
	for i, u := range us {
		prov := int64(math.Round(u.Provisioned.Avg))
		out.Usages[i] = ModuleUsageDTO{ID: u.Start.UnixMilli(), AccountID: principal(c).AccountID, AgentType: m.Name,
			CreatedOn: u.Start.UnixMilli(), CreatedOnIsoDate: u.Start.Format(time.RFC3339), Units: prov,
			MinUnitsUsed: int64(math.Round(u.Used.Min)), MaxUnitsUsed: int64(math.Round(u.Used.Max)),
			AvgUnitsUsed: int64(math.Round(u.Used.Avg)), TotalUnitsUsed: int64(math.Round(u.Used.Avg * float64(u.Used.Count))),
			SampleCount: u.Used.Count, AvgUnitsAllowed: prov, AvgUnitsProvisioned: prov}
	}
	c.JSON(http.StatusOK, out)
}
