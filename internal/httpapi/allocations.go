package httpapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lcorp/licensing-controller/internal/licensing"
	"github.com/lcorp/licensing-controller/internal/usage"
)

func jsonString(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// FilterDTO admits agents by application or host.
type FilterDTO struct {
	ID       string `json:"id,omitempty"`
	Type     string `json:"type" binding:"required,oneof=APPLICATION HOST" example:"APPLICATION"`
	Operator string `json:"operator" binding:"required,oneof=ID_EQUALS EQUALS STARTS_WITH ENDS_WITH CONTAINS REGEX" example:"ID_EQUALS"`
	Value    string `json:"value" binding:"required,max=1024" example:"18156"`
}

// LimitDTO caps one package.
type LimitDTO struct {
	ID      string `json:"id,omitempty"`
	Package string `json:"package" binding:"required,oneof=INFRA PREMIUM ENTERPRISE" example:"PREMIUM"`
	Units   *int64 `json:"units" binding:"required,gte=0" minimum:"0" maximum:"1000000000" example:"40"`
}

// AllocationRequest creates or replaces an allocation. id, accountId,
// licenseKey and the dates are server-owned: accepted and ignored.
type AllocationRequest struct {
	ID                   string `json:"id,omitempty" swaggerignore:"true"`
	AccountID            int64  `json:"accountId,omitempty" swaggerignore:"true"`
	LicenseKey           string `json:"licenseKey,omitempty" swaggerignore:"true"`
	CreatedDate          string `json:"createdDate,omitempty" swaggerignore:"true"`
	LastUpdatedDate      string `json:"lastUpdatedDate,omitempty" swaggerignore:"true"`
	Name                 string `json:"name" binding:"required,max=255" example:"team-a"`
	FallbackModeDelay    bool   `json:"fallbackModeDelay" example:"false"`
	MachineAgentPriority bool   `json:"machineAgentPriority" example:"false"`
	// Disabled refuses new registrations (403 ALLOCATION_DISABLED); running leases are kept.
	Disabled bool        `json:"disabled" example:"false"`
	Filters  []FilterDTO `json:"filters" binding:"omitempty,max=100,dive"`
	Limits   []LimitDTO  `json:"limits" binding:"omitempty,dive"`
	Tags     []string    `json:"tags" binding:"omitempty,max=50,dive,min=1,max=64"`
}

func (r AllocationRequest) input() licensing.AllocationInput {
	in := licensing.AllocationInput{Name: r.Name, FallbackModeDelay: r.FallbackModeDelay,
		MachineAgentPriority: r.MachineAgentPriority, Tags: r.Tags, Disabled: r.Disabled}
	for _, f := range r.Filters {
		in.Filters = append(in.Filters, licensing.Filter{ID: f.ID, Type: f.Type, Operator: f.Operator, Value: f.Value})
	}
	for _, l := range r.Limits {
		in.Limits = append(in.Limits, licensing.Limit{ID: l.ID, Package: l.Package, Units: *l.Units})
	}
	return in
}

// AllocationResponse is an allocation as the seed shows it.
type AllocationResponse struct {
	ID                   string      `json:"id"`
	AccountID            int64       `json:"accountId"`
	Name                 string      `json:"name"`
	LicenseKey           string      `json:"licenseKey"`
	FallbackModeDelay    bool        `json:"fallbackModeDelay"`
	MachineAgentPriority bool        `json:"machineAgentPriority"`
	Disabled             bool        `json:"disabled"`
	Filters              []FilterDTO `json:"filters"`
	Limits               []LimitDTO  `json:"limits"`
	Tags                 []string    `json:"tags"`
	CreatedDate          time.Time   `json:"createdDate"`
	LastUpdatedDate      time.Time   `json:"lastUpdatedDate"`
	// Usage is what the allocation charges now, per package of its limits
	// (only with ?includeUsage=true).
	Usage []PoolUsageDTO `json:"usage,omitempty"`
}

// PoolUsageDTO is a pool's live use of one package or module.
type PoolUsageDTO struct {
	Package string `json:"package" example:"PREMIUM"`
	Used    int64  `json:"used" example:"36"`
	Limit   int64  `json:"limit" example:"40"`
}

// includeUsage reads ?includeUsage and, when true, the live usage of the
// pools; ok false means the problem was written.
func (a *API) includeUsage(c *gin.Context, poolIDs []string) (map[string]map[string]int64, bool) {
	want, err := boolQuery(c, "includeUsage")
	if err == nil && want {
		var u map[string]map[string]int64
		if u, err = a.lic.PoolUsages(c.Request.Context(), accountID(c), poolIDs); err == nil {
			return u, true
		}
	}
	if err != nil {
		a.fail(c, err)
		return nil, false
	}
	return nil, true
}

func allocationResponse(a licensing.Allocation) AllocationResponse {
	out := AllocationResponse{ID: a.ID, AccountID: a.AccountID, Name: a.Name, LicenseKey: a.LicenseKey,
		FallbackModeDelay: a.FallbackModeDelay, MachineAgentPriority: a.MachineAgentPriority, Disabled: a.Disabled,
		Filters: []FilterDTO{}, Limits: []LimitDTO{}, Tags: a.Tags, CreatedDate: a.CreatedAt, LastUpdatedDate: a.UpdatedAt}
	if out.Tags == nil {
		out.Tags = []string{}
	}
	for _, f := range a.Filters {
		out.Filters = append(out.Filters, FilterDTO(f))
	}
	for _, l := range a.Limits {
		units := l.Units
		out.Limits = append(out.Limits, LimitDTO{ID: l.ID, Package: l.Package, Units: &units})
	}
	return out
}

// listAllocations godoc
//
//	@Summary	List allocations, optionally by name, licence key or tag (one of them)
//	@Tags		allocations
//	@Produce	json
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		accountId	path		int		true	"account id"
//	@Param		name		query		string	false	"allocation name"
//	@Param		license-key	query		string	false	"licence key"
//	@Param		tag			query		string	false	"tag"
//	@Param		includeUsage	query	bool	false	"add each allocation's live usage per package (used and limit)"
//	@Success	200			{array}		AllocationResponse
//	@Failure	400			{object}	Problem	"CONFLICTING_FILTERS, VALIDATION_FAILED"
//	@Failure	401			{object}	Problem
//	@Failure	403			{object}	Problem	"LICENSE_RULE missing"
//	@Failure	404			{object}	Problem	"ACCOUNT_NOT_FOUND"
//	@Failure	503			{object}	Problem
//	@Router		/controller/licensing/v1/account/{accountId}/allocation [get]
func (a *API) listAllocations(c *gin.Context) {
	all, err := a.lic.Allocations(c.Request.Context(), accountID(c), licensing.AllocationQuery{
		Name: c.Query("name"), LicenseKey: c.Query("license-key"), Tag: c.Query("tag")})
	if err != nil {
		a.fail(c, err)
		return
	}
	ids := make([]string, len(all))
	for i, al := range all {
		ids[i] = al.ID
	}
	usage, ok := a.includeUsage(c, ids)
	if !ok {
		return
	}
	out := make([]AllocationResponse, len(all))
	for i, al := range all {
		out[i] = allocationResponse(al)
		if usage != nil {
			out[i].Usage = []PoolUsageDTO{}
			for _, l := range al.Limits {
				out[i].Usage = append(out[i].Usage, PoolUsageDTO{Package: l.Package, Used: usage[al.ID][l.Package], Limit: l.Units})
			}
		}
	}
	c.JSON(http.StatusOK, out)
}

// getAllocation godoc
//
//	@Summary	One allocation
//	@Tags		allocations
//	@Produce	json
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		accountId		path		int		true	"account id"
//	@Param		allocationId	path		string	true	"allocation id"
//	@Success	200				{object}	AllocationResponse
//	@Failure	401				{object}	Problem
//	@Failure	403				{object}	Problem	"LICENSE_RULE missing"
//	@Failure	404				{object}	Problem	"ACCOUNT_NOT_FOUND, ALLOCATION_NOT_FOUND"
//	@Failure	503				{object}	Problem
//	@Router		/controller/licensing/v1/account/{accountId}/allocation/{allocationId} [get]
func (a *API) getAllocation(c *gin.Context) {
	al, err := a.lic.Allocation(c.Request.Context(), accountID(c), c.Param("allocationId"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, allocationResponse(al))
}

// createAllocation godoc
//
//	@Summary		Create an allocation
//	@Description	The licence key, ids and dates are generated. Limits of all allocations together may not exceed the licensed units of a package (409 OVER_ALLOCATION).
//	@Tags			allocations
//	@Accept			json
//	@Produce		json
//	@Security		BasicAuth
//	@Security		BearerAuth
//	@Param			accountId	path		int					true	"account id"
//	@Param			body		body		AllocationRequest	true	"the allocation"
//	@Param			dryRun		query		bool				false	"answer what the change would do (a what-if, 200 WhatIfDTO) and write nothing"
//	@Success		201			{object}	AllocationResponse
//	@Failure		400			{object}	Problem	"VALIDATION_FAILED"
//	@Failure		401			{object}	Problem
//	@Failure		403			{object}	Problem	"LICENSE_RULE_WRITE missing"
//	@Failure		404			{object}	Problem	"ACCOUNT_NOT_FOUND"
//	@Failure		409			{object}	Problem	"NAME_TAKEN, OVER_ALLOCATION"
//	@Failure		413			{object}	Problem
//	@Failure		415			{object}	Problem
//	@Failure		503			{object}	Problem
//	@Router			/controller/licensing/v1/account/{accountId}/allocation [post]
func (a *API) createAllocation(c *gin.Context) {
	var req AllocationRequest
	if !a.bindJSON(c, &req) {
		return
	}
	dry, ok := a.dryRun(c)
	if !ok {
		return
	}
	if dry {
		in := req.input()
		a.whatIf(c, []usage.Change{{Create: &in}})
		return
	}
	al, err := a.lic.CreateAllocation(c.Request.Context(), accountID(c), req.input())
	if err != nil {
		a.fail(c, err)
		return
	}
	c.Header("Location", c.Request.URL.Path+"/"+al.ID)
	c.JSON(http.StatusCreated, allocationResponse(al))
}

// updateAllocation godoc
//
//	@Summary	Replace an allocation's name, filters, limits, tags and flags
//	@Tags		allocations
//	@Accept		json
//	@Produce	json
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		accountId		path		int					true	"account id"
//	@Param		allocationId	path		string				true	"allocation id"
//	@Param		body			body		AllocationRequest	true	"the allocation"
//	@Param		dryRun			query		bool				false	"answer what the change would do (a what-if, 200 WhatIfDTO) and write nothing"
//	@Success	200				{object}	AllocationResponse
//	@Failure	400				{object}	Problem	"VALIDATION_FAILED"
//	@Failure	401				{object}	Problem
//	@Failure	403				{object}	Problem	"LICENSE_RULE_WRITE missing"
//	@Failure	404				{object}	Problem	"ACCOUNT_NOT_FOUND, ALLOCATION_NOT_FOUND"
//	@Failure	409				{object}	Problem	"NAME_TAKEN, OVER_ALLOCATION, DEFAULT_ALLOCATION"
//	@Failure	413				{object}	Problem
//	@Failure	415				{object}	Problem
//	@Failure	503				{object}	Problem
//	@Router		/controller/licensing/v1/account/{accountId}/allocation/{allocationId} [put]
func (a *API) updateAllocation(c *gin.Context) {
	var req AllocationRequest
	if !a.bindJSON(c, &req) {
		return
	}
	dry, ok := a.dryRun(c)
	if !ok {
		return
	}
	if dry {
		in := req.input()
		a.whatIf(c, []usage.Change{{UpdateID: c.Param("allocationId"), Update: &in}})
		return
	}
	al, err := a.lic.UpdateAllocation(c.Request.Context(), accountID(c), c.Param("allocationId"), req.input())
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, allocationResponse(al))
}

// deleteAllocation godoc
//
//	@Summary	Delete an allocation
//	@Tags		allocations
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		accountId		path	int		true	"account id"
//	@Param		allocationId	path	string	true	"allocation id"
//	@Param		force			query	bool	false	"release the allocation's leases"
//	@Param		dryRun			query	bool	false	"answer what the deletion would do (a what-if, 200 WhatIfDTO) and delete nothing"
//	@Success	204
//	@Success	200	{object}	WhatIfDTO	"with dryRun=true"
//	@Failure	401	{object}	Problem
//	@Failure	403	{object}	Problem	"LICENSE_RULE_WRITE missing"
//	@Failure	404	{object}	Problem	"ACCOUNT_NOT_FOUND, ALLOCATION_NOT_FOUND"
//	@Failure	409	{object}	Problem	"DEFAULT_ALLOCATION, ALLOCATION_IN_USE"
//	@Failure	503	{object}	Problem
//	@Router		/controller/licensing/v1/account/{accountId}/allocation/{allocationId} [delete]
func (a *API) deleteAllocation(c *gin.Context) {
	dry, ok := a.dryRun(c)
	if !ok {
		return
	}
	if dry {
		a.whatIf(c, []usage.Change{{Delete: c.Param("allocationId")}})
		return
	}
	force, err := boolQuery(c, "force")
	if err != nil {
		a.fail(c, err)
		return
	}
	if err := a.lic.DeleteAllocation(c.Request.Context(), accountID(c), c.Param("allocationId"), force); err != nil {
		a.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
