package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lcorp/licensing-controller/internal/fault"
	"github.com/lcorp/licensing-controller/internal/usage"
)

// WhatIfChangeDTO is one allocation change: exactly one member.
type WhatIfChangeDTO struct {
	// Create is a new allocation.
	Create *AllocationRequest `json:"create"`
	// Update replaces the allocation whose id it carries.
	Update *WhatIfUpdateDTO `json:"update"`
	// Delete is the id of an allocation to delete.
	Delete *string `json:"delete" binding:"omitempty,min=1,max=64"`
}

// WhatIfUpdateDTO is an allocation replacement: its id and its new body.
type WhatIfUpdateDTO struct {
	// ID names the allocation; it is the body's own "id", required here.
	ID string `json:"id" binding:"required,max=64"`
	AllocationRequest
}

// WhatIfRequest is a set of allocation changes to try.
type WhatIfRequest struct {
	Changes []WhatIfChangeDTO `json:"changes" binding:"required,min=1,max=50,dive"`
}

// UnitsDTO is the used and limit units of a package.
type UnitsDTO struct {
	Used  int64 `json:"used" example:"32"`
	Limit int64 `json:"limit" example:"32"`
}

// WhatIfAllocationDTO is one package of an affected allocation.
type WhatIfAllocationDTO struct {
	// AllocationID is new-N for the allocation the N-th change creates.
	AllocationID string   `json:"allocationId"`
	Name         string   `json:"name" example:"team-a"`
	Package      string   `json:"package" example:"PREMIUM"`
	Before       UnitsDTO `json:"before"`
	After        UnitsDTO `json:"after"`
}

// WhatIfLeaseDTO is a live lease a change affects.
type WhatIfLeaseDTO struct {
	RegistrationID string           `json:"registrationId"`
	AgentID        string           `json:"agentId"`
	AgentType      string           `json:"agentType" example:"APP_AGENT"`
	AllocationID   string           `json:"allocationId"`
	Host           AnalyticsHostDTO `json:"host"`
	Application    *ApplicationDTO  `json:"application"`
	Package        string           `json:"package" example:"PREMIUM"`
	Units          int64            `json:"units" example:"16"`
}

// WhatIfRefusalDTO is a refusal of the last 7 days a change would grant.
type WhatIfRefusalDTO struct {
	At               time.Time        `json:"at"`
	AgentID          string           `json:"agentId"`
	AgentType        string           `json:"agentType" example:"APP_AGENT"`
	AllocationID     string           `json:"allocationId"`
	Reason           string           `json:"reason" example:"NO_MORE_UNITS"`
	RequestedPackage string           `json:"requestedPackage" example:"PREMIUM"`
	Host             AnalyticsHostDTO `json:"host"`
	Application      *ApplicationDTO  `json:"application"`
}

// WhatIfDTO is what allocation changes would do (API.md §13).
type WhatIfDTO struct {
	Allocations       []WhatIfAllocationDTO `json:"allocations"`
	NoLongerMatching  []WhatIfLeaseDTO      `json:"noLongerMatching"`
	NoLongerFitting   []WhatIfLeaseDTO      `json:"noLongerFitting"`
	WouldNowBeGranted []WhatIfRefusalDTO    `json:"wouldNowBeGranted"`
	// Refused is the problem a real write of the changes would get, or null.
	Refused *Problem `json:"refused"`
}

// allocationWhatIf godoc
//
//	@Summary		What allocation changes would do, without making them
//	@Description	Each change is {"create":{…}}, {"update":{"id":…,…}} or {"delete":"<id>"}. Per affected allocation and package the used and limit units before and after; the live leases that would no longer match the filters or no longer fit the limits (the most recently charged hosts first, as pre-emption); the refusals of the last 7 days that would now be granted; and the problem a real write would get (refused), or null. Nothing is written.
//	@Tags			insight
//	@Accept			json
//	@Produce		json
//	@Security		BasicAuth
//	@Security		BearerAuth
//	@Param			accountId	path		int				true	"account id"
//	@Param			body		body		WhatIfRequest	true	"the changes"
//	@Success		200			{object}	WhatIfDTO
//	@Failure		400			{object}	Problem	"VALIDATION_FAILED"
//	@Failure		401			{object}	Problem
//	@Failure		403			{object}	Problem	"PERMISSION_DENIED (LICENSE_RULE)"
//	@Failure		404			{object}	Problem	"ACCOUNT_NOT_FOUND, ALLOCATION_NOT_FOUND"
//	@Failure		503			{object}	Problem
//	@Router			/controller/licensing/v1/account/{accountId}/allocation/what-if [post]
func (a *API) allocationWhatIf(c *gin.Context) {
	var req WhatIfRequest
	if !a.bindJSON(c, &req) {
		return
	}
	changes := make([]usage.Change, 0, len(req.Changes))
	for _, ch := range req.Changes {
		var uc usage.Change
		if ch.Create != nil {
			in := ch.Create.input()
			uc.Create = &in
		}
		if ch.Update != nil {
			in := ch.Update.input()
			uc.UpdateID, uc.Update = ch.Update.ID, &in
		}
		if ch.Delete != nil {
			uc.Delete = *ch.Delete
		}
		changes = append(changes, uc)
	}
	a.whatIf(c, changes)
}

// whatIf runs a what-if and writes its answer.
func (a *API) whatIf(c *gin.Context, changes []usage.Change) {
	res, err := a.whatif.Run(c.Request.Context(), accountID(c), changes)
	if err != nil {
		a.fail(c, err)
		return
	}
	out := WhatIfDTO{Allocations: []WhatIfAllocationDTO{}, NoLongerMatching: whatIfLeases(res.NoLongerMatching),
		NoLongerFitting: whatIfLeases(res.NoLongerFitting), WouldNowBeGranted: []WhatIfRefusalDTO{}}
	for _, p := range res.Allocations {
		out.Allocations = append(out.Allocations, WhatIfAllocationDTO{AllocationID: p.AllocationID, Name: p.Name, Package: p.Package,
			Before: UnitsDTO(p.Before), After: UnitsDTO(p.After)})
	}
	for _, r := range res.WouldNowBeGranted {
		out.WouldNowBeGranted = append(out.WouldNowBeGranted, WhatIfRefusalDTO{At: r.At, AgentID: r.AgentID, AgentType: r.AgentType,
			AllocationID: r.PoolID, Reason: r.Reason, RequestedPackage: r.Package, Host: AnalyticsHostDTO{ID: r.HostID, Name: r.HostName},
			Application: applicationDTO(r.AppID, r.AppName)})
	}
	if res.Refused != nil {
		status := statusOf(res.Refused)
		fe, ok := fault.As(res.Refused)
		if status >= 500 || !ok {
			a.fail(c, res.Refused) // not a refusal: the dry run itself failed
			return
		}
		out.Refused = &Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Code: fe.Code,
			Detail: fe.Detail, Errors: fe.Fields, ErrorMessage: fe.Detail}
	}
	c.JSON(http.StatusOK, out)
}

func whatIfLeases(ls []usage.PoolLease) []WhatIfLeaseDTO {
	out := make([]WhatIfLeaseDTO, 0, len(ls))
	for _, l := range ls {
		out = append(out, WhatIfLeaseDTO{RegistrationID: l.RegistrationID, AgentID: l.AgentID, AgentType: l.AgentType, AllocationID: l.PoolID,
			Host: AnalyticsHostDTO{ID: l.HostID, Name: l.HostName}, Application: applicationDTO(l.AppID, l.AppName), Package: l.Package, Units: l.Units})
	}
	return out
}

func applicationDTO(id *int64, name *string) *ApplicationDTO {
	if id == nil && name == nil {
		return nil
	}
	return &ApplicationDTO{ID: id, Name: name}
}

// boolQuery reads an optional boolean query parameter (strconv.ParseBool
// spellings; given twice, both must agree): a dry run must never turn
// into a real write because of how a client spells true.
func boolQuery(c *gin.Context, name string) (bool, error) {
	vs := c.QueryArray(name)
	if len(vs) == 0 {
		return false, nil
	}
	var out bool
	for i, v := range vs {
		b, err := strconv.ParseBool(v)
		if err != nil || (i > 0 && b != out) {
			return false, fault.Invalid(name, "must be true or false")
		}
		out = b
	}
	return out, nil
}

// dryRun reads ?dryRun; a parameter of another case (dryrun) is refused
// rather than ignored.
func (a *API) dryRun(c *gin.Context) (bool, bool) {
	for k := range c.Request.URL.Query() {
		if k != "dryRun" && strings.EqualFold(k, "dryRun") {
			a.fail(c, fault.Invalid(k, "unknown parameter: did you mean dryRun?"))
			return false, false
		}
	}
	b, err := boolQuery(c, "dryRun")
	if err != nil {
		a.fail(c, err)
		return false, false
	}
	return b, true
}
